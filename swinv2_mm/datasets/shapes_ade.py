"""The generated shapes as a semantic-segmentation dataset in ADE20K's layout and labels.

Scenes come from ``shapes.render_image`` (drawn from their own random stream, so
they are not the COCO dataset's images), with every class given its own hue and texture:
per-pixel labels are learnt from what a pixel's neighbourhood looks like, as ADE's stuff
classes are, while the COCO set keeps both random so that only geometry tells. Files follow mmseg's ``ADE20KDataset``:
``images/{training,validation}/*.jpg`` and ``annotations/{training,validation}/*.png``,
with ADE's label convention for ``reduce_zero_label=True``: 0 unlabelled, 1 background,
2..5 circle, square, triangle, star (after reduction 0 background, 1..4 the shapes, 255
ignored). A 1 px band along each object's outline is left unlabelled, as ADE does with
uncertain pixels, so that boundary pixels blurred by JPEG teach no wrong class.

Importing this module imports mmseg (not mmdet); configs list
``swinv2_mm.datasets.shapes_ade`` in their ``custom_imports``.
"""
import os
from typing import List, Optional

import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS
from PIL import Image, ImageDraw

from .generation import data_base_dir, publish_dataset
from .shapes import CLASSES, PALETTE, SPLIT_IDS, ShapeObject, render_image

CLASSES_ADE = ('background',) + CLASSES
PALETTE_ADE = [(0, 0, 0)] + PALETTE

UNLABELLED, BACKGROUND = 0, 1  # on disk; object labels are category_id + 1
FORMAT = 'shapes_ade/3'  # stamped, so a folder of another generated format is replaced
STREAM = 0xADE  # extra seed word: scenes independent of the COCO generator's
SPLIT_FOLDERS = {'train': 'training', 'val': 'validation'}
JPEG_QUALITY = 95


def default_data_root() -> str:
    """Where the dataset lives unless told otherwise, under ``data_base_dir()``."""
    return os.path.join(data_base_dir(), 'shapes_ade_v3')


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random generator of one image, independent of every other image, split and
    of the COCO generator's images."""
    return np.random.default_rng([seed, SPLIT_IDS[split], index, STREAM])


def label_map(objects: List[ShapeObject], image_size: int) -> np.ndarray:
    """(H, W) uint8 ADE labels of a scene: each object's polygon filled with its label on
    background, then its outline drawn 1 px wide as unlabelled."""
    labels = Image.new('L', (image_size, image_size), BACKGROUND)
    draw = ImageDraw.Draw(labels)
    outlines = [[tuple(p) for p in obj.polygon.tolist()] for obj in objects]
    for obj, outline in zip(objects, outlines):
        draw.polygon(outline, fill=obj.category_id + 1)
    for outline in outlines:
        draw.polygon(outline, outline=UNLABELLED, width=1)
    return np.asarray(labels)


def _write_split(root: str, split: str, num_images: int, image_size: int, seed: int) -> None:
    """Renders ``root/images/<folder>/*.jpg`` and ``root/annotations/<folder>/*.png``."""
    folder = SPLIT_FOLDERS[split]
    image_dir = os.path.join(root, 'images', folder)
    label_dir = os.path.join(root, 'annotations', folder)
    os.makedirs(image_dir)
    os.makedirs(label_dir)
    for index in range(num_images):
        image, _, objects = render_image(image_rng(seed, split, index), image_size,
                                         appearance_by_class=True)
        Image.fromarray(image).save(os.path.join(image_dir, f'{index:06d}.jpg'),
                                    quality=JPEG_QUALITY, subsampling=0)
        Image.fromarray(label_map(objects, image_size), mode='L').save(
            os.path.join(label_dir, f'{index:06d}.png'))


def generate_shapes_ade(root: str, num_train: int = 400, num_val: int = 100,
                        image_size: int = 192, seed: int = 0) -> str:
    """Writes the dataset under ``root`` in ADE20K's layout; returns ``root``.

    Nothing is done when ``root`` already holds a dataset made with these parameters;
    see ``publish_dataset`` for how partial and concurrent generation is handled.
    JPEGs are saved at a fixed quality without chroma subsampling: identical input gives
    identical bytes, and colour edges stay on the labelled pixels.
    """
    def build(tmp: str) -> None:
        _write_split(tmp, 'train', num_train, image_size, seed)
        _write_split(tmp, 'val', num_val, image_size, seed)

    params = dict(num_train=num_train, num_val=num_val, image_size=image_size, seed=seed,
                  format=FORMAT)
    return publish_dataset(root, params, build)


@DATASETS.register_module()
class ShapesADEDataset(BaseSegDataset):
    """mmseg dataset over the generated shapes in ADE20K form, generated first when needed.

    Args:
        data_root: Dataset folder; ``default_data_root()`` when None.
        generate: Keyword arguments of ``generate_shapes_ade`` (``num_train``,
            ``num_val``, ``image_size``, ``seed``).
        img_suffix, seg_map_suffix, reduce_zero_label: As ``ADE20KDataset``.
        **kwargs: Any other BaseSegDataset argument, ``data_prefix`` among them.
    """

    METAINFO = dict(classes=CLASSES_ADE, palette=PALETTE_ADE)
    GENERATES_DATA = True  # tools skip their missing-data check for it

    def __init__(self, *, data_root: Optional[str] = None, generate: Optional[dict] = None,
                 img_suffix: str = '.jpg', seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = True, **kwargs) -> None:
        data_root = generate_shapes_ade(data_root or default_data_root(), **(generate or {}))
        super().__init__(data_root=data_root, img_suffix=img_suffix,
                         seg_map_suffix=seg_map_suffix, reduce_zero_label=reduce_zero_label,
                         **kwargs)
