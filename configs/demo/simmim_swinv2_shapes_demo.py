# The embedded pre-training demo: the SimMIM recipe of simmim_swinv2_b_in1k_192.py on
# generated unlabelled images (swinv2_mm.datasets.shapes_images) with the segmentation
# demo's small SwinV2, 128 px crops and window 8, on 2 CPU cores. Its checkpoint feeds
# configs/demo/upernet_swinv2_shapes_simmim_ft.py. Pictures of original, masked input and
# reconstruction go to WORK_DIR/simmim_pictures/.
_base_ = '../_base_/simmim_swinv2_in1k.py'
custom_imports = dict(imports=['swinv2_mm', 'swinv2_mm.datasets.shapes_images'],
                      allow_failed_imports=False)

image_size = 128
mask_patch_size = 16  # 8x8 mask units on a 128 px crop (the recipe's 32 would leave 4x4)
embed_dims = 32
model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=embed_dims, depths=(2, 2, 2, 2),
                  num_heads=(1, 2, 4, 8)),
        window_size=8),
    neck=dict(in_channels=embed_dims * 2 ** 3))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=image_size, crop_ratio_range=(0.67, 1.0)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='SimMIMMaskGenerator', input_size=image_size, mask_patch_size=mask_patch_size,
         model_patch_size=4, mask_ratio=0.6),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    _delete_=True, batch_size=32, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ShapesImagesDataset', data_root=None,
                 generate=dict(num_train=2000, image_size=192, seed=0),
                 pipeline=train_pipeline))

# A short schedule needs a larger step than the recipe's 1e-4 per 512 images
# (3.1e-5 at batch 32 would barely move in 1500 iterations); the schedule's shape is kept.
max_iters, warmup_iters = 1500, 150
optim_wrapper = dict(optimizer=dict(lr=2e-3))
auto_scale_lr = dict(enable=False)
param_scheduler = [
    dict(type='LinearLR', start_factor=5e-7 / 1e-4, by_epoch=False, begin=0,
         end=warmup_iters),
    dict(type='MultiStepLR', milestones=[max_iters * 7 // 8], gamma=0.1, by_epoch=False,
         begin=warmup_iters, end=max_iters),
]
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(by_epoch=False, interval=500, max_keep_ckpts=1))
custom_hooks = [dict(type='SimMIMPicturesHook', num_images=6, interval=500)]
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
