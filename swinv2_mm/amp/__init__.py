"""Mixed precision on any device: the autocast optimizer wrapper and float32 islands.

The toolbox heads with islands live in ``swinv2_mm.amp.mmdet_heads`` and
``swinv2_mm.amp.mmaction_heads``, imported by the configs that use them (they import their
toolbox; ``import swinv2_mm`` imports none).
"""
from .islands import autocast_off, float32_island, float32_methods, to_float32
from .optim_wrapper import AutocastOptimWrapper

__all__ = ['AutocastOptimWrapper', 'autocast_off', 'float32_island', 'float32_methods',
           'to_float32']
