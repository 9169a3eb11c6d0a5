"""Swin Transformer V2 for MMDetection, MMSegmentation and MMAction2.

``import swinv2_mm`` (what a config's ``custom_imports`` does) does exactly three things
beyond defining the modules, listed in the README under "What importing does":
registers the backbones and training helpers in mmengine's root registries
(:func:`swinv2_mm.registry.register_all`), allow-lists mmengine's own checkpoint types for
torch's weights-only unpickler, ``getattr`` only as a stand-in that reaches HistoryBuffer's
statistics methods (:func:`swinv2_mm.checkpoint.allow_mmengine_checkpoints`),
and, where the installed mmaction2 lacks ``localizers/drn``, installs the import hook
that supplies it (:func:`swinv2_mm.compat.install_mmaction_drn_shim`).
"""
from .checkpoint import allow_mmengine_checkpoints, convert_state_dict, load_pretrained
from .compat import install_mmaction_drn_shim
from .models import SwinTransformerV2, VideoSwinTransformerV2
from .registry import register_all

__version__ = '0.1.0'
__all__ = ['SwinTransformerV2', 'VideoSwinTransformerV2', 'convert_state_dict', 'load_pretrained']

install_mmaction_drn_shim()
allow_mmengine_checkpoints()
register_all()
