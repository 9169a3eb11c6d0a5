"""Training-side helpers built on what mmengine provides."""
from .hooks import (OptimizerStateSizeHook, RandomStateHook, SkippedImagesHook,
                    StopOnNonFiniteLossHook, TrimSupersededLogsHook)
from .layer_decay import SwinV2LayerDecayConstructor
from .optim import ZeroWhenDistributedConstructor
from .runner import SafeCheckpointRunner, add_protecting_hooks, build_runner

__all__ = ['OptimizerStateSizeHook', 'RandomStateHook', 'SafeCheckpointRunner', 'SkippedImagesHook',
           'StopOnNonFiniteLossHook', 'SwinV2LayerDecayConstructor', 'TrimSupersededLogsHook',
           'ZeroWhenDistributedConstructor', 'add_protecting_hooks', 'build_runner']
