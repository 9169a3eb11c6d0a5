# The embedded default for video: the Kinetics recipe of video_swinv2_t_k400.py on generated
# clips of a camera panning so that the picture moves right, left, down or up
# (swinv2_mm.datasets.shapes_motion), with a small Video-SwinV2 trained from scratch on 2 CPU
# cores. Iteration-based, so that --resume continues exactly. No flip or crop augmentation:
# a flip turns "right" into "left", and the clips are already the input size.
_base_ = '../video_swinv2_t_k400.py'
custom_imports = dict(imports=['swinv2_mm', 'swinv2_mm.amp.mmaction_heads',
                               'swinv2_mm.datasets.shapes_motion'],
                      allow_failed_imports=False)

model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8)),
        window_size=(4, 8, 8),
        pretrained_window_sizes=0,
        drop_path_rate=0.0,
        init_cfg=None),
    # Trained from scratch, this small model leaves its loss plateau far sooner with inputs
    # scaled to [-0.5, 0.5] and a head without dropout whose weights start at std 0.05 (measured;
    # with ImageNet statistics, dropout 0.2 and std 0.01 it stayed at chance for 1000s of steps).
    data_preprocessor=dict(mean=[127.5, 127.5, 127.5], std=[255.0, 255.0, 255.0]),
    cls_head=dict(in_channels=256, num_classes=4, dropout_ratio=0.0, init_std=0.05))

image_size = 64
clips = dict(num_train=1000, num_val=100, num_frames=16, image_size=image_size, seed=0)
dataset = dict(type='ShapesMotionDataset', data_root=None, generate=clips)
train_pipeline = [
    dict(type='SampleFrames', clip_len=8, frame_interval=1, num_clips=1),
    dict(type='RawFrameDecode'),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
# two clips per video, scores averaged
test_pipeline = [
    dict(type='SampleFrames', clip_len=8, frame_interval=1, num_clips=2, test_mode=True),
    dict(type='RawFrameDecode'),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(dataset, _delete_=True, split='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(dataset, _delete_=True, split='val', pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='AccMetric', metric_options=dict(top_k_accuracy=dict(topk=(1,))))
test_evaluator = val_evaluator

max_iters = 2000
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=1000)
optim_wrapper = dict(optimizer=dict(lr=1e-3), clip_grad=dict(max_norm=10.0),
                     paramwise_cfg=dict(backbone=dict(lr_mult=1.0)))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', T_max=max_iters, eta_min=0, by_epoch=False, begin=0,
         end=max_iters),
]
default_hooks = dict(logger=dict(interval=50),
                     checkpoint=dict(by_epoch=False, interval=1000, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(enable=False, base_batch_size=8)

# the same initial weights, data order and augmentations in every run (mmengine draws a
# random seed otherwise)
randomness = dict(seed=0)
