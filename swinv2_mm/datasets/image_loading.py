"""Image loading that names every corrupt or unreadable image, and can skip and count them.

The tools put ``CheckedLoadImageFromFile`` in place of mmcv's ``LoadImageFromFile`` in every
pipeline (same arguments). mmcv's loader stops on a bad file with a bare assertion, or with
``ignore_empty`` drops it silently; this one raises ``CorruptImageError`` with the path and
the reason (unreadable, empty, undecodable: truncated or not an image). With
``skip_corrupt=True`` (``tools/train.py --skip-corrupt-images``, training data only)
the transform returns None, so mmengine's dataset draws another sample, and the path is
appended to ``skipped_log`` and logged.
"""
import logging
from typing import Optional

import mmcv
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine import fileio
from mmengine.logging import print_log
from mmengine.registry import TRANSFORMS


class CorruptImageError(ValueError):
    """An image file that cannot be read or decoded, or is truncated."""


@TRANSFORMS.register_module(force=True)
class CheckedLoadImageFromFile(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` that fails with the path of a corrupt image, or skips it."""

    def __init__(self, skip_corrupt: bool = False, skipped_log: Optional[str] = None, **kwargs):
        super().__init__(**kwargs)
        self.skip_corrupt = skip_corrupt
        self.skipped_log = skipped_log

    def transform(self, results: dict) -> Optional[dict]:
        path = results['img_path']
        try:
            data = fileio.get(path, backend_args=self.backend_args)
        except Exception as err:  # any storage backend error
            return self._corrupt(path, f'cannot be read ({type(err).__name__}: {err})')
        if not data:
            return self._corrupt(path, 'is empty')
        try:
            img = mmcv.imfrombytes(data, flag=self.color_type, backend=self.imdecode_backend)
        except Exception as err:  # decoders raise several types
            return self._corrupt(path, f'cannot be decoded ({type(err).__name__}: {err})')
        if img is None:
            return self._corrupt(path, 'cannot be decoded (truncated, damaged or not an image)')
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def _corrupt(self, path: str, problem: str) -> None:
        if not self.skip_corrupt:
            raise CorruptImageError(
                f'image {path!r} {problem}. Replace or remove it, or train with '
                f'tools/train.py --skip-corrupt-images to skip such images (each is logged, and '
                f'listed in WORK_DIR/skipped_images.txt)')
        if self.skipped_log:
            with open(self.skipped_log, 'a') as f:  # one short append per line: atomic
                f.write(f'{path}\t{problem}\n')
        print_log(f'skipped corrupt image {path!r}: {problem}', logger='current',
                  level=logging.WARNING)
        return None

