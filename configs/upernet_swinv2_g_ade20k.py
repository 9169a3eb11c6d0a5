# UperNet, SwinV2-G (3B) backbone, ADE20K, following the paper: 640x640 crops, window 40,
# activation checkpointing, ZeRO-1 optimizer sharding on more than one process.
# No SwinV2-G weights are public: point init_cfg at your own (any layout swinv2_mm reads) with
#   --cfg-options model.backbone.init_cfg.type=Pretrained model.backbone.init_cfg.checkpoint=PATH
# The paper's test-time setting (896 px, window 56, +0.2 mIoU):
#   python tools/test.py configs/upernet_swinv2_g_ade20k.py CKPT --cfg-options
#     model.backbone.window_size=56 "test_dataloader.dataset.pipeline.1.scale=(3584,896)"
_base_ = './_base_/upernet_swinv2_ade20k.py'

crop_size = (640, 640)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch='giant',
        window_size=40,
        pretrained_window_sizes=0,
        drop_path_rate=0.3,
        with_cp=True,
        attn_chunk_size=16),  # sequential attention: 16 windows at a time
    decode_head=dict(in_channels=[512, 1024, 2048, 4096]),
    auxiliary_head=dict(in_channels=2048))

# ZeRO-1: on more than one process each rank keeps 1/N of AdamW's state (mmengine's
# ZeroRedundancyOptimizer); a single process trains with the plain optimizer
optim_wrapper = dict(constructor='ZeroWhenDistributedConstructor',
                     base_constructor='DefaultOptimWrapperConstructor')

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
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
