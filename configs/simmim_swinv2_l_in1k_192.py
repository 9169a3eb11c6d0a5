# SwinV2-L SimMIM pre-training on ImageNet-1K, 192 px, window 12, 800 epochs. No official
# YAML exists for this size: the recipe is the base YAML's (configs/_base_/simmim_swinv2_in1k.py),
# as the official SimMIM SwinV2 zoo (MODELHUB.md, "Simmim Pretrained Swin-V2 Models")
# pre-trains every size with one setting at batch 2048; the architecture is the SwinV2
# paper's SwinV2-L (C=192, depths 2,2,18,2).
_base_ = '_base_/simmim_swinv2_in1k.py'
model = dict(backbone=dict(arch='large'), neck=dict(in_channels=192 * 2 ** 3))
