"""Unlabelled generated images for self-supervised pre-training (SimMIM), as an mmpretrain
``CustomDataset`` over a folder of JPEGs.

Scenes are drawn like the segmentation demo's (``shapes.render_image`` with class
appearance) but from their own random stream, so pre-training never sees the fine-tuning
images. No labels are written. Importing this module imports mmpretrain; configs list
``swinv2_mm.datasets.shapes_images`` in their ``custom_imports``.
"""
import os
from typing import Optional

import numpy as np
from mmpretrain.datasets import CustomDataset
from mmpretrain.registry import DATASETS
from PIL import Image

from .generation import GeneratedData, GeneratedDataMixin
from .shapes import render_image

STREAM = 0x51A  # extra seed word: scenes independent of the COCO and ADE generators'
JPEG_QUALITY = 95


def _write_split(root: str, split: str, num_images: int, image_size: int, seed: int) -> None:
    """Renders ``root/<split>/*.jpg``."""
    folder = os.path.join(root, split)
    os.makedirs(folder)
    for index in range(num_images):
        rng = np.random.default_rng([seed, index, STREAM])
        image, _, _ = render_image(rng, image_size, appearance_by_class=True)
        Image.fromarray(image).save(os.path.join(folder, f'{index:06d}.jpg'),
                                    quality=JPEG_QUALITY, subsampling=0)


SHAPES_IMAGES = GeneratedData('shapes_images', version=1, write_split=_write_split,
                              defaults=dict(num_train=2000, image_size=192, seed=0),
                              splits=('train',))


@DATASETS.register_module()
class ShapesImagesDataset(GeneratedDataMixin, CustomDataset):
    """mmpretrain dataset of the generated unlabelled images, generated first when needed.

    Args:
        data_root: Dataset folder; the default generated folder when None.
        generate: Keyword arguments of ``SHAPES_IMAGES.generate`` (``num_train``,
            ``image_size``, ``seed``).
        **kwargs: Any other ``CustomDataset`` argument (``pipeline`` among them).
    """

    GENERATED = SHAPES_IMAGES

    def __init__(self, *, data_root: Optional[str] = None, generate: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(data_root=self.generated_root(data_root, generate),
                         data_prefix='train', with_label=False, **kwargs)
