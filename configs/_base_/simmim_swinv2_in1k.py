# SimMIM pre-training of SwinV2 on ImageNet-1K, run by mmpretrain (its SimMIM algorithm,
# linear decoder, head and mask transform) with swinv2_mm's masked SwinV2 and normalised
# target. The recipe is the official
# configs/simmim/simmim_pretrain__swinv2_base__img192_window12__800ep.yaml of
# microsoft/Swin-Transformer with its config.py defaults (the only public SwinV2 SimMIM
# recipe): 192 px, window 12, mask patch 32, mask ratio 0.6, target normalised over 47x47
# neighbourhoods, drop path 0.1, AdamW (0.9, 0.999) base lr 1e-4 per 512 images, weight
# decay 0.05 (none on norms, biases, log-CPB, logit scale and mask token), gradient clipping
# 5.0, 10 warm-up epochs from 5e-7 per 512, lr x0.1 at epoch 700 of 800. Size configs
# (simmim_swinv2_{s,b,l}_in1k_192.py) set the architecture.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs256_simmim_192.py',
    'mmpretrain::_base_/default_runtime.py',
    './swinv2_optim.py',
]
custom_imports = dict(imports=['swinv2_mm'], allow_failed_imports=False)
# swinv2_mm's runner also under the toolboxes' own tools/train.py and test.py: checkpoints are
# read without running code from them and written atomically (docs/trust.md)
runner_type = 'SafeCheckpointRunner'

image_size = 192
mask_patch_size = 32
model = dict(
    type='SimMIM',
    # 'SwinTransformerV2' would build mmpretrain's own class in this scope: swinv2_mm's
    # masked SwinV2 is registered as 'SimMIMSwinTransformerV2'
    backbone=dict(
        type='SimMIMSwinTransformerV2',
        arch='base',
        window_size=12,  # stage 3 (6x6 at 192 px) runs its whole map, as the official code
        drop_path_rate=0.1,
        out_indices=(3,)),
    neck=dict(type='SimMIMLinearDecoder', in_channels=128 * 2 ** 3, encoder_stride=32),
    head=dict(type='SimMIMHead', patch_size=4,
              loss=dict(type='NormalizedTargetL1Loss', window=47, channels=3)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=image_size, crop_ratio_range=(0.67, 1.0)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='SimMIMMaskGenerator', input_size=image_size, mask_patch_size=mask_patch_size,
         model_patch_size=4, mask_ratio=0.6),
    dict(type='PackInputs'),
]
# 16 GPUs x 128 images = 2048, the official batch. collate_fn is restated: inherited from
# another package's base config it carries a _scope_ key, which mmengine 0.10.7 passes on to
# the collate function.
train_dataloader = dict(batch_size=128, collate_fn=dict(_delete_=True, type='default_collate'),
                        dataset=dict(pipeline=train_pipeline))

# lr = 1e-4 per 512 images; auto_scale_lr keeps that rule for any GPU count and batch
base_lr = 1e-4
official_batch = 2048
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=base_lr * official_batch / 512, betas=(0.9, 0.999),
                   eps=1e-8, weight_decay=0.05),
    clip_grad=dict(max_norm=5.0),
    paramwise_cfg={{_base_.swinv2_paramwise_cfg}})
auto_scale_lr = dict(enable=True, base_batch_size=official_batch)

# Warm-up from 5e-7 per 512 (start factor 5e-7 / 1e-4), per iteration; then x0.1 at 700.
# The official minimum lr (5e-6 per 512) applies to its cosine schedule only: the
# multi-step schedule ends at 1e-5 per 512.
max_epochs, warmup_epochs = 800, 10
param_scheduler = [
    dict(type='LinearLR', start_factor=5e-7 / base_lr, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='MultiStepLR', milestones=[700], gamma=0.1, by_epoch=True,
         begin=warmup_epochs, end=max_epochs),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
default_hooks = dict(
    logger=dict(interval=100),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=3))
custom_hooks = [dict(type='SimMIMPicturesHook', num_images=4)]
