# Video-SwinV2-G, Kinetics-400, the paper's test setting after stage 2 (video_swinv2_g_k400.py):
# 384x384 crops, window (8, 24, 24), 4 clips x 5 crops (86.8 top-1 in the paper). mmaction2 has
# three and ten crops, not five: swinv2_mm's FiveCrop (swinv2_mm.datasets.video_transforms)
# takes the corners and the centre of frames resized to 384 * 8/7 = 438 on the short side.
# The log-CPB stays normalised by stage 1's windows, as in stage 2. Tokens per window by
# stage: 4608, 4608, 4608, 1152.
#   python tools/test.py configs/video_swinv2_g_k400_384_test.py \
#       work_dirs/video_swinv2_g_k400/epoch_5.pth
_base_ = './video_swinv2_g_k400.py'

custom_imports = dict(imports=['swinv2_mm', 'swinv2_mm.amp.mmaction_heads',
                               'swinv2_mm.datasets.video_transforms'])
load_from = None
crop = 384
model = dict(backbone=dict(window_size=(8, 24, 24)))

test_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=2, num_clips=4, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, crop * 8 // 7)),
    dict(type='FiveCrop', crop_size=crop),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
test_dataloader = dict(batch_size=1, dataset=dict(pipeline=test_pipeline))
