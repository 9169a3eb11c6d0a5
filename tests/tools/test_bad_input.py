"""Bad input stops the tools early with a message that names the file or parameter and the
fix; corrupt training images can be skipped and counted instead."""
import json
import os
from fractions import Fraction

import pytest
import torch
from mmengine.config import Config

from swinv2_mm.datasets.shapes_ade import generate_shapes_ade
from swinv2_mm.datasets.shapes_coco import generate_shapes_coco
from tests.helpers import ROOT, run_tool

TRAIN, TEST = os.path.join(ROOT, 'tools', 'train.py'), os.path.join(ROOT, 'tools', 'test.py')
DET_DEMO = os.path.join(ROOT, 'configs', 'demo', 'cascade_swinv2_shapes_demo.py')
SEG_DEMO = os.path.join(ROOT, 'configs', 'demo', 'upernet_swinv2_shapes_demo.py')


def fails_early(args, tmp_path, env=None, *messages, runner_built=False):
    """Runs a tool expecting a clean refusal: no traceback and, unless the error can only
    come from building the model, no runner (it would have made a log folder)."""
    work = tmp_path / 'work'
    out = run_tool(args + ['--work-dir', str(work)], env or dict(os.environ), str(tmp_path),
                   check=False)
    assert out.returncode != 0, out.stdout[-2000:]
    assert 'Traceback' not in out.stderr, out.stderr[-3000:]
    for message in messages:
        assert message in out.stderr, out.stderr[-3000:]
    assert runner_built or not work.exists() or not [p for p in work.iterdir() if p.is_dir()]
    return out


@pytest.mark.parametrize('content', [b'', b'epoch 3 loss 0.2\n', 'half'])
def test_truncated_or_foreign_checkpoint(tmp_path, content):
    path = tmp_path / 'model.pth'
    torch.save({'state_dict': {'w': torch.randn(4096)}}, path)
    path.write_bytes(path.read_bytes()[:3000] if content == 'half' else content)
    fails_early([TEST, DET_DEMO, str(path)], tmp_path, None,
                f"checkpoint: '{path}' is truncated or not a checkpoint")


