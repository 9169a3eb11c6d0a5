"""Float32 islands: methods that must see float32 under autocast, whatever the network ran in.

Box decoding, NMS, RoIAlign, losses and metrics computed from a head's outputs belong in
float32: mmcv 2.1's CPU NMS and RoIAlign kernels take float32 only, its CUDA RoIAlign has no
bfloat16, mmaction2 turns class scores into numpy (which has no bfloat16), and a bfloat16
box coordinate near 800 px is only 4 px from its neighbour. A float32 island casts the
low-precision floating tensors among its arguments to float32 and turns autocast off while
it runs; without autocast and with float32 inputs it changes nothing.
"""
import contextlib
import functools
from typing import Any, Callable

import torch

LOW_PRECISION = (torch.float16, torch.bfloat16)
AUTOCAST_DEVICES = ('cpu', 'cuda')


def to_float32(value: Any) -> Any:
    """``value`` with every float16/bfloat16 tensor, also inside lists, tuples and dicts, in
    float32; everything else is returned as it is."""
    if torch.is_tensor(value):
        return value.float() if value.dtype in LOW_PRECISION else value
    if isinstance(value, (list, tuple)):
        converted = [to_float32(item) for item in value]
        return type(value)(*converted) if hasattr(value, '_fields') else type(value)(converted)
    if isinstance(value, dict):
        return type(value)((key, to_float32(item)) for key, item in value.items())
    return value


@contextlib.contextmanager
def autocast_off():
    """Turns autocast off on every device where it is on."""
    with contextlib.ExitStack() as stack:
        for device in AUTOCAST_DEVICES:
            if torch.is_autocast_enabled(device):
                stack.enter_context(torch.autocast(device, enabled=False))
        yield


def float32_island(method: Callable) -> Callable:
    """``method`` run on float32 arguments with autocast off."""
    @functools.wraps(method)
    def island(*args, **kwargs):
        with autocast_off():
            return method(*to_float32(args), **to_float32(kwargs))
    island.float32_island = True
    return island


def float32_methods(*names: str) -> Callable[[type], type]:
    """Class decorator: the named (inherited) methods of the class become float32 islands."""
    def decorate(cls: type) -> type:
        for name in names:
            setattr(cls, name, float32_island(getattr(cls, name)))
        cls.float32_methods = tuple(getattr(cls, 'float32_methods', ())) + names
        return cls
    return decorate


def amp_variants(*classes: type) -> dict:
    """``{toolbox class name: its float32-island subclass name}`` for the given subclasses."""
    return {cls.__bases__[0].__name__: cls.__name__ for cls in classes}
