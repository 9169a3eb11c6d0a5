"""Puts the image loader that names (or skips) corrupt images into every pipeline."""
import os.path as osp

from mmengine.config import Config

from .config import retype

SKIPPED_IMAGES_FILE = 'skipped_images.txt'


def use_checked_image_loading(cfg: Config, skip_corrupt: bool = False) -> None:
    """Loads images with ``CheckedLoadImageFromFile``: a corrupt or truncated image stops the
    run with its path, or, with ``skip_corrupt``, training skips it, logs it and lists it
    in ``WORK_DIR/skipped_images.txt`` (validation and test images always stop the run)."""
    from ..datasets import image_loading  # noqa: F401  (registers the transform)
    skipped_log = osp.join(cfg.work_dir, SKIPPED_IMAGES_FILE)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        skip = skip_corrupt and key == 'train_dataloader'
        fields = dict(skip_corrupt=True, skipped_log=skipped_log) if skip else {}
        if cfg.get(key):
            retype(cfg[key], 'LoadImageFromFile', 'CheckedLoadImageFromFile', **fields)
    if skip_corrupt:
        cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [
            dict(type='SkippedImagesHook', skipped_log=skipped_log)]
