# HTC (with its semantic branch) on the generated shapes (swinv2_mm.datasets.shapes_coco, whose
# stuffthingmaps/ hold the semantic maps): the HTC++ recipe's model and soft-NMS with the
# cascade demo's small SwinV2, slim heads, data, augmentation and schedule, so that it trains
# on 2 CPU cores and compares with that demo. Iteration-based, so that --resume continues exactly.
_base_ = ['../_base_/htc_swinv2_coco.py', '../_base_/swinv2_optim.py']
custom_imports = dict(imports=['swinv2_mm', 'swinv2_mm.amp.mmdet_heads',
                               'swinv2_mm.datasets.shapes_coco'],
                      allow_failed_imports=False)

num_classes = 4
channels = 64
htc_target_stds = [[0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067]]
slim_roi_extractor = dict(out_channels=channels, roi_layer=dict(sampling_ratio=2))

model = dict(
    data_preprocessor=dict(batch_augments=None),  # no large-scale jitter here
    backbone=dict(
        arch=dict(embed_dims=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8)),
        window_size=8,
        pretrained_window_sizes=0,
        drop_path_rate=0.1),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=channels),
    rpn_head=dict(in_channels=channels, feat_channels=channels),
    roi_head=dict(
        bbox_roi_extractor=slim_roi_extractor,
        mask_roi_extractor=slim_roi_extractor,
        semantic_roi_extractor=slim_roi_extractor,
        bbox_head=[
            dict(type='AmpShared2FCBBoxHead', in_channels=channels, fc_out_channels=256,
                 roi_feat_size=7, num_classes=num_classes, reg_class_agnostic=True,
                 bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4,
                                 target_stds=stds),
                 loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                 loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))
            for stds in htc_target_stds],
        mask_head=[
            dict(type='HTCMaskHead', with_conv_res=stage > 0, num_convs=4, in_channels=channels,
                 conv_out_channels=channels, num_classes=num_classes,
                 loss_mask=dict(type='CrossEntropyLoss', use_mask=True, loss_weight=1.0))
            for stage in range(3)],
        # background and the four classes
        semantic_head=dict(in_channels=channels, conv_out_channels=channels,
                           num_classes=num_classes + 1)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=300),
        rcnn=[dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=iou, neg_iou_thr=iou,
                                 min_pos_iou=iou, ignore_iof_thr=-1),
                   sampler=dict(type='RandomSampler', num=64, pos_fraction=0.25, neg_pos_ub=-1,
                                add_gt_as_proposals=True),
                   mask_size=28, pos_weight=-1, debug=False)
              for iou in (0.5, 0.6, 0.7)]),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300), rcnn=dict(max_per_img=20)))

image_size = 192
shapes = dict(num_train=400, num_val=100, image_size=image_size, seed=0)
dataset = dict(type='ShapesCocoDataset', data_root=None, generate=shapes)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='RandomResize', scale=(image_size, image_size), ratio_range=(0.8, 1.25),
         keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(dataset, _delete_=True, ann_file='annotations/instances_train.json',
                 data_prefix=dict(img='train/', seg='stuffthingmaps/train/'),
                 filter_cfg=dict(filter_empty_gt=True), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(dataset, _delete_=True, ann_file='annotations/instances_val.json',
                 data_prefix=dict(img='val/'), test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='ShapesCocoMetric', data_root=None, generate=shapes,
                     metric=['bbox', 'segm'])
test_evaluator = val_evaluator

max_iters = 600
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters, eta_min=1e-5),
]
# trained from scratch: the backbone at the full lr (x0.1 is for pre-trained weights), with
# SwinV2's no-decay rules and the cascade demo's gradient clipping
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=4e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg={{_base_.swinv2_paramwise_cfg}},
    clip_grad=dict(max_norm=10.0))
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(by_epoch=False, interval=200, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)

# the same initial weights, data order and augmentations in every run (mmengine draws a
# random seed otherwise)
randomness = dict(seed=0)
