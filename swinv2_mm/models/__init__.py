"""SwinV2 backbones and their layers."""
from .errors import ConfigError
from .swin_v2 import ARCH_ZOO, PatchEmbed, PatchMerging, SwinTransformerV2, SwinV2Backbone
from .video_swin_v2 import VideoSwinTransformerV2

__all__ = ['ARCH_ZOO', 'ConfigError', 'PatchEmbed', 'PatchMerging', 'SwinTransformerV2', 'SwinV2Backbone',
           'VideoSwinTransformerV2']
