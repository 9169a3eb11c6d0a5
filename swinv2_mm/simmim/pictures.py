"""Pictures of what SimMIM pre-training learnt: original, masked input and reconstruction."""
import os
from typing import List, Optional

import numpy as np
import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from PIL import Image

from .target import NormalizedTargetL1Loss, local_mean_std

MASKED_GREY = 128


class SimMIMPicturesHook(Hook):
    """Saves, for the first ``num_images`` training images, one row of four pictures:
    the original crop, the masked input (masked patches grey), the reconstruction of every
    pixel and the reconstruction pasted into the masked patches only.

    Written to ``<work_dir>/simmim_pictures/iter_<n>.png`` every ``interval`` iterations
    (0: only at the end of training), on the main process. The crops and masks are drawn
    with a fixed seed, so every picture of a run shows the same inputs. A reconstruction of
    the locally normalised target is shown in pixels by undoing the normalisation with the
    original's local mean and deviation.
    """

    priority = 'LOW'

    def __init__(self, num_images: int = 4, interval: int = 0, seed: int = 0):
        if not isinstance(num_images, int) or num_images < 1:
            raise ValueError(f'num_images: expected an int >= 1, got {num_images!r}')
        if not isinstance(interval, int) or interval < 0:
            raise ValueError(f'interval: expected 0 (end of training) or an int >= 1 '
                             f'iterations, got {interval!r}')
        self.num_images = num_images
        self.interval = interval
        self.seed = seed
        self.last_path: Optional[str] = None

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self.interval and self.every_n_train_iters(runner, self.interval):
            self.draw(runner, runner.iter + 1)  # runner.iter counts the iterations before

    def after_train(self, runner) -> None:
        if self.last_path != self._path(runner, runner.iter):
            self.draw(runner, runner.iter)

    @staticmethod
    def _path(runner, iteration: int) -> str:
        return os.path.join(runner.work_dir, 'simmim_pictures', f'iter_{iteration}.png')

    def draw(self, runner, iteration: int) -> Optional[str]:
        """Renders and saves the pictures of the model's current weights after
        ``iteration`` training iterations; returns the path."""
        if not is_main_process():
            return None
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        loader = runner.train_dataloader
        rows = self.reconstruct(model, loader.collate_fn(self._fixed_samples(loader.dataset)))
        path = self._path(runner, iteration)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(np.concatenate(rows, axis=0)).save(path)
        self.last_path = path
        print_log(f'SimMIM pictures (original | masked input | reconstruction | reconstruction '
                  f'in the masked patches) of {len(rows)} images: {path}', logger='current')
        return path

    def _fixed_samples(self, dataset) -> list:
        """The first images through the training pipeline with crops and masks drawn from
        ``seed``; the global random state is restored afterwards."""
        state = np.random.get_state()
        np.random.seed(self.seed)
        try:
            return [dataset[i] for i in range(min(self.num_images, len(dataset)))]
        finally:
            np.random.set_state(state)

    @torch.no_grad()
    def reconstruct(self, model, batch: dict) -> List[np.ndarray]:
        """One (H, 4W, 3) uint8 row per image of a collated batch, from an mmpretrain
        ``SimMIM`` model."""
        was_training = model.training
        model.eval()
        try:
            data = model.data_preprocessor(batch, False)
            images = data['inputs']  # (B, 3, H, W), normalised
            mask = torch.stack([s.mask for s in data['data_samples']])
            recon = model.neck(model.backbone(images, mask)[0]).float()
        finally:
            model.train(was_training)
        loss = model.head.loss_module
        if isinstance(loss, NormalizedTargetL1Loss) and loss.window:
            mean, std = local_mean_std(images, loss.window)
            recon = recon * std + mean
        patch = model.head.patch_size
        pixel_mask = mask.repeat_interleave(patch, 1).repeat_interleave(patch, 2)[:, None].bool()
        to_pixels = _pixel_converter(model.data_preprocessor)
        original, recon = to_pixels(images), to_pixels(recon)
        pixel_mask = pixel_mask.permute(0, 2, 3, 1).numpy()
        masked = np.where(pixel_mask, np.uint8(MASKED_GREY), original)
        pasted = np.where(pixel_mask, recon, original)
        return [np.concatenate(row, axis=1) for row in zip(original, masked, recon, pasted)]


def _pixel_converter(preprocessor):
    """Normalised (B, C, H, W) -> (B, H, W, C) uint8 through the preprocessor's mean/std."""
    mean = preprocessor.mean.float().cpu() if preprocessor._enable_normalize else 0.0
    std = preprocessor.std.float().cpu() if preprocessor._enable_normalize else 1.0

    def to_pixels(x: torch.Tensor) -> np.ndarray:
        pixels = (x.float().cpu() * std + mean).clamp(0, 255).round().to(torch.uint8)
        return pixels.permute(0, 2, 3, 1).numpy()

    return to_pixels
