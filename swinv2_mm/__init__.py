"""Swin Transformer V2 for MMDetection, MMSegmentation and MMAction2."""
from .checkpoint import convert_state_dict, load_pretrained
from .compat import install_mmaction_drn_shim
from .engine import allow_mmengine_checkpoints
from .models import SwinTransformerV2, VideoSwinTransformerV2
from .registry import register_all

__version__ = '0.1.0'
__all__ = ['SwinTransformerV2', 'VideoSwinTransformerV2', 'convert_state_dict', 'load_pretrained']

install_mmaction_drn_shim()
allow_mmengine_checkpoints()
register_all()
