"""``FiveCrop`` for mmaction2: the four corners and the centre of every frame, no flips.

The paper tests Video-SwinV2-G with 4 clips x 5 crops; mmaction2 has three crops
(``ThreeCrop``) and ten (``TenCrop``: these five and their mirror images), not five.
Import ``swinv2_mm.datasets.video_transforms`` to register it in mmaction2's TRANSFORMS.
"""
from typing import List, Tuple

import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform


def five_crop_boxes(height: int, width: int, crop: Tuple[int, int]) -> List[Tuple[int, ...]]:
    """(x1, y1, x2, y2) of the top-left, top-right, bottom-left, bottom-right and centre
    crops of size ``crop`` = (w, h) in a (height, width) frame."""
    crop_w, crop_h = crop
    if crop_w > width or crop_h > height:
        raise ValueError(f'FiveCrop: crop_size (w, h) = {crop} is larger than the frames '
                         f'({width} x {height}); resize the frames to at least the crop first')
    right, bottom = width - crop_w, height - crop_h
    corners = [(0, 0), (right, 0), (0, bottom), (right, bottom), (right // 2, bottom // 2)]
    return [(x, y, x + crop_w, y + crop_h) for x, y in corners]


@TRANSFORMS.register_module()
class FiveCrop(BaseTransform):
    """Five crops of every frame (corners and centre), appended crop after crop, so that
    ``FormatShape`` counts them as views as it does for ``ThreeCrop``.

    Args:
        crop_size: an int for a square crop or (w, h).
    """

    def __init__(self, crop_size):
        size = (crop_size, crop_size) if isinstance(crop_size, int) else tuple(crop_size)
        if len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size):
            raise ValueError(f'FiveCrop: crop_size must be a positive int or (w, h), '
                             f'got {crop_size!r}')
        self.crop_size = size

    def transform(self, results: dict) -> dict:
        if results.get('lazy'):
            raise ValueError('FiveCrop: lazy mode is not supported; drop lazy=True from the '
                             'transforms before it')
        frames = results['imgs']
        boxes = five_crop_boxes(*frames[0].shape[:2], self.crop_size)
        results['imgs'] = [frame[y1:y2, x1:x2] for x1, y1, x2, y2 in boxes for frame in frames]
        results['crop_bbox'] = np.array([box for box in boxes for _ in frames])
        results['img_shape'] = results['imgs'][0].shape[:2]
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(crop_size={self.crop_size})'
