# Cascade Mask R-CNN + SwinV2 on COCO: the Swin detection recipe (REFERENCE.md section 4)
# on top of mmdet's own base configs. Size-specific configs set the backbone and its weights.
_base_ = [
    'mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
    './swinv2_optim.py',
]
# swinv2_mm.amp.mmdet_heads registers the Amp* heads: mmdet's, with RoIAlign, box decoding, NMS
# and losses as float32 islands under --amp (README: Mixed precision)
custom_imports = dict(imports=['swinv2_mm', 'swinv2_mm.amp.mmdet_heads'],
                      allow_failed_imports=False)
# swinv2_mm's runner also under the toolboxes' own tools/train.py and test.py: checkpoints are
# read without running code from them and written atomically (docs/trust.md)
runner_type = 'SafeCheckpointRunner'

head_norm_cfg = dict(type='SyncBN', requires_grad=True)
giou_bbox_head = dict(
    type='AmpConvFCBBoxHead', num_shared_convs=4, num_shared_fcs=1, in_channels=256,
    conv_out_channels=256, fc_out_channels=1024, roi_feat_size=7, num_classes=80,
    reg_class_agnostic=False, reg_decoded_bbox=True, norm_cfg=head_norm_cfg,
    loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
    loss_bbox=dict(type='GIoULoss', loss_weight=10.0))
cascade_target_stds = [[0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067]]

model = dict(
    backbone=dict(
        _delete_=True,
        type='SwinTransformerV2',
        arch='tiny',
        window_size=16,
        pretrained_window_sizes=[16, 16, 16, 8],
        drop_path_rate=0.2,
        out_indices=(0, 1, 2, 3),
        with_cp=False),
    neck=dict(in_channels=[96, 192, 384, 768]),
    rpn_head=dict(type='AmpRPNHead'),
    roi_head=dict(
        bbox_roi_extractor=dict(type='AmpSingleRoIExtractor'),
        mask_roi_extractor=dict(type='AmpSingleRoIExtractor'),
        mask_head=dict(type='AmpFCNMaskHead'),
        bbox_head=[
            dict(giou_bbox_head, bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                                                 target_means=[0.0] * 4, target_stds=stds))
            for stds in cascade_target_stds]))

# multi-scale training with random crop (the Swin / DETR augmentation)
train_scales = [(s, 1333) for s in range(480, 801, 32)]
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomChoice', transforms=[
        [dict(type='RandomChoiceResize', scales=train_scales, keep_ratio=True)],
        [dict(type='RandomChoiceResize', scales=[(400, 1333), (500, 1333), (600, 1333)],
              keep_ratio=True),
         dict(type='RandomCrop', crop_type='absolute_range', crop_size=(384, 600),
              allow_negative_crop=True),
         dict(type='RandomChoiceResize', scales=train_scales, keep_ratio=True)]]),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# 3x schedule: 36 epochs, steps at 27 and 33, 1000-iteration linear warm-up
max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33],
         gamma=0.1),
]

# AdamW without weight decay on norms, biases (q_bias / v_bias too), the CPB meta network
# and the attention temperature (ZeRO-1 is a switch: see the giant config)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg={{_base_.swinv2_paramwise_cfg}})
# 16 images per step (8 GPUs x 2), as mmdet's configs; --auto-scale-lr scales from it
auto_scale_lr = dict(enable=False, base_batch_size=16)
