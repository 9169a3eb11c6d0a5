"""tools/train.py --amp and tools/test.py --amp on the CPU, for each task; float16 with a
dynamic loss scale resumes with its scale."""
import glob
import math
import os

import pytest
import torch

from tests.helpers import ROOT, run_tool, scalars, train_demo

DEMOS = os.path.join(ROOT, 'configs', 'demo')
METRIC = {'cascade_swinv2_shapes_demo.py': 'coco/bbox_mAP',
          'upernet_swinv2_shapes_demo.py': 'mIoU',
          'video_swinv2_shapes_demo.py': 'acc/top1'}
# after 2 iterations no box clears mmdet's 0.05 score threshold: keep them all for the metric
KEEP_ALL = ('model.test_cfg.rcnn.score_thr=0.0',)


def dumped_config(work) -> str:
    """The config mmengine dumped into the work dir: what the run really used."""
    with open(glob.glob(os.path.join(str(work), '*.py'))[0]) as f:
        return f.read()


@pytest.mark.parametrize('config', sorted(METRIC))
def test_train_amp_trains_and_validates_in_bfloat16(config, env, tmp_path):
    work = train_demo(os.path.join(DEMOS, config), tmp_path / 'work', env, 2, 1,
                      *(KEEP_ALL if config.startswith('cascade') else ()), flags=('--amp',))
    records = scalars(work)
    losses = [r['loss'] for r in records if 'loss' in r]
    assert len(losses) == 2 and all(math.isfinite(loss) for loss in losses)
    assert any(METRIC[config] in r for r in records)  # validation ran, under autocast too
    used = dumped_config(work)
    assert "type='AutocastOptimWrapper'" in used and "dtype='bfloat16'" in used
    assert used.count('fp16=True') == 2  # the val and test loops
    checkpoint = torch.load(work / 'iter_2.pth', map_location='cpu', weights_only=False)
    assert checkpoint['optimizer']['loss_scaler'] == {}  # bfloat16: no loss scaling


def test_amp_refuses_toolbox_heads_without_float32_islands(env, tmp_path):
    out = run_tool([os.path.join(ROOT, 'tools', 'train.py'),
                    os.path.join(DEMOS, 'cascade_swinv2_shapes_demo.py'), '--amp',
                    '--work-dir', str(tmp_path / 'work'), '--cfg-options',
                    'model.rpn_head.type=RPNHead', 'model.roi_head.mask_head.type=FCNMaskHead',
                    'model.roi_head.bbox_head.1.type=ConvFCBBoxHead'],
                   env, str(tmp_path), check=False)
    assert out.returncode != 0 and 'Traceback' not in out.stderr
    assert "model.rpn_head.type='AmpRPNHead'" in out.stderr
    assert "model.roi_head.mask_head.type='AmpFCNMaskHead'" in out.stderr
    assert "model.roi_head.bbox_head[1].type='AmpConvFCBBoxHead'" in out.stderr
    assert not (tmp_path / 'work').exists()  # refused before anything was built


FP16 = ('optim_wrapper.type=AutocastOptimWrapper', 'optim_wrapper.dtype=float16',
        'optim_wrapper.loss_scale.init_scale=1024.0',
        'optim_wrapper.loss_scale.growth_interval=1')  # the scale changes at every step


def test_float16_loss_scale_resumes_with_its_state(env, tmp_path):
    config = os.path.join(DEMOS, 'video_swinv2_shapes_demo.py')
    straight = train_demo(config, tmp_path / 'straight', env, 4, 1, *FP16,
                          'default_hooks.checkpoint.interval=2', 'train_cfg.val_begin=5')
    resumed = train_demo(config, tmp_path / 'resumed', env, 4, 1, *FP16, 'train_cfg.val_begin=5',
                         flags=('--resume', str(straight / 'iter_2.pth')))

    def scaler(work):
        state = torch.load(work / 'iter_4.pth', map_location='cpu', weights_only=False)
        return state['optimizer']['loss_scaler']
    assert scaler(straight)['scale'] != 1024.0  # the scale moved, and the resumed run has it
    assert scaler(resumed) == scaler(straight)
    losses = {r['step']: r['loss'] for r in scalars(straight) if 'loss' in r}
    for r in scalars(resumed):
        if 'loss' in r:
            assert r['step'] in (3, 4) and r['loss'] == pytest.approx(losses[r['step']], rel=1e-6)
