# UperNet, SwinV2-G, ADE20K, the paper's test-time setting after upernet_swinv2_g_ade20k.py:
# images resized to 896 px on the short side, window 56 (59.3 mIoU in the paper, +0.2 over
# 640 px / window 40). pretrained_window_sizes are the windows training normalised the log-CPB
# by (its own at 640 px, as it sets 0: stage 3 shrank to its 20x20 map), so the bias is the
# function training learnt. Tokens per window by stage: 3136, 3136, 3136, 784.
#   python tools/test.py configs/upernet_swinv2_g_ade20k_896_test.py \
#       work_dirs/upernet_swinv2_g_ade20k/iter_80000.pth
_base_ = './upernet_swinv2_g_ade20k.py'

model = dict(backbone=dict(window_size=56, pretrained_window_sizes=[40, 40, 40, 20]))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(3584, 896), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
