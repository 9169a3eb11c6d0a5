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

from .generation import GeneratedData, GeneratedDataMixin
from .shapes import CLASSES, PALETTE, SPLIT_IDS, ShapeObject, render_image

CLASSES_ADE = ('background',) + CLASSES
PALETTE_ADE = [(0, 0, 0)] + PALETTE

UNLABELLED, BACKGROUND = 0, 1  # on disk; object labels are category_id + 1
STREAM = 0xADE  # extra seed word: scenes independent of the COCO generator's
SPLIT_FOLDERS = {'train': 'training', 'val': 'validation'}
JPEG_QUALITY = 95


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
    """Renders ``root/images/<folder>/*.jpg`` and ``root/annotations/<folder>/*.png``.

    JPEGs are saved at a fixed quality without chroma subsampling: identical input gives
    identical bytes, and colour edges stay on the labelled pixels.
    """
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


# The dataset in ADE20K's layout: generate_shapes_ade writes it once for the parameters
# below (by position or name, after the folder) and returns its folder.
SHAPES_ADE = GeneratedData('shapes_ade', version=3, write_split=_write_split,
                           defaults=dict(num_train=400, num_val=100, image_size=192, seed=0))
default_data_root = SHAPES_ADE.default_root
generate_shapes_ade = SHAPES_ADE.generate


@DATASETS.register_module()
class ShapesADEDataset(GeneratedDataMixin, BaseSegDataset):
    """mmseg dataset over the generated shapes in ADE20K form, generated first when needed.

    Args:
        data_root: Dataset folder; ``default_data_root()`` when None.
        generate: Keyword arguments of ``generate_shapes_ade`` (``num_train``,
            ``num_val``, ``image_size``, ``seed``).
        img_suffix, seg_map_suffix, reduce_zero_label: As ``ADE20KDataset``.
        **kwargs: Any other BaseSegDataset argument, ``data_prefix`` among them.
    """

    METAINFO = dict(classes=CLASSES_ADE, palette=PALETTE_ADE)
    GENERATED = SHAPES_ADE

    def __init__(self, *, data_root: Optional[str] = None, generate: Optional[dict] = None,
                 img_suffix: str = '.jpg', seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = True, **kwargs) -> None:
        super().__init__(data_root=self.generated_root(data_root, generate),
                         img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)
