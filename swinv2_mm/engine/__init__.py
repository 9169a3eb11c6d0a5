"""Training-side helpers built on what mmengine provides."""
from .optim import ZeroWhenDistributedConstructor
from .safe_load import allow_mmengine_checkpoints

__all__ = ['ZeroWhenDistributedConstructor', 'allow_mmengine_checkpoints']
