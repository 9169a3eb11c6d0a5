"""The generated panning clips: labels that need motion, layout, determinism, mmaction2 loading."""
import os

import numpy as np
import pytest

from swinv2_mm.datasets.motion import DIRECTIONS, STEPS, render_clip


def displacement(frames, largest=30):
    """Hand-made motion estimate: the axis-aligned shift (dx, dy) that best maps the first frame
    onto the last one (smallest mean absolute difference over the overlap)."""
    first, last = frames[0].astype(float), frames[-1].astype(float)
    size = first.shape[0]

    def error(dx, dy):  # content at (x, y) in the first frame is at (x + dx, y + dy) in the last
        a = first[max(0, -dy):size - max(0, dy), max(0, -dx):size - max(0, dx)]
        b = last[max(0, dy):size - max(0, -dy), max(0, dx):size - max(0, -dx)]
        return np.abs(a - b).mean()
    shifts = [(d, 0) for d in range(-largest, largest + 1)] + \
             [(0, d) for d in range(-largest, largest + 1)]
    return np.array(min(shifts, key=lambda s: error(*s)))


def test_the_label_is_the_direction_of_motion():
    labels = []
    for i in range(40):
        frames, label = render_clip(np.random.default_rng([7, i]), 16, 64)
        assert frames.shape == (16, 64, 64, 3) and frames.dtype == np.uint8
        v = displacement(frames)
        step = np.array(STEPS[DIRECTIONS[label]])
        assert v @ step > 0.8 * np.linalg.norm(v) and np.linalg.norm(v) >= 14, (i, label, v)
        labels.append(label)
    assert set(labels) == set(range(len(DIRECTIONS)))


def test_only_the_order_of_frames_tells_the_label():
    """Reversed in time, a clip shows the opposite direction with the very same frames, so no
    feature of the frames as a set (any single frame included) can tell the two labels apart."""
    opposite = {'right': 'left', 'left': 'right', 'down': 'up', 'up': 'down'}
    for i in range(8):
        frames, label = render_clip(np.random.default_rng([9, i]), 16, 64)
        back = np.array(STEPS[opposite[DIRECTIONS[label]]])
        v = displacement(frames[::-1])
        assert v @ back > 0.8 * np.linalg.norm(v)


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    from swinv2_mm.datasets.shapes_motion import generate_shapes_motion
    return generate_shapes_motion(str(tmp_path_factory.mktemp('motion') / 'data'), num_train=6,
                                  num_val=3, num_frames=10, image_size=48)


def test_layout_is_mmaction_rawframes(root):
    with open(os.path.join(root, 'train_list_rawframes.txt')) as f:
        lines = [line.split() for line in f]
    assert len(lines) == 6
    for clip, count, label in lines:
        assert clip.startswith('train/') and count == '10' and 0 <= int(label) < 4
        names = sorted(os.listdir(os.path.join(root, 'rawframes', clip)))
        assert names == [f'img_{i:05}.jpg' for i in range(1, 11)]


def test_generation_is_deterministic_and_idempotent(root, tmp_path):
    from swinv2_mm.datasets.shapes_motion import generate_shapes_motion
    stamp = os.path.getmtime(os.path.join(root, 'train_list_rawframes.txt'))
    assert generate_shapes_motion(root, num_train=6, num_val=3, num_frames=10,
                                  image_size=48) == root
    assert os.path.getmtime(os.path.join(root, 'train_list_rawframes.txt')) == stamp
    other = generate_shapes_motion(str(tmp_path / 'again'), num_train=6, num_val=3,
                                   num_frames=10, image_size=48)
    for name in ('train_list_rawframes.txt', 'rawframes/val/00002/img_00007.jpg'):
        with open(os.path.join(root, name), 'rb') as a, open(os.path.join(other, name), 'rb') as b:
            assert a.read() == b.read()


def test_mmaction_dataset_reads_clips(root):
    from mmaction.registry import DATASETS
    from mmaction.utils import register_all_modules
    from mmengine.registry import DefaultScope
    import swinv2_mm.datasets.shapes_motion  # noqa: F401
    register_all_modules(init_default_scope=False)
    pipeline = [dict(type='SampleFrames', clip_len=4, frame_interval=2, num_clips=1),
                dict(type='RawFrameDecode'), dict(type='FormatShape', input_format='NCTHW'),
                dict(type='PackActionInputs')]
    with DefaultScope.overwrite_default_scope('mmaction'):
        dataset = DATASETS.build(dict(type='ShapesMotionDataset', data_root=root, split='val',
                                      generate=dict(num_train=6, num_val=3, num_frames=10,
                                                    image_size=48),
                                      pipeline=pipeline, test_mode=True))
    assert len(dataset) == 3 and dataset.metainfo['classes'] == DIRECTIONS
    item = dataset[0]
    assert tuple(item['inputs'].shape) == (1, 3, 4, 48, 48)
    with pytest.raises(ValueError, match='split'):
        DATASETS.build(dict(type='ShapesMotionDataset', data_root=root, split='test',
                            pipeline=pipeline))
