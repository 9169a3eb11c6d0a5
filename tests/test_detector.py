"""A Cascade Mask R-CNN with a small SwinV2 (the demo model) computes losses and predictions."""
import os

import torch
from mmengine.config import Config

from tests.helpers import ROOT

DEMO = os.path.join(ROOT, 'configs', 'demo', 'cascade_swinv2_shapes_demo.py')


def test_loss_and_predict_on_a_small_batch(tmp_path):
    from mmdet.registry import DATASETS, MODELS
    from mmdet.utils import register_all_modules
    from mmengine.registry import DefaultScope
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(DEMO)
    data = dict(cfg.train_dataloader.dataset, data_root=str(tmp_path),
                generate=dict(num_train=4, num_val=2, image_size=128))
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = DATASETS.build(data)
        model = MODELS.build(cfg.model)
    items = [dataset[i] for i in range(2)]  # each access draws new random augmentations
    batch = model.data_preprocessor(dict(inputs=[it['inputs'] for it in items],
                                         data_samples=[it['data_samples'] for it in items]),
                                    training=True)
    with DefaultScope.overwrite_default_scope('mmdet'):
        val_set = DATASETS.build(dict(cfg.val_dataloader.dataset, data_root=str(tmp_path),
                                      generate=data['generate']))
    val_items = [val_set[i] for i in range(2)]
    val_batch = model.data_preprocessor(dict(inputs=[it['inputs'] for it in val_items],
                                             data_samples=[it['data_samples'] for it in val_items]))
    model.train()
    losses = model.loss(batch['inputs'], batch['data_samples'])
    assert {'loss_rpn_cls', 's0.loss_cls', 's2.loss_bbox', 's2.loss_mask'} <= set(losses)
    total = sum(v.sum() for k, v in losses.items() if 'loss' in k
                for v in (v if isinstance(v, list) else [v]))
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.stages[0].blocks[0].attn.qkv.weight.grad is not None
    model.eval()
    with torch.no_grad():
        preds = model.predict(val_batch['inputs'], val_batch['data_samples'])
    assert len(preds) == 2
    for pred in preds:
        inst = pred.pred_instances
        assert inst.bboxes.shape[1] == 4 and len(inst.masks) == len(inst.scores)
