"""SwinV2 backbones and their layers."""
from .swin_v2 import ARCH_ZOO, PatchEmbed, PatchMerging, SwinTransformerV2

__all__ = ['ARCH_ZOO', 'PatchEmbed', 'PatchMerging', 'SwinTransformerV2']
