"""Training-side helpers built on what mmengine provides."""
from .fsdp import FSDPRunner, MMFullyShard
from .hooks import (OptimizerStateSizeHook, RandomStateHook, SkippedImagesHook,
                    StopOnNonFiniteLossHook, TrimSupersededLogsHook)
from .layer_decay import SwinV2LayerDecayConstructor
from .optim import ZeroWhenDistributedConstructor
from .preemption import PreemptionCheckpointHook, TrainingPreempted
from .runner import SafeCheckpointRunner, add_protecting_hooks, build_runner

__all__ = ['FSDPRunner', 'MMFullyShard', 'OptimizerStateSizeHook', 'PreemptionCheckpointHook',
           'RandomStateHook', 'SafeCheckpointRunner', 'SkippedImagesHook',
           'StopOnNonFiniteLossHook', 'SwinV2LayerDecayConstructor', 'TrainingPreempted',
           'TrimSupersededLogsHook', 'ZeroWhenDistributedConstructor', 'add_protecting_hooks',
           'build_runner']
