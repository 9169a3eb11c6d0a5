# Video-SwinV2-G (3B) + I3DHead, Kinetics-400, fine-tuning stage 1 of 2 (paper, appendix: the
# Kinetics-400 settings): 8 frames at 256x256, window (8, 16, 16), 20 epochs, AdamW lr 3.6e-4
# at batch 80, weight decay 0.1, cosine. Stage 2 is
# video_swinv2_g_k400.py (320 px, window (8, 20, 20)), which starts from this stage's last
# checkpoint.
# Patch (1, 4, 4): the 8 frames stay 8 temporal tokens, so the temporal window is 8, the
# paper's "8(8)" (frames(window)) for G, where Video-Swin-L's "16(8)" comes from 32 frames
# under the (2, 4, 4) patch. Tokens per window by stage: 2048, 2048, 2048, 512 (stage 3's
# 8x8 map is smaller than the window, which shrinks to (8, 8, 8) unshifted).
# Not in the settings we follow, our choices: frame interval 2, drop path 0.3, the head's
# dropout 0.5, a 2.5-epoch warm-up (the 224 recipe's); the one learning rate applies to
# backbone and head alike (the paper states one rate; the smaller sizes' backbone lr x0.1
# is not applied).
# No SwinV2-G weights are public: point init_cfg at your own 2D or 3D weights (2D ones are
# inflated) with
#   --cfg-options model.backbone.init_cfg.type=Pretrained model.backbone.init_cfg.checkpoint=PATH
#   model.backbone.pretrained_window_sizes=[W,W,W,W/2]
# and set stage 2's and the test config's pretrained_window_sizes to the same values.
_base_ = './_base_/video_swinv2_k400.py'

clip_len, frame_interval, crop = 8, 2, 256
model = dict(
    backbone=dict(
        arch='giant',
        patch_size=(1, 4, 4),
        window_size=(8, 16, 16),
        pretrained_window_sizes=0,
        drop_path_rate=0.3,
        with_cp=True,
        attn_chunk_size=4),  # sequential attention: 4 windows at a time
    cls_head=dict(in_channels=4096))

# ZeRO-1: on more than one process each rank keeps 1/N of AdamW's state (mmengine's
# ZeroRedundancyOptimizer); a single process trains with the plain optimizer
# FSDP (ZeRO-3: parameters and gradients sharded too, one unit per SwinV2 block) instead:
#   --cfg-options model_wrapper_cfg.type=MMFullyShard (see configs/_base_/fsdp.py; the
#   tools then replace this constructor by its base_constructor)
optim_wrapper = dict(
    constructor='ZeroWhenDistributedConstructor',
    base_constructor='SwinOptimWrapperConstructor',
    optimizer=dict(lr=3.6e-4, weight_decay=0.1),
    paramwise_cfg=dict(backbone=dict(lr_mult=1.0)))

max_epochs = 20
train_cfg = dict(max_epochs=max_epochs, val_interval=2)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=2.5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=0, by_epoch=True, begin=0,
         end=max_epochs),
]
default_hooks = dict(checkpoint=dict(interval=2))

# batch 80: 16 GPUs x 5 clips (or set batch_size and pass --auto-scale-lr)
train_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=clip_len, frame_interval=frame_interval, num_clips=1),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, crop * 8 // 7)),  # 256/224 of the crop, as the 224 recipe
    dict(type='RandomResizedCrop'),
    dict(type='Resize', scale=(crop, crop), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
val_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=clip_len, frame_interval=frame_interval, num_clips=1,
         test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, crop * 8 // 7)),
    dict(type='CenterCrop', crop_size=crop),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
train_dataloader = dict(batch_size=5, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(pipeline=val_pipeline))
auto_scale_lr = dict(enable=False, base_batch_size=80)
