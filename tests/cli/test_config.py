"""How the tools prepare a config: CPU data parallel through mmengine's own code paths, data
checks that parse each file once."""
import os
from unittest import mock

from swinv2_mm.cli.config import load_config
from swinv2_mm.cli.distributed import prepare_distributed
from tests.helpers import ROOT

DEMO = os.path.join(ROOT, 'configs', 'demo', 'cascade_swinv2_shapes_demo.py')


def test_cpu_launch_uses_gloo_cpu_ddp_and_bn(monkeypatch, capsys):
    monkeypatch.delenv('RANK', raising=False)
    with mock.patch('torch.cuda.is_available', return_value=False):
        cfg = load_config(DEMO, launcher='pytorch')
        prepare_distributed(cfg)
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
        prepare_distributed(gpu)
    single = load_config(DEMO)
    prepare_distributed(single)
    for cfg in (gpu, single):
        assert cfg.env_cfg.dist_cfg.backend == 'nccl' and 'model_wrapper_cfg' not in cfg
        assert [h.norm_cfg.type for h in cfg.model.roi_head.bbox_head] == ['SyncBN'] * 3


def test_each_coco_file_is_parsed_once(tmp_path, monkeypatch):
    """The val set and the val evaluator name the same (large) COCO file."""
    from swinv2_mm.datasets.shapes_coco import generate_shapes_coco
    from swinv2_mm.cli.data_checks import check_data_paths
    monkeypatch.chdir(tmp_path)
    root = generate_shapes_coco(str(tmp_path / 'data' / 'coco'), 4, 2, 64)
    for split in ('train', 'val'):
        os.rename(f'{root}/{split}', f'{root}/{split}2017')
        os.rename(f'{root}/annotations/instances_{split}.json',
                  f'{root}/annotations/instances_{split}2017.json')
    cfg = load_config(os.path.join(ROOT, 'configs', 'cascade_swinv2_t_coco.py'))
    with mock.patch('swinv2_mm.datasets.checks.check_coco_file') as check:
        check_data_paths(cfg, 'train')
    assert [c.args[0] for c in check.call_args_list] == [
        'data/coco/annotations/instances_train2017.json',
        'data/coco/annotations/instances_val2017.json']