def test_untrusted_checkpoint_names_the_type_and_the_opt_in(tmp_path):
    path = tmp_path / 'foreign.pth'
    torch.save({'state_dict': {}, 'meta': Fraction(1, 3)}, path)  # any type outside the list
    fails_early([TEST, DET_DEMO, str(path)], tmp_path, None,
                'holds fractions.Fraction', 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1')


def test_resume_from_a_damaged_last_checkpoint(tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'iter_8.pth').write_bytes(b'PK\x03\x04 cut short')
    (work / 'last_checkpoint').write_text(str(work / 'iter_8.pth'))
    fails_early([TRAIN, DET_DEMO, '--resume'], tmp_path, None,
                f"'{work / 'iter_8.pth'}' is truncated or not a checkpoint")


@pytest.mark.parametrize('tool', ['train', 'test'])
def test_missing_pretrained_checkpoint_of_an_auto_arch(tmp_path, tool):
    """arch='auto' reads the init_cfg checkpoint while the model is built, in both tools."""
    config = os.path.join(ROOT, 'configs', 'demo', 'upernet_swinv2_shapes_simmim_ft.py')
    trained = tmp_path / 'trained.pth'
    torch.save({'state_dict': {}}, trained)
    args = [TRAIN, config] if tool == 'train' else [TEST, config, str(trained)]
    fails_early(args + ['--cfg-options', f'model.backbone.init_cfg.checkpoint={tmp_path}/no.pth'],
                tmp_path, None, f"error: model.backbone.init_cfg.checkpoint: '{tmp_path}/no.pth' "
                'does not exist', '--cfg-options model.backbone.init_cfg.checkpoint=PATH')


def test_window_list_of_the_wrong_length(tmp_path, env):
    fails_early([TRAIN, DET_DEMO, '--cfg-options', 'model.backbone.window_size=[8,8,8]'],
                tmp_path, env, 'window_size: expected an int, 2 ints (one window (h, w) for '
                'every stage) or a list of 4 values', runner_built=True)


@pytest.mark.parametrize('damage, message', [
    (lambda coco: {'images': [], 'annotations': []}, "is not COCO format: 'categories' is missing"),
    (lambda coco: dict(coco, annotations=[]),  # mmdet: 'need at least one array to concatenate'
     'is empty: 4 images, 0 annotations'),
], ids=['no categories', 'no annotations'])
def test_invalid_coco_annotations(tmp_path, damage, message):
    root = generate_shapes_coco(str(tmp_path / 'data' / 'coco'), 4, 2, 64)
    for split in ('train', 'val'):
        os.rename(os.path.join(root, f'{split}'), os.path.join(root, f'{split}2017'))
        os.rename(os.path.join(root, 'annotations', f'instances_{split}.json'),
                  os.path.join(root, 'annotations', f'instances_{split}2017.json'))
    bad = os.path.join(root, 'annotations', 'instances_train2017.json')
    with open(bad) as f:
        coco = json.load(f)
    with open(bad, 'w') as f:
        json.dump(damage(coco), f)
    fails_early([TRAIN, os.path.join(ROOT, 'configs', 'cascade_swinv2_t_coco.py')], tmp_path,
                None, f"annotation file 'data/coco/annotations/instances_train2017.json' {message}")


def test_ade_image_without_label_map(tmp_path):
    root = generate_shapes_ade(str(tmp_path / 'data' / 'ade' / 'ADEChallengeData2016'), 4, 2, 64)
    labels = os.path.join(root, 'annotations', 'training')
    os.remove(os.path.join(labels, sorted(os.listdir(labels))[0]))
    fails_early([TRAIN, os.path.join(ROOT, 'configs', 'upernet_swinv2_t_ade20k.py')], tmp_path,
                None, '1 of 4 images have no label map')


def test_video_with_no_frames(tmp_path):
    root = tmp_path / 'data' / 'kinetics400'
    for split in ('train', 'val'):
        (root / f'videos_{split}').mkdir(parents=True)
        (root / f'videos_{split}' / 'a.mp4').write_bytes(b'' if split == 'train' else b'\0' * 64)
        (root / f'kinetics400_{split}_list_videos.txt').write_text('a.mp4 3\n')
    fails_early([TRAIN, os.path.join(ROOT, 'configs', 'video_swinv2_t_k400.py')], tmp_path, None,
                'video has no frames (empty file')


def files_under(folder):
    """Every file and folder under ``folder``: path -> (inode, mtime, bytes or None)."""
    found = {}
    for parent, dirs, names in os.walk(folder):
        for name in dirs + names:
            path = os.path.join(parent, name)
            info = os.lstat(path)
            with open(path, 'rb') if name in names else open(os.devnull, 'rb') as f:
                found[path] = (info.st_ino, info.st_mtime_ns, f.read())
    return found


def test_a_user_folder_given_as_a_demo_data_root_is_refused_untouched(tmp_path, env):
    """``data_root=~/datasets`` on a demo config: the tool stops before any model is built,
    naming the folder and the fix; nothing in it is moved, deleted or rewritten."""
    user = tmp_path / 'datasets'
    (user / 'ade' / 'images').mkdir(parents=True)
    (user / 'notes.txt').write_text('years of work\n')
    (user / 'ade' / 'images' / 'a.jpg').write_bytes(bytes(range(256)))
    before = files_under(user)
    fails_early([TRAIN, SEG_DEMO, '--cfg-options', f'train_dataloader.dataset.data_root={user}'],
                tmp_path, env, f"error: train_dataloader.dataset.data_root: '{user}' cannot hold "
                f"the generated dataset 'shapes_ade': it holds 2 entries ('ade', 'notes.txt')",
                'nothing there was moved or deleted', 'leave data_root out')
    assert files_under(user) == before
    assert set(os.listdir(tmp_path)) <= {'datasets', 'work'}, 'something was written beside it'


@pytest.fixture(scope='module')
def corrupt_ade(tmp_path_factory):
    """The segmentation demo's data with two of its first eight training images damaged."""
    shapes = Config.fromfile(SEG_DEMO).train_dataloader.dataset.generate
    root = generate_shapes_ade(str(tmp_path_factory.mktemp('ade') / 'data'), **shapes)
    images = os.path.join(root, 'images', 'training')
    damaged = [os.path.join(images, name) for name in sorted(os.listdir(images))[2:8:5]]
    for path in damaged:
        with open(path, 'r+b') as f:
            f.truncate(os.path.getsize(path) // 3)
    return root, damaged


def seg_demo_args(root, work, *extra):
    return [TRAIN, SEG_DEMO, '--work-dir', str(work), *extra, '--cfg-options',
            f'train_dataloader.dataset.data_root={root}', f'val_dataloader.dataset.data_root={root}',
            'train_dataloader.dataset.indices=8', 'val_dataloader.dataset.indices=2',
            'train_dataloader.batch_size=2', 'train_cfg.max_iters=4', 'train_cfg.val_interval=4',
            'default_hooks.checkpoint.interval=4', 'param_scheduler.0.end=2']


def test_corrupt_image_fails_fast_with_its_path(corrupt_ade, tmp_path):
    root, damaged = corrupt_ade
    out = run_tool(seg_demo_args(root, tmp_path / 'work'), dict(os.environ), str(tmp_path),
                   check=False)
    assert out.returncode != 0
    assert 'CorruptImageError' in out.stderr and '--skip-corrupt-images' in out.stderr
    assert any(f"image '{path}' cannot be decoded" in out.stderr for path in damaged)


def test_corrupt_images_are_skipped_and_counted_when_asked(corrupt_ade, tmp_path):
    root, damaged = corrupt_ade
    work = tmp_path / 'work'
    out = run_tool(seg_demo_args(root, work, '--skip-corrupt-images'), dict(os.environ),
                   str(tmp_path))
    assert (work / 'iter_4.pth').exists()  # an epoch of the 8 images: both damaged ones drawn
    with open(work / 'skipped_images.txt') as f:
        skipped = [line.split('\t')[0] for line in f]
    assert set(skipped) == set(damaged)
    assert f'corrupt training images skipped so far: {len(skipped)}' in out.stdout
