# Video-SwinV2-T + I3DHead, Kinetics-400: 32 frames at interval 2, 224 crops, 4x3 test views.
# Starts from the official 2D swinv2_tiny_patch4_window16_256.pth (ImageNet-1K, 256 px, window 16),
# inflated to 3D on load; the log-CPB carries the 2D window's bias to the (8, 7, 7) video window.
_base_ = './_base_/video_swinv2_k400.py'

pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v2.0.0/swinv2_tiny_patch4_window16_256.pth'
model = dict(
    backbone=dict(
        arch='tiny',
        window_size=(8, 7, 7),
        pretrained_window_sizes=[16, 16, 16, 8],
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    cls_head=dict(in_channels=768))
