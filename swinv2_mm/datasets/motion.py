"""Clips of a camera panning over a scene of shapes; the label is the direction the
picture moves.

No single frame tells the classes apart (every frame is a crop of a random static scene),
so a model must use motion. The module imports no toolbox:
:mod:`swinv2_mm.datasets.shapes_motion` writes the clips in MMAction2's raw-frame layout.
"""
from typing import Tuple

import numpy as np

from .shapes import (CLASSES as SHAPE_NAMES, NOISE_STD, _add_noise, _cluttered_background,
                     _paint_object, _polygon_mask, _sample_polygon)

DIRECTIONS = ('right', 'left', 'down', 'up')
STEPS = {'right': (1, 0), 'left': (-1, 0), 'down': (0, 1), 'up': (0, -1)}  # (dx, dy)
SPEED_RANGE = (1.0, 1.5)  # pixels per frame: a sub-patch shift between neighbouring frames
SHAPES_PER_SCENE = (3, 6)  # three to five shapes (half-open range)
FRAME_SHAPE_SIZE = 48  # shapes are drawn at the scale of a frame of this many pixels
CLUTTER = dict(lines=(3, 8), blobs=(3, 8))  # lighter than the 192 px image sets: frames are small


def _sprite(rng: np.random.Generator, size: int) -> Tuple[np.ndarray, np.ndarray]:
    """A random shape (sized as in a FRAME_SHAPE_SIZE image) painted at the top-left corner
    of a ``size`` canvas: (RGB, mask)."""
    name = SHAPE_NAMES[int(rng.integers(len(SHAPE_NAMES)))]
    polygon = _sample_polygon(rng, name, FRAME_SHAPE_SIZE)
    polygon = polygon - polygon.min(axis=0)
    canvas = np.zeros((size, size, 3), np.uint8)
    _paint_object(canvas, polygon, rng)
    return canvas, _polygon_mask(polygon, size)


def _extent(mask: np.ndarray) -> Tuple[int, int]:
    """(width, height) of the pixels a mask covers from the top-left corner."""
    ys, xs = np.nonzero(mask)
    return int(xs.max()) + 1, int(ys.max()) + 1


def _paste(canvas: np.ndarray, sprite: np.ndarray, mask: np.ndarray, x: int, y: int) -> None:
    """Paints ``sprite`` (drawn at the top-left corner) onto ``canvas`` at offset (x, y)."""
    where = np.roll(mask, (y, x), (0, 1))
    canvas[where] = np.roll(sprite, (y, x), (0, 1))[where]


def _scene(rng: np.random.Generator, size: int, num_shapes: int) -> np.ndarray:
    """A static cluttered scene of ``size`` x ``size`` px holding ``num_shapes`` shapes."""
    scene = _cluttered_background(rng, size, **CLUTTER)
    for _ in range(num_shapes):
        sprite, mask = _sprite(rng, size)
        x, y = (int(rng.integers(0, size - e + 1)) for e in _extent(mask))
        _paste(scene, sprite, mask, x, y)
    return scene


def render_clip(rng: np.random.Generator, num_frames: int, size: int
                ) -> Tuple[np.ndarray, int]:
    """(frames (T, size, size, 3) uint8, direction index) of one clip.

    The camera pans over a larger static scene of shapes and clutter, so the whole
    picture moves the same way (the label) at a constant speed of 1 to 1.5 px per frame.
    """
    speed = rng.uniform(*SPEED_RANGE)
    travel = int(round(speed * (num_frames - 1)))
    scene = _scene(rng, size + travel, int(rng.integers(*SHAPES_PER_SCENE)))
    label = int(rng.integers(len(DIRECTIONS)))
    step_x, step_y = STEPS[DIRECTIONS[label]]
    # content moving by +d means the crop window moving by -d
    x0, y0 = (travel if step > 0 else 0 for step in (step_x, step_y))
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    for t in range(num_frames):
        moved = round(travel * t / max(num_frames - 1, 1))
        x, y = x0 - step_x * moved, y0 - step_y * moved
        frame = scene[y:y + size, x:x + size]
        frames[t] = _add_noise(frame, rng.normal(0.0, NOISE_STD, size=frame.shape))
    return frames, label
