"""How the tools prepare a config: CPU data parallel through mmengine's own code paths."""
import os
from unittest import mock

from swinv2_mm.launch import load_config
from tests.helpers import ROOT

DEMO = os.path.join(ROOT, 'configs', 'demo', 'cascade_swinv2_shapes_demo.py')


def test_cpu_launch_uses_gloo_cpu_ddp_and_bn(monkeypatch, capsys):
    monkeypatch.delenv('RANK', raising=False)
    with mock.patch('torch.cuda.is_available', return_value=False):
        cfg = load_config(DEMO, launcher='pytorch')
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    wrapper = cfg.model_wrapper_cfg
    assert wrapper.type == 'MMDistributedDataParallel' and wrapper.device_ids is None
    assert 'SyncBN' not in str(cfg.model)
    assert [h.norm_cfg.type for h in cfg.model.roi_head.bbox_head] == ['BN'] * 3
    assert 'SyncBN layers run as BN' in capsys.readouterr().out


def test_gpu_and_single_process_launches_keep_mmengine_defaults(monkeypatch):
    monkeypatch.delenv('RANK', raising=False)
    with mock.patch('torch.cuda.is_available', return_value=True):
        gpu = load_config(DEMO, launcher='pytorch')
    single = load_config(DEMO)
    for cfg in (gpu, single):
        assert cfg.env_cfg.dist_cfg.backend == 'nccl' and 'model_wrapper_cfg' not in cfg
        assert [h.norm_cfg.type for h in cfg.model.roi_head.bbox_head] == ['SyncBN'] * 3
