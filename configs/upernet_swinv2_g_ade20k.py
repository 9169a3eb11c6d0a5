# UperNet, SwinV2-G (3B) backbone, ADE20K, the paper's G setting: 640x640 crops, window 40,
# AdamW lr 4e-5, weight decay 0.05, 80k iterations at batch 32, drop path 0.4 (59.1 mIoU in
# the paper); activation checkpointing, ZeRO-1 optimizer sharding on more than one process.
# Batch 32 is 1 image per GPU on 32 GPUs as configured; on 8 GPUs set
# train_dataloader.batch_size=4 (or keep 1 and pass --auto-scale-lr, which scales lr to 8/32).
# The warm-up (1500 iterations) is the 512 px recipe's; the paper gives none for G.
# No SwinV2-G weights are public: point init_cfg at your own (any layout swinv2_mm reads) with
#   --cfg-options model.backbone.init_cfg.type=Pretrained model.backbone.init_cfg.checkpoint=PATH
# The paper's test-time setting (896 px, window 56, 59.3 mIoU): upernet_swinv2_g_ade20k_896_test.py.
_base_ = './_base_/upernet_swinv2_ade20k.py'

crop_size = (640, 640)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch='giant',
        window_size=40,
        pretrained_window_sizes=0,
        drop_path_rate=0.4,
        with_cp=True,
        attn_chunk_size=16),  # sequential attention: 16 windows at a time
    decode_head=dict(in_channels=[512, 1024, 2048, 4096]),
    auxiliary_head=dict(in_channels=2048))

# ZeRO-1: on more than one process each rank keeps 1/N of AdamW's state (mmengine's
# ZeroRedundancyOptimizer); a single process trains with the plain optimizer
# FSDP (ZeRO-3: parameters and gradients sharded too, one unit per SwinV2 block) instead:
#   --cfg-options model_wrapper_cfg.type=MMFullyShard (see configs/_base_/fsdp.py; the
#   tools then replace this constructor by its base_constructor)
optim_wrapper = dict(constructor='ZeroWhenDistributedConstructor',
                     base_constructor='DefaultOptimWrapperConstructor',
                     optimizer=dict(lr=4e-5, weight_decay=0.05))
max_iters = 80000
train_cfg = dict(max_iters=max_iters, val_interval=8000)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=max_iters, by_epoch=False),
]
default_hooks = dict(checkpoint=dict(interval=8000))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(2560, 640), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2560, 640), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=1, dataset=dict(pipeline=train_pipeline))
auto_scale_lr = dict(base_batch_size=32)
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
