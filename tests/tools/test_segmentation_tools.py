"""tools/train.py and tools/test.py on the embedded ADE20K-layout shapes, as a user runs them."""
import glob
import os

import pytest
import torch

from tests.helpers import ROOT, run_tool, scalars, train_demo

DEMO = os.path.join(ROOT, 'configs', 'demo', 'upernet_swinv2_shapes_demo.py')
ITERS = 30


@pytest.fixture(scope='module')
def trained(tmp_path_factory, env):
    return train_demo(DEMO, tmp_path_factory.mktemp('work'), env, ITERS, warmup_end=3)


def test_training_lowers_the_loss(trained):
    losses = [r['loss'] for r in scalars(trained) if 'loss' in r]
    assert len(losses) == ITERS
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < 0.85 * first, (first, last)


def test_test_tool_reports_miou_and_draws(trained, env, tmp_path):
    ckpt = os.path.join(str(trained), f'iter_{ITERS}.pth')
    show = tmp_path / 'show'
    out = run_tool([os.path.join(ROOT, 'tools', 'test.py'), DEMO, ckpt, '--work-dir',
                    str(tmp_path), '--show-dir', str(show), '--cfg-options',
                    'test_dataloader.dataset.indices=3'], env, str(tmp_path))
    assert 'mIoU:' in out.stdout + out.stderr
    assert len(glob.glob(str(show / '**' / '*.png'), recursive=True)) == 3


def test_slide_inference_at_a_size_that_is_not_a_window_multiple(trained, env, tmp_path):
    ckpt = os.path.join(str(trained), f'iter_{ITERS}.pth')
    out = run_tool([os.path.join(ROOT, 'tools', 'test.py'), DEMO, ckpt, '--work-dir',
                    str(tmp_path), '--cfg-options', 'model.test_cfg.mode=slide',
                    'model.test_cfg.crop_size=(100,100)', 'model.test_cfg.stride=(70,70)',
                    'test_dataloader.dataset.pipeline.1.scale=(229,229)',
                    'test_dataloader.dataset.indices=2'], env, str(tmp_path))
    assert 'mIoU:' in out.stdout + out.stderr


def test_mmseg_inferencer_with_shipped_config(trained, env, tmp_path):
    from mmseg.apis import MMSegInferencer
    import swinv2_mm  # noqa: F401
    os.environ['SWINV2_MM_DATA'] = env['SWINV2_MM_DATA']
    try:
        inferencer = MMSegInferencer(model=DEMO, weights=os.path.join(str(trained), f'iter_{ITERS}.pth'),
                                     device='cpu')
        from swinv2_mm.datasets.shapes_ade import default_data_root
        image = sorted(glob.glob(os.path.join(default_data_root(), 'images', 'validation', '*.jpg')))[0]
    finally:
        os.environ.pop('SWINV2_MM_DATA')
    result = inferencer(image, return_datasamples=True)
    seg = result.pred_sem_seg.data
    assert seg.shape[-2:] == (192, 192) and int(seg.max()) < 5
    assert torch.is_tensor(seg)


def test_missing_ade20k_fails_early_with_a_clear_message(tmp_path):
    out = run_tool([os.path.join(ROOT, 'tools', 'train.py'),
                    os.path.join(ROOT, 'configs', 'upernet_swinv2_t_ade20k.py')],
                   dict(os.environ), str(tmp_path), check=False)
    assert out.returncode != 0 and 'Traceback' not in out.stderr
    assert "data_root = 'data/ade/ADEChallengeData2016' does not exist" in out.stderr
    assert not (tmp_path / 'work_dirs').exists()
