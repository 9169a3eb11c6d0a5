"""A generated COCO-format instance-segmentation dataset of textured shapes.

The scenes come from :mod:`swinv2_mm.datasets.shapes`. The data is
small and deterministic, so a small detector can learn it on CPU in minutes: it serves
as an end-to-end check of training, not as a benchmark.

``ShapesCocoDataset`` generates the data on first use, so a config needs no download.
Besides the images and their COCO annotations it writes semantic maps in the layout of
COCO-stuff's ``stuffthingmaps`` (what HTC's semantic branch learns from): one PNG per image
under ``stuffthingmaps/<split>/``, 0 for background and the category id under each object.
"""
import functools
import json
import os
from typing import Optional, Sequence

import numpy as np
from mmdet.datasets import CocoDataset
from mmdet.evaluation import CocoMetric
from mmdet.registry import DATASETS, METRICS
from PIL import Image
from pycocotools import mask as mask_utils

from .generation import GeneratedData, GeneratedDataMixin, check_publishable, publish_dataset
from .shapes import CLASSES, PALETTE, SPLIT_IDS, ShapeObject, polygon_box, render_image  # noqa: F401


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
    os.makedirs(os.path.join(root, 'annotations'), exist_ok=True)
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


# Semantic maps: derived from the annotation files alone, so they are added to a dataset
# generated before they existed without touching its images or annotations.

SEMANTIC_DIR = 'stuffthingmaps'
SEMANTIC_FORMAT = 'stuffthingmaps/1'


def instance_mask(ann: dict, height: int, width: int) -> np.ndarray:
    """The annotation's polygons as a boolean mask, rasterised as mmdet's LoadAnnotations does."""
    rle = mask_utils.merge(mask_utils.frPyObjects(ann['segmentation'], height, width))
    return mask_utils.decode(rle).astype(bool)


def semantic_map(image: dict, anns: list) -> np.ndarray:
    """The (H, W) uint8 class map of one image: 0 for background, the category id under
    each object's mask (objects never overlap)."""
    height, width = image['height'], image['width']
    classes = np.zeros((height, width), dtype=np.uint8)
    for ann in anns:
        classes[instance_mask(ann, height, width)] = ann['category_id']
    return classes


def _write_semantic_maps(root: str, split: str, folder: str) -> None:
    """Writes ``folder/<image name>.png`` for every image of the split's annotation file."""
    with open(os.path.join(root, 'annotations', f'instances_{split}.json')) as f:
        coco = json.load(f)
    anns_of = {image['id']: [] for image in coco['images']}
    for ann in coco['annotations']:
        anns_of[ann['image_id']].append(ann)
    for image in coco['images']:
        name = os.path.splitext(image['file_name'])[0] + '.png'
        Image.fromarray(semantic_map(image, anns_of[image['id']])).save(
            os.path.join(folder, name))


def add_semantic_maps(root: str, splits: Sequence[str]) -> str:
    """Publishes ``root/stuffthingmaps/<split>/`` for each split that lacks it (through
    ``publish_dataset``, as the dataset itself: written aside, stamped, renamed into place,
    so concurrent data-parallel ranks never see a partial folder; a folder there that is not
    an older copy of the maps is refused, untouched); returns ``root``."""
    for split in splits:
        publish_dataset(os.path.join(root, SEMANTIC_DIR, split),
                        dict(format=SEMANTIC_FORMAT, split=split),
                        functools.partial(_write_semantic_maps, root, split))
    return root


def check_semantic_maps_publishable(root: str, splits: Sequence[str]) -> None:
    """Raises DataRootError, writing nothing, when ``add_semantic_maps`` would refuse a
    split's folder."""
    for split in splits:
        check_publishable(os.path.join(root, SEMANTIC_DIR, split), SEMANTIC_FORMAT.split('/')[0])


# The dataset in mmdet's CocoDataset layout: generate_shapes_coco writes it once for the
# parameters below (by position or name, after the folder) and returns its folder.
SHAPES_COCO = GeneratedData('shapes_coco', version=1, write_split=_write_split,
                            defaults=dict(num_train=400, num_val=100, image_size=192, seed=0))
default_data_root = SHAPES_COCO.default_root


def generate_shapes_coco(root: Optional[str] = None, *args, **kwargs) -> str:
    """``SHAPES_COCO.generate`` (same arguments), then the semantic maps where missing, also
    in a dataset generated before they existed; returns the dataset folder."""
    root = SHAPES_COCO.generate(root, *args, **kwargs)
    return add_semantic_maps(root, SHAPES_COCO.splits)


@DATASETS.register_module()
class ShapesCocoDataset(GeneratedDataMixin, CocoDataset):
    """CocoDataset over the generated shapes, which it generates first when needed.

    Args:
        data_root: Dataset folder; ``default_data_root()`` when None.
        generate: Keyword arguments of ``generate_shapes_coco`` (``num_train``,
            ``num_val``, ``image_size``, ``seed``).
        **kwargs: Any other CocoDataset argument.
    """

    METAINFO = dict(classes=CLASSES, palette=PALETTE)
    GENERATED = SHAPES_COCO

    def __init__(self, *, data_root: Optional[str] = None,
                 generate: Optional[dict] = None, **kwargs) -> None:
        super().__init__(data_root=self.generated_root(data_root, generate), **kwargs)

    @classmethod
    def generated_root(cls, data_root: Optional[str] = None,
                       generate: Optional[dict] = None) -> str:
        """The dataset folder, generated when needed, semantic maps included."""
        return generate_shapes_coco(data_root, **(generate or {}))

    @classmethod
    def check_generated_root(cls, data_root: Optional[str] = None,
                             generate: Optional[dict] = None) -> str:
        """The dataset folder's check, and, where it already holds this very dataset (so it
        is kept), that of the semantic-map folders ``generated_root`` may add inside it."""
        root = super().check_generated_root(data_root, generate)
        if SHAPES_COCO.holds(root, **(generate or {})):
            check_semantic_maps_publishable(root, SHAPES_COCO.splits)
        return root


@METRICS.register_module()
class ShapesCocoMetric(GeneratedDataMixin, CocoMetric):
    """mmdet's CocoMetric against a split of the generated shapes (generated when needed)."""

    GENERATED = SHAPES_COCO

    def __init__(self, *, data_root: Optional[str] = None, split: str = 'val',
                 generate: Optional[dict] = None, **kwargs) -> None:
        root = self.generated_root(data_root, generate)
        super().__init__(ann_file=os.path.join(root, 'annotations', f'instances_{split}.json'),
                         **kwargs)
