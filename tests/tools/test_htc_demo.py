"""tools/train.py trains the HTC demo (semantic branch included) and evaluates it."""
import os

from tests.helpers import ROOT, scalars, train_demo

DEMO = os.path.join(ROOT, 'configs', 'demo', 'htc_swinv2_shapes_demo.py')
ITERS = 6
# 8 + 4 generated images (all that the run reads) instead of the demo's 400 + 100, for the
# datasets and the metric alike; every scored box kept, so that the metric has results
SMALL_DATA = [f'{key}.generate.{count}' for key in ('train_dataloader.dataset',
                                                    'val_dataloader.dataset', 'val_evaluator')
              for count in ('num_train=8', 'num_val=4')]
KEEP_ALL = 'model.test_cfg.rcnn.score_thr=0.0'


def test_train_tool_trains_htc_with_semantic_maps_and_evaluates(tmp_path, env):
    work = train_demo(DEMO, tmp_path / 'work', env, ITERS, 2, KEEP_ALL, *SMALL_DATA)
    records = scalars(work)
    losses = [r for r in records if 'loss' in r]
    assert len(losses) == ITERS
    assert all(r['loss_semantic_seg'] > 0 and 's2.loss_mask' in r for r in losses)
    metrics = [r for r in records if 'coco/bbox_mAP' in r]
    assert metrics and isinstance(metrics[-1]['coco/segm_mAP'], float)
    assert os.path.isfile(os.path.join(str(work), f'iter_{ITERS}.pth'))
