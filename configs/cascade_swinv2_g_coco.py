# Cascade Mask R-CNN, SwinV2-G (3B) backbone, COCO, following the paper: 1536 px training,
# window 32, activation checkpointing, ZeRO-1 optimizer sharding on more than one process.
# No SwinV2-G weights are public: point init_cfg at your own (any layout swinv2_mm reads) with
#   --cfg-options model.backbone.init_cfg.type=Pretrained model.backbone.init_cfg.checkpoint=PATH
#   model.backbone.pretrained_window_sizes=[W,W,W,W/2]
_base_ = './_base_/cascade_swinv2_coco.py'

model = dict(
    backbone=dict(
        arch='giant',
        window_size=32,
        pretrained_window_sizes=0,
        drop_path_rate=0.3,
        with_cp=True,
        attn_chunk_size=16),  # sequential attention: 16 windows at a time
    neck=dict(in_channels=[512, 1024, 2048, 4096]))

# 1536 px: the 800 px recipe's scales times 1.92
train_scales = [(s, 2560) for s in range(1024, 1537, 64)]

# ZeRO-1: on more than one process each rank keeps 1/N of AdamW's state (mmengine's
# ZeroRedundancyOptimizer); a single process trains with the plain optimizer
# FSDP (ZeRO-3: parameters and gradients sharded too, one unit per SwinV2 block) instead:
#   --cfg-options model_wrapper_cfg.type=MMFullyShard (see configs/_base_/fsdp.py; the
#   tools then replace this constructor by its base_constructor)
optim_wrapper = dict(constructor='ZeroWhenDistributedConstructor',
                     base_constructor='DefaultOptimWrapperConstructor')

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomChoice', transforms=[
        [dict(type='RandomChoiceResize', scales=train_scales, keep_ratio=True)],
        [dict(type='RandomChoiceResize', scales=[(768, 2560), (960, 2560), (1152, 2560)],
              keep_ratio=True),
         dict(type='RandomCrop', crop_type='absolute_range', crop_size=(737, 1152),
              allow_negative_crop=True),
         dict(type='RandomChoiceResize', scales=train_scales, keep_ratio=True)]]),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale=(2560, 1536), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(batch_size=1, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
