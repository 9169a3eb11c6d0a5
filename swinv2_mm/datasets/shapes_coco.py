"""A generated COCO-format instance-segmentation dataset of textured shapes.

Four classes that differ only by geometry (circle, square, triangle, star) are drawn
with class-independent colours and textures on a cluttered background. The data is
small and deterministic, so a small detector can learn it on CPU in minutes: it serves
as an end-to-end check of training, not as a benchmark.

``ShapesCocoDataset`` generates the data on first use, so a config needs no download.
"""
import colorsys
import json
import os
import shutil
from typing import List, NamedTuple, Optional, Tuple

import numpy as np
from mmdet.datasets import CocoDataset
from mmdet.evaluation import CocoMetric
from mmdet.registry import DATASETS, METRICS
from PIL import Image, ImageDraw

CLASSES = ('circle', 'square', 'triangle', 'star')
PALETTE = [(220, 20, 60), (0, 130, 200), (60, 180, 75), (255, 165, 0)]

FORMAT_VERSION = 1
STAMP_NAME = '.complete'
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


def default_data_root() -> str:
    """Where the dataset lives unless told otherwise: $SWINV2_MM_DATA or the user cache."""
    base = os.environ.get('SWINV2_MM_DATA') or os.path.expanduser('~/.cache/swinv2_mm/data')
    return os.path.join(base, 'shapes_coco_v1')


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random generator of one image, independent of every other image and split."""
    return np.random.default_rng([seed, SPLIT_IDS[split], index])


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


def _draw_clutter(image: Image.Image, rng: np.random.Generator) -> None:
    """Thin line segments and small blobs (< 6 px) of random colours, as distractors."""
    size = image.width
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(20, 41)):
        x, y = rng.uniform(0, size, size=2)
        angle = rng.uniform(0, 2 * np.pi)
        length = rng.uniform(0.1, 0.6) * size
        end = (x + length * np.cos(angle), y + length * np.sin(angle))
        draw.line([(x, y), end], fill=_random_rgb(rng), width=int(rng.integers(1, 3)))
    for _ in range(rng.integers(15, 36)):
        x, y = rng.uniform(0, size, size=2)
        w, h = rng.uniform(2, 5.5, size=2)
        draw.ellipse([x, y, x + w, y + h], fill=_random_rgb(rng))


def _cluttered_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Gradient plus clutter, (size, size, 3) uint8."""
    image = Image.fromarray(np.round(_gradient(rng, size)).astype(np.uint8))
    _draw_clutter(image, rng)
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


def _box(polygon: np.ndarray) -> np.ndarray:
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
            box = _box(polygon)
            if all(_boxes_apart(box, _box(o.polygon), BOX_MARGIN) for o in objects):
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


def _polygon_mask(polygon: np.ndarray, size: int) -> np.ndarray:
    """Boolean (size, size) mask of the pixels PIL fills for the polygon."""
    mask = Image.new('L', (size, size), 0)
    ImageDraw.Draw(mask).polygon([tuple(p) for p in polygon.tolist()], fill=1)
    return np.asarray(mask, dtype=bool)


def _paint_object(canvas: np.ndarray, polygon: np.ndarray, rng: np.random.Generator) -> None:
    """Fills the polygon on ``canvas`` with a saturated colour and a random pattern.

    Colour and pattern are drawn independently of the class, so only geometry tells
    classes apart.
    """
    first_hue = rng.random()
    first = _hsv_colour(rng, (0.6, 1.0), (0.6, 1.0), hue=first_hue)
    second = _hsv_colour(rng, (0.5, 1.0), (0.3, 1.0), hue=first_hue + rng.uniform(0.25, 0.75))
    pattern = PATTERNS[rng.integers(len(PATTERNS))]
    ys, xs = np.nonzero(_polygon_mask(polygon, canvas.shape[0]))
    use_second = pattern(rng, xs.astype(float), ys.astype(float))
    canvas[ys, xs] = np.round(np.where(use_second[:, None], second, first)).astype(np.uint8)


