# UperNet, SwinV2-T backbone, ADE20K, 512x512 crops, 160k iterations.
# Starts from the official swinv2_tiny_patch4_window16_256.pth (ImageNet-1K, 256 px, window 16);
# pretrained_window_sizes are the windows those weights ran at; segmentation runs at window 16.
_base_ = './_base_/upernet_swinv2_ade20k.py'

pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v2.0.0/swinv2_tiny_patch4_window16_256.pth'
model = dict(
    backbone=dict(
        arch='tiny',
        window_size=16,
        pretrained_window_sizes=[16, 16, 16, 8],
        drop_path_rate=0.3,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))
