"""SimMIM through tools/train.py: the pre-training demo (pictures, checkpoint), fine-tuning the
segmentation demo from its checkpoint, and the ImageNet config on data in mmpretrain's layout."""
import glob
import os

import numpy as np
import pytest
from PIL import Image

from tests.helpers import ROOT, load_tool, run_tool, scalars, train_demo

PRETRAIN = os.path.join(ROOT, 'configs', 'demo', 'simmim_swinv2_shapes_demo.py')
FINETUNE = os.path.join(ROOT, 'configs', 'demo', 'upernet_swinv2_shapes_simmim_ft.py')
TRAIN = os.path.join(ROOT, 'tools', 'train.py')
ITERS = 6


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory, env):
    work = tmp_path_factory.mktemp('pretrain')
    run_tool([TRAIN, PRETRAIN, '--work-dir', str(work), '--cfg-options',
              f'train_cfg.max_iters={ITERS}', 'train_dataloader.batch_size=4',
              'train_dataloader.dataset.generate.num_train=8',
              'train_dataloader.dataset.generate.image_size=96',
              'param_scheduler.0.end=2', 'param_scheduler.1.begin=2',
              f'param_scheduler.1.end={ITERS}', 'param_scheduler.1.milestones=[5]',
              'default_hooks.logger.interval=1', f'default_hooks.checkpoint.interval={ITERS}',
              'custom_hooks.0.interval=3', 'custom_hooks.0.num_images=2'], env, str(work))
    return work


def test_pretraining_logs_every_step_and_saves_pictures(pretrained):
    losses = [r['loss'] for r in scalars(pretrained) if 'loss' in r]
    assert len(losses) == ITERS and all(np.isfinite(losses))
    pictures = sorted(glob.glob(os.path.join(str(pretrained), 'simmim_pictures', '*.png')))
    assert [os.path.basename(p) for p in pictures] == ['iter_3.png', 'iter_6.png']
    picture = np.asarray(Image.open(pictures[-1]))
    assert picture.shape == (2 * 128, 4 * 128, 3)  # 2 images x (original, masked, recon x2)
    original, masked = picture[:128, :128], picture[:128, 128:256]
    grey = (masked == 128).all(axis=-1)
    assert 0.3 < grey.mean() < 0.9  # about 60% of the 16 px mask patches
    assert (masked[~grey] == original[~grey]).all()
    assert os.path.isfile(os.path.join(str(pretrained), f'iter_{ITERS}.pth'))


def test_finetuning_reads_arch_and_weights_from_the_checkpoint(pretrained, env, tmp_path):
    checkpoint = os.path.join(str(pretrained), f'iter_{ITERS}.pth')
    work = train_demo(FINETUNE, tmp_path / 'ft', env, 2, 1,
                      f'model.backbone.init_cfg.checkpoint={checkpoint}',
                      *[f'{loader}.dataset.generate.{key}={value}'
                        for loader in ('train_dataloader', 'val_dataloader')
                        for key, value in (('num_train', 8), ('num_val', 4))])
    log = open(glob.glob(os.path.join(str(work), '*', '*.log'))[0]).read()
    assert "arch='auto': arch=dict(embed_dims=32, depths=[2, 2, 2, 2], " \
           "num_heads=[1, 2, 4, 8])" in log
    assert 'dropped: neck.* (2 tensors), mask_token' in log
    assert "kept initialised (not in checkpoint): ['norm0', 'norm1', 'norm2']" in log
    assert 'SwinV2LayerDecayConstructor: 10 layers, layer_decay_rate=0.95' in log
    assert any('mIoU' in r for r in scalars(work))


def test_imagenet_config_trains_on_data_in_mmpretrain_layout(tmp_path, env):
    """data/imagenet/{meta/train.txt, train/<wnid>/*.JPEG}, as mmpretrain's ImageNet reads it
    (here 2 classes of 2 images; the labels go unused)."""
    rng = np.random.default_rng(0)
    lines = []
    for label, cls in enumerate(('n01440764', 'n01443537')):
        folder = tmp_path / 'imagenet' / 'train' / cls
        folder.mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (80, 96, 3), dtype=np.uint8)).save(
                folder / f'{cls}_{i}.JPEG')
            lines.append(f'{cls}/{cls}_{i}.JPEG {label}\n')
    (tmp_path / 'imagenet' / 'meta').mkdir()
    (tmp_path / 'imagenet' / 'meta' / 'train.txt').write_text(''.join(lines))
    work = tmp_path / 'work'
    out = run_tool([TRAIN, os.path.join(ROOT, 'configs', 'simmim_swinv2_b_in1k_192.py'),
                    '--work-dir', str(work), '--cfg-options',
                    f'train_dataloader.dataset.data_root={tmp_path / "imagenet"}',
                    'model.backbone.arch=tiny', 'model.neck.in_channels=768',
                    'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
                    'train_dataloader.persistent_workers=False', 'train_cfg.max_epochs=1',
                    'default_hooks.logger.interval=1', 'custom_hooks.0.num_images=1'],
                   env, str(tmp_path))
    log = out.stdout + out.stderr
    assert 'LR is set based on batch size of 2048 and the current batch size is 2' in log
    assert len([r for r in scalars(work) if 'loss' in r]) == 2
    assert os.path.isfile(work / 'epoch_1.pth')
    assert os.path.isfile(work / 'simmim_pictures' / 'iter_2.png')


def test_transfer_study_shrinks_the_schedule_and_summarises(tmp_path):
    study = load_tool('simmim_transfer')
    options = study.run_options(240, 2, '/ckpt.pth', {'model.backbone.window_size': 12})
    assert options['param_scheduler.0.end'] == options['param_scheduler.1.begin'] == 20
    assert options['param_scheduler.1.end'] == options['train_cfg.max_iters'] == 240
    assert options['randomness.seed'] == 2 and options['model.backbone.window_size'] == 12
    runs = [dict(arm='scratch, window 8', budget=120, seed=s, mIoU=v)
            for s, v in enumerate((40.0, 50.0, 60.0))]
    rows = study.summarise(runs, [120])
    assert rows == [dict(arm='scratch, window 8', budget=120, values=[40.0, 50.0, 60.0],
                         mean=50.0, std=10.0)]
    assert '| scratch, window 8 | 50.0 ± 10.0 (n=3) |' in study.format_table(rows, [120])
    log = tmp_path / '20261130_000000' / 'vis_data'
    log.mkdir(parents=True)
    (log / 'scalars.json').write_text('{"loss": 1.0, "step": 1}\n'
                                      '{"aAcc": 90.0, "mIoU": 55.5, "step": 120}\n')
    assert study.last_metrics(str(tmp_path))['mIoU'] == 55.5
