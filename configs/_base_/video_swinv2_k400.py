# Recognizer3D + Video-SwinV2 + I3DHead on Kinetics-400: the Video Swin recipe
# (REFERENCE.md section 4) on top of mmaction2's own base configs. Size-specific configs
# set the backbone, its 2D ImageNet weights (inflated on load) and the head width.
_base_ = [
    'mmaction::_base_/models/swin_tiny.py',
    'mmaction::_base_/default_runtime.py',
]
# swinv2_mm.amp.mmaction_heads registers AmpI3DHead: I3DHead with its loss, accuracy and
# scores as float32 islands under --amp (README: Mixed precision)
custom_imports = dict(imports=['swinv2_mm', 'swinv2_mm.amp.mmaction_heads'],
                      allow_failed_imports=False)
# swinv2_mm's runner also under the toolboxes' own tools/train.py and test.py: checkpoints are
# read without running code from them and written atomically (docs/trust.md)
runner_type = 'SafeCheckpointRunner'

model = dict(
    backbone=dict(
        _delete_=True,
        type='VideoSwinTransformerV2',
        arch='tiny',
        patch_size=(2, 4, 4),
        window_size=(8, 7, 7),
        pretrained_window_sizes=0,
        drop_path_rate=0.1,
        out_indices=(3,),
        with_cp=False),
    cls_head=dict(type='AmpI3DHead', in_channels=768, num_classes=400, dropout_ratio=0.5,
                  average_clips='prob'))

# Kinetics-400 as mmaction2 keeps it: videos read with decord, train/val lists of
# "<file> <label>" lines (tools/data/kinetics in the mmaction2 repository).
dataset_type = 'VideoDataset'
data_root = 'data/kinetics400/'
clip_len, frame_interval, crop = 32, 2, 224
train_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=clip_len, frame_interval=frame_interval, num_clips=1),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
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
    dict(type='Resize', scale=(-1, 256)),
    dict(type='CenterCrop', crop_size=crop),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
# 4 clips x 3 crops per video, scores averaged (average_clips='prob')
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
train_dataloader = dict(
    batch_size=8, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root,
                 ann_file='kinetics400_train_list_videos.txt',
                 data_prefix=dict(video='videos_train'), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root,
                 ann_file='kinetics400_val_list_videos.txt',
                 data_prefix=dict(video='videos_val'), pipeline=val_pipeline, test_mode=True))
test_dataloader = dict(
    batch_size=1, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root,
                 ann_file='kinetics400_val_list_videos.txt',
                 data_prefix=dict(video='videos_val'), pipeline=test_pipeline, test_mode=True))
val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator

# 30 epochs, cosine, 2.5-epoch linear warm-up
max_epochs = 30
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_begin=1, val_interval=3)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=2.5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=0, by_epoch=True, begin=0,
         end=max_epochs),
]

# AdamW lr 1e-3, wd 0.02 (the base and large configs set 0.05, as mmaction2's do), backbone
# lr x0.1. mmaction2's SwinOptimWrapperConstructor multiplies the factors of every key a
# parameter name contains, so backbone norms, biases, q/v biases, cpb_mlp and logit_scale get
# lr x0.1 and no weight decay.
# fp32 by default; tools/train.py --amp trains in bf16 where the GPU supports it.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.02),
    constructor='SwinOptimWrapperConstructor',
    paramwise_cfg=dict(
        backbone=dict(lr_mult=0.1),
        norm=dict(decay_mult=0.0),
        bias=dict(decay_mult=0.0),
        cpb_mlp=dict(decay_mult=0.0),
        logit_scale=dict(decay_mult=0.0)))

default_hooks = dict(checkpoint=dict(interval=3, max_keep_ckpts=5), logger=dict(interval=100))
# 8 GPUs x 8 clips
auto_scale_lr = dict(enable=False, base_batch_size=64)
