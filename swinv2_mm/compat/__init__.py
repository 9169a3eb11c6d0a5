"""Compatibility fixes for the published OpenMMLab packages (see compat/mmaction.py)."""
from .mmaction import install_mmaction_drn_shim

__all__ = ['install_mmaction_drn_shim']
