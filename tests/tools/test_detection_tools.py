"""tools/train.py and tools/test.py on the embedded shapes data, as a user runs them."""
import glob
import os

import pytest

from tests.helpers import ROOT, run_tool, scalars, train_demo

DEMO = os.path.join(ROOT, 'configs', 'demo', 'cascade_swinv2_shapes_demo.py')
ITERS = 30
# After 30 iterations few boxes clear mmdet's 0.05 score threshold and CocoMetric reports nothing
# for an empty result; keeping every scored box makes evaluation run whatever the CPU's numerics.
KEEP_ALL = 'model.test_cfg.rcnn.score_thr=0.0'


@pytest.fixture(scope='module')
def trained(tmp_path_factory, env):
    return train_demo(DEMO, tmp_path_factory.mktemp('work'), env, ITERS, 5, KEEP_ALL)


def test_training_lowers_the_loss(trained):
    losses = [r['loss'] for r in scalars(trained) if 'loss' in r]
    assert len(losses) == ITERS
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.7 * first, (first, last)


def test_train_validates_with_coco_metric(trained):
    metrics = [r for r in scalars(trained) if 'coco/bbox_mAP' in r]
    assert metrics and isinstance(metrics[-1]['coco/segm_mAP'], float)


def test_test_tool_evaluates_and_draws(trained, env, tmp_path):
    ckpt = os.path.join(str(trained), f'iter_{ITERS}.pth')
    show = tmp_path / 'show'
    out = run_tool([os.path.join(ROOT, 'tools', 'test.py'), DEMO, ckpt, '--work-dir',
                    str(tmp_path), '--show-dir', str(show), '--cfg-options',
                    'test_dataloader.dataset.indices=3', KEEP_ALL], env, str(tmp_path))
    assert 'coco/bbox_mAP:' in out.stdout + out.stderr
    assert 'coco/segm_mAP:' in out.stdout + out.stderr
    assert len(glob.glob(str(show / '*.png'))) == 3


def test_test_tool_with_a_larger_window(trained, env, tmp_path):
    """The paper's test-time trick is one --cfg-options away."""
    ckpt = os.path.join(str(trained), f'iter_{ITERS}.pth')
    out = run_tool([os.path.join(ROOT, 'tools', 'test.py'), DEMO, ckpt, '--work-dir',
                    str(tmp_path), '--cfg-options', 'model.backbone.window_size=12',
                    'test_dataloader.dataset.indices=2', KEEP_ALL], env, str(tmp_path))
    assert 'coco/bbox_mAP:' in out.stdout + out.stderr


def test_test_tool_evaluates_in_bfloat16_with_amp(trained, env, tmp_path):
    ckpt = os.path.join(str(trained), f'iter_{ITERS}.pth')
    out = run_tool([os.path.join(ROOT, 'tools', 'test.py'), DEMO, ckpt, '--amp', '--work-dir',
                    str(tmp_path), '--cfg-options', 'test_dataloader.dataset.indices=2', KEEP_ALL],
                   env, str(tmp_path))
    assert '--amp: bfloat16 autocast on cpu' in out.stdout + out.stderr
    assert 'coco/segm_mAP:' in out.stdout + out.stderr


def test_det_inferencer_with_shipped_config(trained, env):
    from mmdet.apis import DetInferencer
    import swinv2_mm  # noqa: F401
    from swinv2_mm.datasets.shapes_coco import generate_shapes_coco
    os.environ['SWINV2_MM_DATA'] = env['SWINV2_MM_DATA']
    try:
        inferencer = DetInferencer(model=DEMO, weights=os.path.join(str(trained), f'iter_{ITERS}.pth'),
                                   device='cpu', show_progress=False)
        root = generate_shapes_coco(os.path.join(env['SWINV2_MM_DATA'], 'shapes_coco_v1'))
    finally:
        os.environ.pop('SWINV2_MM_DATA')
    image = sorted(glob.glob(os.path.join(root, 'val', '*.png')))[0]
    result = inferencer(image, return_datasamples=True)['predictions'][0]
    assert result.pred_instances.bboxes.shape[-1] == 4
    assert len(result.pred_instances.masks) == len(result.pred_instances.bboxes)


def test_missing_coco_fails_early_with_a_clear_message(tmp_path):
    out = run_tool([os.path.join(ROOT, 'tools', 'train.py'),
                    os.path.join(ROOT, 'configs', 'cascade_swinv2_t_coco.py')],
                   dict(os.environ), str(tmp_path), check=False)
    assert out.returncode != 0
    assert "train_dataloader.dataset.data_root = 'data/coco/' does not exist" in out.stderr
    assert '--cfg-options' in out.stderr and 'Traceback' not in out.stderr
    assert not (tmp_path / 'work_dirs').exists()  # nothing was built or written
