"""The generated motion clips of :mod:`swinv2_mm.datasets.motion` as an MMAction2 dataset.

Layout (MMAction2's raw frames, as Kinetics users extract them)::

    <root>/rawframes/{train,val}/<clip>/img_00001.jpg ...
    <root>/{train,val}_list_rawframes.txt    lines "<split>/<clip> <num_frames> <label>"

``ShapesMotionDataset`` generates the data on first use, so a config needs no download.
"""
import os
from typing import Optional

import numpy as np
from mmaction.datasets import RawframeDataset
from mmaction.registry import DATASETS
from PIL import Image

from .generation import data_base_dir, publish_dataset
from .motion import DIRECTIONS, render_clip
from .shapes import SPLIT_IDS

FORMAT_VERSION = 5
FRAME_TEMPLATE = 'img_{:05}.jpg'


def default_data_root() -> str:
    """Where the dataset lives unless told otherwise, under ``data_base_dir()``."""
    return os.path.join(data_base_dir(), 'shapes_motion_v1')


def _write_split(root: str, split: str, num_clips: int, num_frames: int, image_size: int,
                 seed: int) -> None:
    lines = []
    for index in range(num_clips):
        frames, label = render_clip(np.random.default_rng([seed, SPLIT_IDS[split], index]),
                                    num_frames, image_size)
        clip = f'{split}/{index:05d}'
        folder = os.path.join(root, 'rawframes', clip)
        os.makedirs(folder)
        for t, frame in enumerate(frames):
            Image.fromarray(frame).save(os.path.join(folder, FRAME_TEMPLATE.format(t + 1)),
                                        quality=95)
        lines.append(f'{clip} {num_frames} {label}\n')
    with open(os.path.join(root, f'{split}_list_rawframes.txt'), 'w') as f:
        f.writelines(lines)


def generate_shapes_motion(root: str, num_train: int = 1000, num_val: int = 100,
                           num_frames: int = 16, image_size: int = 64, seed: int = 0) -> str:
    """Writes the clips under ``root`` in MMAction2's raw-frame layout; returns ``root``.

    Idempotent, atomic and safe for concurrent callers (see ``publish_dataset``).
    """
    def build(tmp: str) -> None:
        _write_split(tmp, 'train', num_train, num_frames, image_size, seed)
        _write_split(tmp, 'val', num_val, num_frames, image_size, seed)

    params = dict(num_train=num_train, num_val=num_val, num_frames=num_frames,
                  image_size=image_size, seed=seed, format_version=FORMAT_VERSION)
    return publish_dataset(root, params, build)


@DATASETS.register_module()
class ShapesMotionDataset(RawframeDataset):
    """RawframeDataset over the generated motion clips, which it generates first when needed.

    Args:
        data_root: Dataset folder; ``default_data_root()`` when None.
        split: 'train' or 'val'.
        generate: Keyword arguments of ``generate_shapes_motion`` (``num_train``,
            ``num_val``, ``num_frames``, ``image_size``, ``seed``).
        **kwargs: Any other RawframeDataset argument (pipeline, test_mode, ...).
    """

    METAINFO = dict(classes=DIRECTIONS)
    GENERATES_DATA = True  # tools skip their missing-data check for it

    def __init__(self, *, data_root: Optional[str] = None, split: str = 'train',
                 generate: Optional[dict] = None, **kwargs) -> None:
        if split not in SPLIT_IDS:
            raise ValueError(f'split: expected one of {sorted(SPLIT_IDS)}, got {split!r}')
        root = generate_shapes_motion(data_root or default_data_root(), **(generate or {}))
        super().__init__(ann_file=os.path.join(root, f'{split}_list_rawframes.txt'),
                         data_prefix=dict(img=os.path.join(root, 'rawframes')),
                         filename_tmpl=FRAME_TEMPLATE, start_index=1, **kwargs)
