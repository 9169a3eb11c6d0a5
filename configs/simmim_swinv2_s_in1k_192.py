# SwinV2-S SimMIM pre-training on ImageNet-1K, 192 px, window 12, 800 epochs. No official
# YAML exists for this size: the recipe is the base YAML's (configs/_base_/simmim_swinv2_in1k.py),
# as the official SimMIM SwinV2 zoo (MODELHUB.md, "Simmim Pretrained Swin-V2 Models")
# pre-trains every size with one setting at batch 2048; the architecture is the SwinV2
# paper's SwinV2-S (C=96, depths 2,2,18,2).
_base_ = '_base_/simmim_swinv2_in1k.py'
model = dict(backbone=dict(arch='small'), neck=dict(in_channels=96 * 2 ** 3))
