# Cascade Mask R-CNN, SwinV2-T backbone, COCO, 3x schedule with multi-scale crop.
# Starts from the official swinv2_tiny_patch4_window16_256.pth (ImageNet-1K, 256 px, window 16);
# pretrained_window_sizes are the windows those weights ran at; detection runs at window 16.
_base_ = './_base_/cascade_swinv2_coco.py'

pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v2.0.0/swinv2_tiny_patch4_window16_256.pth'
model = dict(
    backbone=dict(
        arch='tiny',
        window_size=16,
        pretrained_window_sizes=[16, 16, 16, 8],
        drop_path_rate=0.2,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[96, 192, 384, 768]))
