"""A generated COCO-format instance-segmentation dataset of textured shapes.

The scenes come from :mod:`swinv2_mm.datasets.shapes`. The data is
small and deterministic, so a small detector can learn it on CPU in minutes: it serves
as an end-to-end check of training, not as a benchmark.

``ShapesCocoDataset`` generates the data on first use, so a config needs no download.
"""
import json
import os
from typing import Optional

import numpy as np
from mmdet.datasets import CocoDataset
from mmdet.evaluation import CocoMetric
from mmdet.registry import DATASETS, METRICS
from PIL import Image

from .generation import data_base_dir, publish_dataset
from .shapes import CLASSES, PALETTE, SPLIT_IDS, ShapeObject, polygon_box, render_image  # noqa: F401

FORMAT_VERSION = 1


def default_data_root() -> str:
    """Where the dataset lives unless told otherwise, under ``data_base_dir()``."""
    return os.path.join(data_base_dir(), 'shapes_coco_v1')


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random generator of one image, independent of every other image and split."""
    return np.random.default_rng([seed, SPLIT_IDS[split], index])


# COCO annotations.

def _polygon_area(polygon: np.ndarray) -> float:
    """Shoelace area."""
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _annotation(obj: ShapeObject, ann_id: int, image_id: int, size: int) -> dict:
    """The COCO annotation of one object; its bbox is clipped to the image."""
    x0, y0, x1, y1 = np.clip(polygon_box(obj.polygon), 0, size).tolist()
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


def generate_shapes_coco(root: str, num_train: int = 400, num_val: int = 100,
                         image_size: int = 192, seed: int = 0) -> str:
    """Writes the dataset under ``root`` in mmdet's CocoDataset layout; returns ``root``.

    Nothing is done when ``root`` already holds a dataset made with these parameters;
    see ``publish_dataset`` for how partial and concurrent generation is handled.
    """
    def build(tmp: str) -> None:
        os.makedirs(os.path.join(tmp, 'annotations'))
        _write_split(tmp, 'train', num_train, image_size, seed)
        _write_split(tmp, 'val', num_val, image_size, seed)

    params = dict(num_train=num_train, num_val=num_val, image_size=image_size, seed=seed,
                  format_version=FORMAT_VERSION)
    return publish_dataset(root, params, build)


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
