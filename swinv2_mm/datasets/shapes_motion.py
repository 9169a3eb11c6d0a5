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

from .generation import GeneratedData, GeneratedDataMixin
from .motion import DIRECTIONS, render_clip
from .shapes import SPLIT_IDS

FRAME_TEMPLATE = 'img_{:05}.jpg'


def _write_split(root: str, split: str, num_clips: int, num_frames: int, image_size: int,
                 seed: int) -> None:
    """Renders ``root/rawframes/<split>/<clip>/img_*.jpg`` and the clip list
    ``root/<split>_list_rawframes.txt``."""
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


# The clips in MMAction2's raw-frame layout: generate_shapes_motion writes them once for the
# parameters below (by position or name, after the folder) and returns their folder.
SHAPES_MOTION = GeneratedData('shapes_motion', version=5, write_split=_write_split,
                              defaults=dict(num_train=1000, num_val=100, num_frames=16,
                                            image_size=64, seed=0))
default_data_root = SHAPES_MOTION.default_root
generate_shapes_motion = SHAPES_MOTION.generate


@DATASETS.register_module()
class ShapesMotionDataset(GeneratedDataMixin, RawframeDataset):
    """RawframeDataset over the generated motion clips, which it generates first when needed.

    Args:
        data_root: Dataset folder; ``default_data_root()`` when None.
        split: 'train' or 'val'.
        generate: Keyword arguments of ``generate_shapes_motion`` (``num_train``,
            ``num_val``, ``num_frames``, ``image_size``, ``seed``).
        **kwargs: Any other RawframeDataset argument (pipeline, test_mode, ...).
    """

    METAINFO = dict(classes=DIRECTIONS)
    GENERATED = SHAPES_MOTION

    def __init__(self, *, data_root: Optional[str] = None, split: str = 'train',
                 generate: Optional[dict] = None, **kwargs) -> None:
        if split not in SPLIT_IDS:
            raise ValueError(f'split: expected one of {sorted(SPLIT_IDS)}, got {split!r}')
        root = self.generated_root(data_root, generate)
        super().__init__(ann_file=os.path.join(root, f'{split}_list_rawframes.txt'),
                         data_prefix=dict(img=os.path.join(root, 'rawframes')),
                         filename_tmpl=FRAME_TEMPLATE, start_index=1, **kwargs)
