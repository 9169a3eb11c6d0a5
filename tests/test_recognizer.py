"""A Recognizer3D with a small Video-SwinV2 (the demo model) computes losses and predictions."""
import os

import torch
from mmengine.config import Config

from tests.helpers import ROOT

DEMO = os.path.join(ROOT, 'configs', 'demo', 'video_swinv2_shapes_demo.py')


def test_loss_and_predict_on_generated_clips(tmp_path):
    from mmaction.registry import DATASETS, MODELS
    from mmaction.utils import register_all_modules
    from mmengine.registry import DefaultScope
    import swinv2_mm.datasets.shapes_motion  # noqa: F401
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(DEMO)
    generate = dict(num_train=4, num_val=2, num_frames=16, image_size=64)
    with DefaultScope.overwrite_default_scope('mmaction'):
        train_set = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=str(tmp_path),
                                        generate=generate))
        val_set = DATASETS.build(dict(cfg.val_dataloader.dataset, data_root=str(tmp_path),
                                      generate=generate))
        model = MODELS.build(cfg.model)

    def batch(items, training):
        return model.data_preprocessor(dict(inputs=[it['inputs'] for it in items],
                                            data_samples=[it['data_samples'] for it in items]),
                                       training=training)
    train = batch([train_set[i] for i in range(4)], True)
    assert train['inputs'].shape == (4, 1, 3, 8, 64, 64)  # (B, views, C, T, H, W)
    model.train()
    losses = model.loss(train['inputs'], train['data_samples'])
    assert torch.isfinite(losses['loss_cls'])
    losses['loss_cls'].backward()
    assert model.backbone.stages[0].blocks[0].attn.cpb_mlp[0].weight.grad is not None
    val = batch([val_set[i] for i in range(2)], False)
    assert val['inputs'].shape == (2, 2, 3, 8, 64, 64)  # two clips per video
    model.eval()
    with torch.no_grad():
        preds = model.predict(val['inputs'], val['data_samples'])
    assert len(preds) == 2
    for pred in preds:
        assert pred.pred_score.shape == (4,)
        assert torch.allclose(pred.pred_score.sum(), torch.tensor(1.0), atol=1e-5)  # averaged probs
