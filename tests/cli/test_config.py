"""How the tools prepare a config: CPU data parallel through mmengine's own code paths, data
checks that parse each file once."""
import os
from unittest import mock

import torch

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


def test_a_restarted_worker_resumes_from_its_last_checkpoint(tmp_path, monkeypatch):
    from swinv2_mm.cli.checkpoints import set_resume

    def resumed(restarts, resume=None):
        monkeypatch.setenv('TORCHELASTIC_RESTART_COUNT', str(restarts))
        cfg = load_config(DEMO)
        cfg.work_dir = str(tmp_path)
        set_resume(cfg, resume)
        return cfg.get('resume', False), cfg.get('load_from')

    assert resumed(1) == (False, None)  # failed before its first checkpoint: a fresh start
    assert resumed(1, 'first.pth') == (True, 'first.pth')  # as the first attempt did
    torch.save({'state_dict': {}}, tmp_path / 'iter_2.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    latest = str(tmp_path / 'iter_2.pth')
    assert resumed(1) == (True, latest)  # the work dir's latest checkpoint
    assert resumed(1, 'first.pth') == (True, latest)
    assert resumed(0) == (False, None)  # the first attempt resumes only when asked


def test_a_restarted_gpu_worker_joins_a_process_group_of_its_own_attempt(monkeypatch):
    """torchrun keeps one store for all attempts; a restarted worker's group lives under its
    attempt's prefix, so it never reads the failed attempt's addresses."""
    import torch.distributed as dist
    monkeypatch.setenv('TORCHELASTIC_RESTART_COUNT', '2')
    monkeypatch.setenv('RANK', '1')
    monkeypatch.setenv('LOCAL_RANK', '3')
    store = dist.HashStore()
    with mock.patch('torch.cuda.is_available', return_value=True), \
            mock.patch('torch.cuda.set_device') as set_device, \
            mock.patch('torch.distributed.is_initialized', return_value=False), \
            mock.patch('torch.distributed.rendezvous', return_value=iter([(store, 1, 4)])), \
            mock.patch('torch.distributed.init_process_group') as init:
        cfg = load_config(DEMO, launcher='pytorch')
        cfg.env_cfg.dist_cfg.timeout = 600
        prepare_distributed(cfg)
    set_device.assert_called_once_with(3)
    (backend,), kwargs = init.call_args
    assert backend == 'nccl' and (kwargs['rank'], kwargs['world_size']) == (1, 4)
    assert kwargs['timeout'].total_seconds() == 600
    kwargs['store'].set('key', 'value')
    assert store.get('attempt_2/key') == b'value'
