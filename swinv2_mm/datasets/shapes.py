"""Rendering of the generated shapes scenes shared by the COCO and ADE20K-layout datasets.

Four classes that differ only by geometry (circle, square, triangle, star) are drawn
with class-independent colours and textures on a cluttered background. Only numpy and
PIL are needed here: the toolbox-specific datasets live in shapes_coco and shapes_ade.
"""
import colorsys
from typing import List, NamedTuple, Optional, Tuple

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ('circle', 'square', 'triangle', 'star')
PALETTE = [(220, 20, 60), (0, 130, 200), (60, 180, 75), (255, 165, 0)]

SPLIT_IDS = {'train': 0, 'val': 1}

# Outline of each class as (number of vertices, cycled radii) of a star-shaped polygon.
OUTLINES = {
    'circle': (48, (1.0,)),
    'square': (4, (1.0,)),
    'triangle': (3, (1.0,)),
    'star': (10, (1.0, 0.45)),
}
MIN_OBJECTS, MAX_OBJECTS = 1, 4
MIN_EXTENT, MAX_EXTENT = 0.20, 0.45  # longest side of an object, in image sides
BOX_MARGIN = 3.0  # pixels kept free between the boxes of two objects
PLACEMENT_TRIES = 20
NOISE_STD = 4.0


class ShapeObject(NamedTuple):
    """One rendered object: its category id (1-based) and its polygon, (N, 2) pixels."""
    category_id: int
    polygon: np.ndarray


# Colours and background.

def _hsv_colour(rng: np.random.Generator, saturation: Tuple[float, float],
                value: Tuple[float, float], hue: Optional[float] = None) -> np.ndarray:
    """An RGB colour (floats 0..255) with saturation and value drawn from the ranges."""
    hue = rng.random() if hue is None else hue % 1.0
    rgb = colorsys.hsv_to_rgb(hue, rng.uniform(*saturation), rng.uniform(*value))
    return 255.0 * np.array(rgb)


def _random_rgb(rng: np.random.Generator) -> Tuple[int, int, int]:
    """Any colour at all, for clutter."""
    return tuple(int(c) for c in rng.integers(0, 256, size=3))


