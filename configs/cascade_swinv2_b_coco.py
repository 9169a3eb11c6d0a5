# Cascade Mask R-CNN, SwinV2-B backbone, COCO, 3x schedule with multi-scale crop.
# Starts from the official swinv2_base_patch4_window12_192_22k.pth (ImageNet-22K, 192 px, window 12);
# pretrained_window_sizes are the windows those weights ran at; detection runs at window 16.
_base_ = './_base_/cascade_swinv2_coco.py'

pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v2.0.0/swinv2_base_patch4_window12_192_22k.pth'
model = dict(
    backbone=dict(
        arch='base',
        window_size=16,
        pretrained_window_sizes=[12, 12, 12, 6],
        drop_path_rate=0.3,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[128, 256, 512, 1024]))
