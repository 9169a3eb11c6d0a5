"""Mixed precision for tools/train.py --amp."""
import torch
from mmengine.config import Config


def enable_amp(cfg: Config) -> str:
    """Mixed precision: bfloat16 where the GPU supports it, else float16 with loss scaling.

    fp16 overflow in attention is the known Swin failure, hence bf16 first. On a machine
    without a GPU this refuses: mmengine's AmpOptimWrapper runs only on accelerators and
    mmcv's CPU RoI ops have no bfloat16 kernels.
    """
    if not torch.cuda.is_available():
        raise RuntimeError('--amp needs a GPU: mmengine\'s AmpOptimWrapper runs only on '
                           'accelerators, and mmcv\'s CPU RoIAlign/NMS have no bfloat16 kernels. '
                           'Train in fp32 on the CPU (drop --amp).')
    dtype = 'bfloat16' if torch.cuda.is_bf16_supported() else 'float16'
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.dtype = dtype
    cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    return dtype
