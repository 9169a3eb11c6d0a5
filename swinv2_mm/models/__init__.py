"""SwinV2 backbones and their layers."""
from .backbone import SwinV2Backbone
from .options import ARCH_ZOO, ConfigError
from .patches import PatchEmbed, PatchMerging
from .swin_v2 import SwinTransformerV2
from .video_swin_v2 import VideoSwinTransformerV2

__all__ = ['ARCH_ZOO', 'ConfigError', 'PatchEmbed', 'PatchMerging', 'SwinTransformerV2',
           'SwinV2Backbone', 'VideoSwinTransformerV2']