def _gradient(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth background: bilinear blend of four muted corner colours, (size, size, 3)."""
    corners = [_hsv_colour(rng, (0.0, 0.4), (0.3, 0.9)) for _ in range(4)]
    t = np.linspace(0.0, 1.0, size)
    xs, ys = t[None, :, None], t[:, None, None]
    top = corners[0] * (1 - xs) + corners[1] * xs
    bottom = corners[2] * (1 - xs) + corners[3] * xs
    return top * (1 - ys) + bottom * ys


def _draw_clutter(image: Image.Image, rng: np.random.Generator,
                  lines: Tuple[int, int] = (20, 41), blobs: Tuple[int, int] = (15, 36)) -> None:
    """Thin line segments and small blobs (< 6 px) of random colours, as distractors;
    their counts are drawn from the half-open ranges ``lines`` and ``blobs``."""
    size = image.width
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(*lines)):
        x, y = rng.uniform(0, size, size=2)
        angle = rng.uniform(0, 2 * np.pi)
        length = rng.uniform(0.1, 0.6) * size
        end = (x + length * np.cos(angle), y + length * np.sin(angle))
        draw.line([(x, y), end], fill=_random_rgb(rng), width=int(rng.integers(1, 3)))
    for _ in range(rng.integers(*blobs)):
        x, y = rng.uniform(0, size, size=2)
        w, h = rng.uniform(2, 5.5, size=2)
        draw.ellipse([x, y, x + w, y + h], fill=_random_rgb(rng))


def _cluttered_background(rng: np.random.Generator, size: int, **clutter) -> np.ndarray:
    """Gradient plus clutter (``clutter``: counts for ``_draw_clutter``), (size, size, 3) uint8."""
    image = Image.fromarray(np.round(_gradient(rng, size)).astype(np.uint8))
    _draw_clutter(image, rng, **clutter)
    return np.array(image)


# Geometry and placement.

def _unit_outline(name: str) -> np.ndarray:
    """The class's polygon centred on the origin with outer radius 1, (N, 2)."""
    num_vertices, radii = OUTLINES[name]
    angles = -np.pi / 2 + 2 * np.pi * np.arange(num_vertices) / num_vertices
    radius = np.resize(np.array(radii), num_vertices)
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def _sample_polygon(rng: np.random.Generator, name: str, size: int) -> np.ndarray:
    """The class outline, randomly rotated, scaled and placed inside the image."""
    angle = rng.uniform(0, 2 * np.pi)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    outline = _unit_outline(name) @ rotation.T
    outline -= outline.min(axis=0)
    extent = rng.uniform(MIN_EXTENT, MAX_EXTENT) * size
    outline *= extent / outline.max()
    offset = rng.uniform(0, 1, size=2) * (size - outline.max(axis=0))
    return np.round(outline + offset, 2)


def polygon_box(polygon: np.ndarray) -> np.ndarray:
    """(x0, y0, x1, y1) around a polygon."""
    return np.concatenate([polygon.min(axis=0), polygon.max(axis=0)])


def _boxes_apart(a: np.ndarray, b: np.ndarray, margin: float) -> bool:
    """Whether two boxes are separated by at least ``margin`` along some axis."""
    return (a[0] >= b[2] + margin or b[0] >= a[2] + margin
            or a[1] >= b[3] + margin or b[1] >= a[3] + margin)


def _place_objects(rng: np.random.Generator, size: int) -> List[ShapeObject]:
    """1 to 4 objects of random classes whose boxes keep ``BOX_MARGIN`` apart.

    An object that finds no free spot in ``PLACEMENT_TRIES`` tries is dropped.
    """
    objects: List[ShapeObject] = []
    for _ in range(rng.integers(MIN_OBJECTS, MAX_OBJECTS + 1)):
        label = int(rng.integers(len(CLASSES)))
        for _ in range(PLACEMENT_TRIES):
            polygon = _sample_polygon(rng, CLASSES[label], size)
            box = polygon_box(polygon)
            if all(_boxes_apart(box, polygon_box(o.polygon), BOX_MARGIN) for o in objects):
                objects.append(ShapeObject(label + 1, polygon))
                break
    return objects


# Textures.

def _stripes(rng: np.random.Generator, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Parallel bands of random period and direction."""
    period, angle = rng.uniform(4, 10), rng.uniform(0, np.pi)
    return (xs * np.cos(angle) + ys * np.sin(angle)) % period < period / 2


def _checker(rng: np.random.Generator, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Axis-aligned checkerboard of random cell size."""
    cell = rng.uniform(3, 8)
    return (np.floor(xs / cell) + np.floor(ys / cell)) % 2 == 1


def _dots(rng: np.random.Generator, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Round dots on a square grid of random spacing."""
    spacing = rng.uniform(5, 10)
    dx, dy = xs % spacing - spacing / 2, ys % spacing - spacing / 2
    return dx ** 2 + dy ** 2 < (0.3 * spacing) ** 2


def _solid(rng: np.random.Generator, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """No pattern: the first colour everywhere."""
    return np.zeros(xs.shape, dtype=bool)


PATTERNS = (_solid, _stripes, _checker, _dots)
CLASS_HUES = (0.0, 0.6, 0.33, 0.14)  # red circles, blue squares, green triangles, yellow stars


def _polygon_mask(polygon: np.ndarray, size: int) -> np.ndarray:
    """Boolean (size, size) mask of the pixels PIL fills for the polygon."""
    mask = Image.new('L', (size, size), 0)
    ImageDraw.Draw(mask).polygon([tuple(p) for p in polygon.tolist()], fill=1)
    return np.asarray(mask, dtype=bool)


def _paint_object(canvas: np.ndarray, polygon: np.ndarray, rng: np.random.Generator,
                  class_index: Optional[int] = None) -> None:
    """Fills the polygon on ``canvas`` with two saturated colours in a pattern.

    Colours and pattern are random, unless ``class_index`` is given: then the class picks
    the hue of both colours (within +-0.03) and the pattern. The same random numbers are
    drawn either way, so the rest of the scene does not depend on that choice.
    """
    hue = rng.random()
    if class_index is not None:
        hue = CLASS_HUES[class_index] + 0.06 * (hue - 0.5)
    first = _hsv_colour(rng, (0.6, 1.0), (0.6, 1.0), hue=hue)
    offset = rng.uniform(0.25, 0.75)  # drawn either way
    second_hue = hue if class_index is not None else hue + offset
    second = _hsv_colour(rng, (0.5, 1.0), (0.3, 1.0), hue=second_hue)
    drawn = int(rng.integers(len(PATTERNS)))
    pattern = PATTERNS[drawn if class_index is None else class_index]
    ys, xs = np.nonzero(_polygon_mask(polygon, canvas.shape[0]))
    use_second = pattern(rng, xs.astype(float), ys.astype(float))
    canvas[ys, xs] = np.round(np.where(use_second[:, None], second, first)).astype(np.uint8)


def _add_noise(image: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """``image + noise`` back in uint8."""
    return np.clip(np.round(image + noise), 0, 255).astype(np.uint8)


def render_image(rng: np.random.Generator, image_size: int, appearance_by_class: bool = False
                 ) -> Tuple[np.ndarray, np.ndarray, List[ShapeObject]]:
    """One scene: (image, the same image without its objects, objects).

    Both images are (H, W, 3) uint8 with the same pixel noise, so they are equal
    everywhere except under the objects. By default only geometry tells the classes
    apart; ``appearance_by_class`` also gives every class its own hue and texture (red
    solid circles, blue striped squares, green checked triangles, yellow dotted stars), as
    colour and texture tell stuff classes such as sky, grass or road apart.
    """
    background = _cluttered_background(rng, image_size)
    objects = _place_objects(rng, image_size)
    painted = background.copy()
    for obj in objects:
        _paint_object(painted, obj.polygon, rng,
                      obj.category_id - 1 if appearance_by_class else None)
    noise = rng.normal(0.0, NOISE_STD, size=background.shape)
    return _add_noise(painted, noise), _add_noise(background, noise), objects
