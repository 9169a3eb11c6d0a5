"""Registers swinv2_mm's 2D and video backbones (and its SimMIM backbone and loss, its
optimizer constructors and wrapper, runners, FSDP model wrapper and hooks) where every
OpenMMLab toolbox finds them.

They go into mmengine's root MODELS registry: the registries of mmdet, mmseg and
mmaction2 are its children and fall back to it for names they lack, so
``dict(type='SwinTransformerV2')`` builds ours there. mmpretrain has its own class of
that name in its own registry, which it keeps finding first: nothing is shadowed.
"""
from mmengine.registry import (HOOKS, MODEL_WRAPPERS, MODELS, OPTIM_WRAPPER_CONSTRUCTORS,
                               OPTIM_WRAPPERS, RUNNERS)

from .amp import AutocastOptimWrapper
from .engine import (FSDPRunner, MMFullyShard, OptimizerStateSizeHook, PreemptionCheckpointHook,
                     RandomStateHook, SafeCheckpointRunner, SkippedImagesHook,
                     StopOnNonFiniteLossHook, SwinV2LayerDecayConstructor,
                     TrimSupersededLogsHook, ZeroWhenDistributedConstructor)
from .engine.hooks import SafeCheckpointHook
from .models import SwinTransformerV2, VideoSwinTransformerV2
from .simmim import NormalizedTargetL1Loss, SimMIMPicturesHook, SimMIMSwinTransformerV2


def register_all() -> None:
    """Idempotent registration of every swinv2_mm backbone and training helper."""
    for registry, cls in ((MODELS, SwinTransformerV2), (MODELS, VideoSwinTransformerV2),
                          (MODELS, SimMIMSwinTransformerV2), (MODELS, NormalizedTargetL1Loss),
                          (HOOKS, SimMIMPicturesHook),
                          (OPTIM_WRAPPER_CONSTRUCTORS, ZeroWhenDistributedConstructor),
                          (OPTIM_WRAPPER_CONSTRUCTORS, SwinV2LayerDecayConstructor),
                          (OPTIM_WRAPPERS, AutocastOptimWrapper),
                          (RUNNERS, SafeCheckpointRunner), (HOOKS, RandomStateHook),
                          (HOOKS, TrimSupersededLogsHook), (HOOKS, StopOnNonFiniteLossHook),
                          (HOOKS, OptimizerStateSizeHook), (HOOKS, SkippedImagesHook),
                          (HOOKS, PreemptionCheckpointHook), (HOOKS, SafeCheckpointHook),
                          (MODEL_WRAPPERS, MMFullyShard),
                          (RUNNERS, FSDPRunner)):
        current = registry.module_dict.get(cls.__name__)
        if current is None or current.__module__.startswith('swinv2_mm.'):  # absent or ours
            registry.register_module(module=cls, force=True)
