"""Mixed precision for tools/train.py --amp and tools/test.py --amp, on a GPU or a CPU."""
import importlib
from typing import Tuple

import torch
from mmengine.config import Config
from mmengine.logging import print_log

from ..models.options import ConfigError
from .config import typed_dicts

# where the float32-island heads of each toolbox scope are registered (swinv2_mm/amp/)
ISLAND_MODULES = {'mmdet': 'swinv2_mm.amp.mmdet_heads', 'mmaction': 'swinv2_mm.amp.mmaction_heads'}
TRAIN_WRAPPERS = ('OptimWrapper', 'AmpOptimWrapper', 'AutocastOptimWrapper')


def amp_device_dtype() -> Tuple[str, torch.dtype]:
    """bfloat16 where the GPU supports it, else float16 (loss-scaled); bfloat16 on a CPU,
    the only dtype mmengine's CPU autocast takes (fast where the CPU has AVX512-BF16 or AMX)."""
    if torch.cuda.is_available():
        return 'cuda', torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return 'cpu', torch.bfloat16


def check_float32_islands(cfg: Config) -> None:
    """Refuses, before anything is built, a model that names a toolbox head whose NMS,
    RoIAlign or numpy metrics have no low-precision kernel, and says which Amp type to use."""
    module = ISLAND_MODULES.get(cfg.get('default_scope'))
    if module is None:
        return
    variants = importlib.import_module(module).AMP_VARIANTS
    plain = [(path, variants[node['type']]) for path, node in typed_dicts(cfg.model, 'model')
             if node['type'] in variants]
    if plain:
        fixes = '; '.join(f"{path}.type='{amp}'" for path, amp in plain)
        raise ConfigError(f'--amp: these heads would run NMS, RoIAlign or numpy metrics in low '
                          f'precision, which mmcv and numpy do not support: set {fixes} '
                          f"(float32 islands; add '{module}' to custom_imports)")


def set_eval_precision(cfg: Config, device: str, dtype: torch.dtype) -> None:
    """Validation and test loops under autocast in ``dtype`` (mmengine's ``fp16`` loop option;
    its autocast takes the device's default dtype, set here for this process)."""
    torch.set_autocast_dtype(device, dtype)
    for loop in ('val_cfg', 'test_cfg'):
        if cfg.get(loop) is not None:
            cfg[loop]['fp16'] = True


def enable_amp(cfg: Config, training: bool = True) -> str:
    """Mixed precision for a run: training under ``AutocastOptimWrapper`` (when ``training``)
    and evaluation in the same dtype. fp16 overflow in attention is the known Swin failure,
    hence bf16 first. Returns the dtype's name."""
    device, dtype = amp_device_dtype()
    name = str(dtype).replace('torch.', '')
    check_float32_islands(cfg)
    if training:
        wrapper = cfg.optim_wrapper
        if wrapper.get('type', 'OptimWrapper') not in TRAIN_WRAPPERS:
            raise ConfigError(f"--amp: optim_wrapper.type is {wrapper['type']!r}; --amp sets it to "
                              "'AutocastOptimWrapper', so leave it 'OptimWrapper' or drop --amp")
        wrapper.type = 'AutocastOptimWrapper'
        wrapper.dtype = name
        wrapper.setdefault('loss_scale', 'dynamic')
    set_eval_precision(cfg, device, dtype)
    print_log(f'--amp: {name} autocast on {device}'
              f'{" with dynamic loss scaling" if dtype == torch.float16 else ""}; '
              'NMS, RoIAlign, box decoding and losses in float32', logger='current')
    return name
