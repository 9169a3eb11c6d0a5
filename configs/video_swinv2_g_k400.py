# Video-SwinV2-G (3B) + I3DHead, Kinetics-400, following the paper: 320x320 crops of 8 frames,
# window (8, 20, 20), activation checkpointing, ZeRO-1 optimizer sharding on more than one
# process. No SwinV2-G weights are public: point init_cfg at your own 2D or 3D weights (any
# layout swinv2_mm reads; 2D ones are inflated) with
#   --cfg-options model.backbone.init_cfg.type=Pretrained model.backbone.init_cfg.checkpoint=PATH
#   model.backbone.pretrained_window_sizes=[W,W,W,W/2]
_base_ = './_base_/video_swinv2_k400.py'

clip_len, frame_interval, crop = 8, 2, 320
model = dict(
    backbone=dict(
        arch='giant',
        window_size=(8, 20, 20),
        pretrained_window_sizes=0,
        drop_path_rate=0.3,
        with_cp=True,
        attn_chunk_size=4),  # sequential attention: 4 windows at a time
    cls_head=dict(in_channels=4096))

# ZeRO-1: on more than one process each rank keeps 1/N of AdamW's state (mmengine's
# ZeroRedundancyOptimizer); a single process trains with the plain optimizer
optim_wrapper = dict(constructor='ZeroWhenDistributedConstructor',
                     base_constructor='SwinOptimWrapperConstructor')

train_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=clip_len, frame_interval=frame_interval, num_clips=1),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 366)),
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
    dict(type='Resize', scale=(-1, 366)),
    dict(type='CenterCrop', crop_size=crop),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
test_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=clip_len, frame_interval=frame_interval, num_clips=4,
         test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, crop)),
    dict(type='ThreeCrop', crop_size=crop),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
train_dataloader = dict(batch_size=1, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
