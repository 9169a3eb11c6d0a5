# HTC++ + SwinV2 on COCO: mmdet's Hybrid Task Cascade with its semantic branch (COCO-stuff
# maps) and the SwinV2 paper's system-level recipe (REFERENCE.md section 6): 1536 px
# large-scale jitter, 3x schedule, AdamW lr 4e-4 at batch 64 with the backbone at x0.1,
# soft-NMS, InstaBoost where installed. Size-specific configs set the backbone and its weights.
_base_ = 'mmdet::htc/htc_r50_fpn_1x_coco.py'
# swinv2_mm.amp.mmdet_heads: float32 islands under --amp for the RPN, RoI extractors and box
# heads (HTC's mask and semantic heads are mmdet's own); swinv2_mm.datasets.instaboost:
# OptionalInstaBoost
custom_imports = dict(imports=['swinv2_mm', 'swinv2_mm.amp.mmdet_heads',
                               'swinv2_mm.datasets.instaboost'],
                      allow_failed_imports=False)
# swinv2_mm's runner also under the toolboxes' own tools/train.py and test.py: checkpoints are
# read without running code from them and written atomically (docs/trust.md)
runner_type = 'SafeCheckpointRunner'

image_size = (1536, 1536)
htc_target_stds = [[0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067]]

model = dict(
    # large-scale jitter pads every training batch to the crop size, as mmdet's LSJ configs
    data_preprocessor=dict(batch_augments=[
        dict(type='BatchFixedSizePad', size=image_size, pad_mask=True, pad_seg=True)]),
    backbone=dict(
        _delete_=True,
        type='SwinTransformerV2',
        window_size=32,
        out_indices=(0, 1, 2, 3),
        with_cp=False),
    rpn_head=dict(type='AmpRPNHead'),
    roi_head=dict(
        bbox_roi_extractor=dict(type='AmpSingleRoIExtractor'),
        mask_roi_extractor=dict(type='AmpSingleRoIExtractor'),
        semantic_roi_extractor=dict(type='AmpSingleRoIExtractor'),
        bbox_head=[
            dict(type='AmpShared2FCBBoxHead', in_channels=256, fc_out_channels=1024,
                 roi_feat_size=7, num_classes=80, reg_class_agnostic=True,
                 bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4,
                                 target_stds=stds),
                 loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                 loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))
            for stds in htc_target_stds]),
    # padded batches put anchors outside the image: keep them (mmdet's LSJ configs do too)
    train_cfg=dict(rpn=dict(allowed_border=-1)),
    test_cfg=dict(rcnn=dict(nms=dict(type='soft_nms', iou_threshold=0.5))))

# large-scale jitter: resize by 0.1-2.0 of 1536 px, crop 1536 x 1536 (then the fixed-size pad)
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='OptionalInstaBoost'),  # off unless `pip install instaboostfast`
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.1, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=image_size,
         recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
# the paper tests SwinV2-L at 1100 px (longer side here)
test_scale = (1100, 1100)
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale=test_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
# 64 images per step (e.g. 64 GPUs x 1); --auto-scale-lr scales lr 4e-4 from there
train_dataloader = dict(batch_size=1, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
auto_scale_lr = dict(enable=False, base_batch_size=64)

# 3x schedule: 36 epochs, steps at 27 and 33, 1000-iteration linear warm-up
max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33],
         gamma=0.1),
]

# AdamW, the backbone at x0.1 of the lr. mmengine applies only the longest custom key found in
# a parameter's name (and then neither norm_decay_mult nor bias_decay_mult), so SwinV2's
# no-decay parameters (swinv2_optim.py: norms, biases, q_bias / v_bias, the CPB meta network,
# the attention temperature, SimMIM's mask token) each have a key, longer than 'backbone',
# that names backbone parameters only and carries the backbone's lr_mult too; neck and head
# norms and biases take norm_decay_mult / bias_decay_mult.
backbone_lr_mult = 0.1
backbone_no_decay = [
    'backbone.norm', 'patch_embed.norm', 'downsample.norm', 'norm1.weight', 'norm1.bias',
    'norm2.weight', 'norm2.bias', 'norm3.weight', 'norm3.bias',  # norm3: giant's extra norms
    'patch_embed.proj.bias', 'attn.proj.bias', 'mlp.fc1.bias', 'mlp.fc2.bias', 'attn.q_bias',
    'attn.v_bias', 'attn.cpb_mlp', 'attn.logit_scale', 'backbone.mask_token']
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(_delete_=True, type='AdamW', lr=4e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys=dict(
            {key: dict(lr_mult=backbone_lr_mult, decay_mult=0.0) for key in backbone_no_decay},
            backbone=dict(lr_mult=backbone_lr_mult))))
