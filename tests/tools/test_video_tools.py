"""tools/train.py and tools/test.py on the embedded motion clips, as a user runs them."""
import os

import pytest

from tests.helpers import ROOT, run_tool, scalars, train_demo

DEMO = os.path.join(ROOT, 'configs', 'demo', 'video_swinv2_shapes_demo.py')
ITERS = 12


@pytest.fixture(scope='module')
def trained(tmp_path_factory, env):
    return train_demo(DEMO, tmp_path_factory.mktemp('work'), env, ITERS, 3)


def test_training_logs_every_iteration_and_validates_top1(trained):
    records = scalars(trained)
    losses = [r['loss'] for r in records if 'loss' in r]
    assert len(losses) == ITERS and all(loss == loss for loss in losses)  # finite, no NaN
    assert any('acc/top1' in r for r in records)


def test_test_tool_reports_top1_with_two_views(trained, env, tmp_path):
    ckpt = os.path.join(str(trained), f'iter_{ITERS}.pth')
    out = run_tool([os.path.join(ROOT, 'tools', 'test.py'), DEMO, ckpt, '--work-dir',
                    str(tmp_path), '--cfg-options', 'test_dataloader.dataset.indices=4'],
                   env, str(tmp_path))
    assert 'acc/top1:' in out.stdout + out.stderr


def test_test_tool_with_another_window(trained, env, tmp_path):
    """The log-CPB evaluates the bias for a window the model was not trained at."""
    ckpt = os.path.join(str(trained), f'iter_{ITERS}.pth')
    out = run_tool([os.path.join(ROOT, 'tools', 'test.py'), DEMO, ckpt, '--work-dir',
                    str(tmp_path), '--cfg-options', 'model.backbone.window_size=(2,4,4)',
                    'test_dataloader.dataset.indices=2'], env, str(tmp_path))
    assert 'acc/top1:' in out.stdout + out.stderr


def test_missing_kinetics_fails_early_with_a_clear_message(tmp_path):
    out = run_tool([os.path.join(ROOT, 'tools', 'train.py'),
                    os.path.join(ROOT, 'configs', 'video_swinv2_t_k400.py')],
                   dict(os.environ), str(tmp_path), check=False)
    assert out.returncode != 0
    assert "train_dataloader.dataset.data_root = 'data/kinetics400/' does not exist" in out.stderr
    assert 'Traceback' not in out.stderr and not (tmp_path / 'work_dirs').exists()
