"""mmengine's AmpOptimWrapper for every device torch autocasts on, the CPU included."""
import contextlib
from typing import Union

import torch
from mmengine.device import get_device
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from ..models.options import ConfigError

DTYPES = {'bfloat16': torch.bfloat16, 'float16': torch.float16}


def autocast_dtype(dtype: Union[str, torch.dtype]) -> torch.dtype:
    """``'bfloat16'`` or ``'float16'`` (or the torch dtype) as a torch dtype."""
    resolved = DTYPES.get(dtype, dtype)
    if resolved not in DTYPES.values():
        raise ConfigError(f"optim_wrapper.dtype: {dtype!r} is not a mixed-precision dtype; "
                          "use 'bfloat16' or 'float16'")
    return resolved


def grad_scaler(device: str, dtype: torch.dtype, loss_scale) -> torch.amp.GradScaler:
    """A loss scaler for float16 (dynamic, a fixed float or GradScaler's keyword arguments);
    a disabled one for bfloat16, whose range is float32's."""
    if dtype != torch.float16:
        return torch.amp.GradScaler(device, enabled=False)
    if loss_scale == 'dynamic':
        return torch.amp.GradScaler(device)
    if isinstance(loss_scale, (int, float)) and not isinstance(loss_scale, bool):
        return torch.amp.GradScaler(device, init_scale=float(loss_scale))
    if isinstance(loss_scale, dict):
        return torch.amp.GradScaler(device, **loss_scale)
    raise ConfigError(f"optim_wrapper.loss_scale: {loss_scale!r}; use 'dynamic', a number or "
                      'a dict of torch.amp.GradScaler arguments')


class AutocastOptimWrapper(AmpOptimWrapper):
    """Mixed-precision training on the device mmengine trains on (``get_device()``): the CPU,
    where mmengine's ``AmpOptimWrapper`` refuses to run, or a GPU.

    The forward pass runs under ``torch.autocast(device, dtype)``. float16 gets a dynamic
    (or fixed: a number) loss scale whose state goes into checkpoints, so that a resumed run
    continues with it; bfloat16 needs none. A checkpoint resumes across precisions (logged):
    one trained without a loss scale (bfloat16, float32) starts float16's afresh, and
    bfloat16 leaves a float16 checkpoint's scale unused. Backward, step, gradient clipping
    and the state it saves are ``AmpOptimWrapper``'s.

    Args:
        dtype: ``'bfloat16'`` (the default) or ``'float16'``.
        loss_scale: float16 only: ``'dynamic'``, an initial scale kept fixed, or a dict of
            ``torch.amp.GradScaler`` arguments.
    """

    def __init__(self, dtype: Union[str, torch.dtype] = 'bfloat16',
                 loss_scale: Union[str, float, dict] = 'dynamic', **kwargs):
        OptimWrapper.__init__(self, **kwargs)  # AmpOptimWrapper.__init__ refuses the CPU
        self.device_type = get_device()
        self.cast_dtype = autocast_dtype(dtype)
        self.loss_scaler = grad_scaler(self.device_type, self.cast_dtype, loss_scale)
        fixed = self.loss_scaler.is_enabled() and isinstance(loss_scale, (int, float))
        self._scale_update_param = float(loss_scale) if fixed else None

    @contextlib.contextmanager
    def optim_context(self, model: torch.nn.Module):
        with OptimWrapper.optim_context(self, model), \
                torch.autocast(self.device_type, dtype=self.cast_dtype):
            yield

    def load_state_dict(self, state_dict: dict) -> None:
        """The optimizer's state, and the loss scale where both the checkpoint and this
        wrapper have one (``GradScaler`` refuses the empty state of a disabled scaler)."""
        state_dict = dict(state_dict)
        saved = state_dict.pop('loss_scaler', None)
        if self.loss_scaler.is_enabled() and saved:
            self.loss_scaler.load_state_dict(saved)
        elif self.loss_scaler.is_enabled():
            print_log(f'resume: the checkpoint holds no float16 loss scale (trained in bfloat16 '
                      f'or float32): float16 training starts with a fresh one, scale '
                      f'{self.loss_scaler.get_scale()}', logger='current')
        elif saved:
            print_log(f"resume: the checkpoint's float16 loss scale ({saved.get('scale')}) is "
                      f"not used: {str(self.cast_dtype).replace('torch.', '')} needs none",
                      logger='current')
        super().load_state_dict(state_dict)