def _add_noise(image: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """``image + noise`` back in uint8."""
    return np.clip(np.round(image + noise), 0, 255).astype(np.uint8)


def render_image(rng: np.random.Generator,
                 image_size: int) -> Tuple[np.ndarray, np.ndarray, List[ShapeObject]]:
    """One scene: (image, the same image without its objects, objects).

    Both images are (H, W, 3) uint8 with the same pixel noise, so they are equal
    everywhere except under the objects.
    """
    background = _cluttered_background(rng, image_size)
    objects = _place_objects(rng, image_size)
    painted = background.copy()
    for obj in objects:
        _paint_object(painted, obj.polygon, rng)
    noise = rng.normal(0.0, NOISE_STD, size=background.shape)
    return _add_noise(painted, noise), _add_noise(background, noise), objects


# COCO annotations.

def _polygon_area(polygon: np.ndarray) -> float:
    """Shoelace area."""
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _annotation(obj: ShapeObject, ann_id: int, image_id: int, size: int) -> dict:
    """The COCO annotation of one object; its bbox is clipped to the image."""
    x0, y0, x1, y1 = np.clip(_box(obj.polygon), 0, size).tolist()
    return dict(
        id=ann_id,
        image_id=image_id,
        category_id=obj.category_id,
        segmentation=[[round(v, 2) for v in obj.polygon.reshape(-1).tolist()]],
        bbox=[round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
        area=round(_polygon_area(obj.polygon), 2),
        iscrowd=0,
    )


def _write_split(root: str, split: str, num_images: int, image_size: int, seed: int) -> None:
    """Renders ``root/<split>/*.png`` and ``root/annotations/instances_<split>.json``."""
    os.makedirs(os.path.join(root, split), exist_ok=True)
    images, annotations = [], []
    for index in range(num_images):
        image, _, objects = render_image(image_rng(seed, split, index), image_size)
        file_name = f'{index:06d}.png'
        Image.fromarray(image).save(os.path.join(root, split, file_name))
        image_id = index + 1
        images.append(dict(id=image_id, file_name=file_name,
                           width=image_size, height=image_size))
        for obj in objects:
            annotations.append(_annotation(obj, len(annotations) + 1, image_id, image_size))
    coco = dict(images=images, annotations=annotations,
                categories=[dict(id=i + 1, name=name) for i, name in enumerate(CLASSES)])
    with open(os.path.join(root, 'annotations', f'instances_{split}.json'), 'w') as f:
        json.dump(coco, f, separators=(',', ':'))


# Idempotent, atomic publication.

def _stamp(**params) -> str:
    """The content of the completion stamp: the parameters and the format version."""
    return json.dumps(dict(params, format_version=FORMAT_VERSION), sort_keys=True)


def _read_stamp(root: str) -> Optional[str]:
    """The stamp of the dataset at ``root``, None when there is none."""
    try:
        with open(os.path.join(root, STAMP_NAME)) as f:
            return f.read()
    except OSError:
        return None


def _discard(path: str) -> None:
    """Moves ``path`` aside (atomic) and deletes it; a path already gone is fine."""
    aside = f'{path}.old-{os.getpid()}'
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    shutil.rmtree(aside)


def _publish(tmp: str, root: str, stamp: str) -> None:
    """Moves the complete ``tmp`` to ``root``, replacing anything stale there.

    When a concurrent process published the same dataset first, ``tmp`` is dropped.
    """
    if _read_stamp(root) == stamp:
        shutil.rmtree(tmp)
        return
    if os.path.lexists(root):
        _discard(root)
    try:
        os.rename(tmp, root)
    except OSError:
        if _read_stamp(root) != stamp:
            raise
        shutil.rmtree(tmp)


def generate_shapes_coco(root: str, num_train: int = 400, num_val: int = 100,
                         image_size: int = 192, seed: int = 0) -> str:
    """Writes the dataset under ``root`` in mmdet's CocoDataset layout; returns ``root``.

    Nothing is done when ``root`` already holds a dataset made with these parameters.
    Otherwise it is rendered into ``<root>.tmp-<pid>`` and renamed into place, so
    readers never see a partial dataset and concurrent callers (data-parallel ranks)
    all end up with the same complete one.
    """
    root = os.path.abspath(os.path.expanduser(root))
    stamp = _stamp(num_train=num_train, num_val=num_val, image_size=image_size, seed=seed)
    if _read_stamp(root) == stamp:
        return root
    tmp = f'{root}.tmp-{os.getpid()}'
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(tmp, 'annotations'))
    _write_split(tmp, 'train', num_train, image_size, seed)
    _write_split(tmp, 'val', num_val, image_size, seed)
    with open(os.path.join(tmp, STAMP_NAME), 'w') as f:
        f.write(stamp)
    _publish(tmp, root, stamp)
    return root


@DATASETS.register_module()
class ShapesCocoDataset(CocoDataset):
    """CocoDataset over the generated shapes, which it generates first when needed.

    Args:
        data_root: Dataset folder; ``default_data_root()`` when None.
        generate: Keyword arguments of ``generate_shapes_coco`` (``num_train``,
            ``num_val``, ``image_size``, ``seed``).
        **kwargs: Any other CocoDataset argument.
    """

    METAINFO = dict(classes=CLASSES, palette=PALETTE)
    GENERATES_DATA = True  # tools skip their missing-data check for it

    def __init__(self, *, data_root: Optional[str] = None,
                 generate: Optional[dict] = None, **kwargs) -> None:
        if data_root is None:
            data_root = default_data_root()
        data_root = generate_shapes_coco(data_root, **(generate or {}))
        super().__init__(data_root=data_root, **kwargs)


@METRICS.register_module()
class ShapesCocoMetric(CocoMetric):
    """mmdet's CocoMetric against a split of the generated shapes (generated when needed)."""

    def __init__(self, *, data_root: Optional[str] = None, split: str = 'val',
                 generate: Optional[dict] = None, **kwargs) -> None:
        root = generate_shapes_coco(data_root or default_data_root(), **(generate or {}))
        super().__init__(ann_file=os.path.join(root, 'annotations', f'instances_{split}.json'),
                         **kwargs)
