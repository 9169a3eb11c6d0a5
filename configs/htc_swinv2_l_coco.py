# HTC++, SwinV2-L backbone, COCO: the paper's SwinV2-L detector (1536 px large-scale jitter,
# window 32, 3x schedule). Starts from the official swinv2_large_patch4_window12_192_22k.pth
# (ImageNet-22K, 192 px, window 12); pretrained_window_sizes are the windows those weights ran
# at. At 1536 px the stage maps are 384, 192, 96 and 48 tokens a side; a window of 32 tokens
# covers 128, 256, 512 and 1024 px of the input (12x12, 6x6 and 3x3 windows in stages 0-2;
# stage 3's 48-token map is padded to 2x2 windows, the padded keys masked). At the 1100 px test
# size (825 x 1100 for a 640 x 480 image) stage 3's map is 26 x 35 tokens: its window is 26 x 32.
_base_ = './_base_/htc_swinv2_coco.py'

pretrained = ('https://github.com/SwinTransformer/storage/releases/download/v2.0.0/'
              'swinv2_large_patch4_window12_192_22k.pth')
model = dict(
    backbone=dict(
        arch='large',
        pretrained_window_sizes=[12, 12, 12, 6],
        drop_path_rate=0.3,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[192, 384, 768, 1536]))
