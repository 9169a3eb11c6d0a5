# Video-SwinV2-B + I3DHead, Kinetics-400: 32 frames at interval 2, 224 crops, 4x3 test views.
# Starts from the official 2D swinv2_base_patch4_window12_192_22k.pth (ImageNet-22K, 192 px, window 12),
# inflated to 3D on load; the log-CPB carries the 2D window's bias to the (8, 7, 7) video window.
_base_ = './_base_/video_swinv2_k400.py'

pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v2.0.0/swinv2_base_patch4_window12_192_22k.pth'
model = dict(
    backbone=dict(
        arch='base',
        window_size=(8, 7, 7),
        pretrained_window_sizes=[12, 12, 12, 6],
        drop_path_rate=0.3,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    cls_head=dict(in_channels=1024))
# mmaction2's Video Swin recipe for this size: weight decay 0.05 (0.02 for tiny and small)
optim_wrapper = dict(optimizer=dict(weight_decay=0.05))
