# The embedded default: the COCO recipe of cascade_swinv2_t_coco.py on a generated
# shapes dataset (swinv2_mm.datasets.shapes_coco), with a small SwinV2 and slim RoI heads so that it
# trains on 2 CPU cores. Iteration-based, so that --resume continues exactly.
_base_ = '../cascade_swinv2_t_coco.py'
custom_imports = dict(imports=['swinv2_mm', 'swinv2_mm.amp.mmdet_heads',
                               'swinv2_mm.datasets.shapes_coco'],
                      allow_failed_imports=False)

num_classes = 4
channels = 64
head_norm_cfg = {{_base_.head_norm_cfg}}  # SyncBN as in the recipe: BN in one process or on CPU
cascade_target_stds = [[0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067]]
demo_bbox_head = dict(
    type='AmpConvFCBBoxHead', num_shared_convs=4, num_shared_fcs=1, in_channels=channels,
    conv_out_channels=channels, fc_out_channels=256, roi_feat_size=7, num_classes=num_classes,
    reg_class_agnostic=False, reg_decoded_bbox=True, norm_cfg=head_norm_cfg,
    loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
    loss_bbox=dict(type='GIoULoss', loss_weight=10.0))

model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8)),
        window_size=8,
        pretrained_window_sizes=0,
        drop_path_rate=0.1,
        init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=channels),
    rpn_head=dict(in_channels=channels, feat_channels=channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels, roi_layer=dict(sampling_ratio=2)),
        bbox_head=[
            dict(demo_bbox_head, bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4,
                                                 target_stds=stds))
            for stds in cascade_target_stds],
        mask_roi_extractor=dict(out_channels=channels, roi_layer=dict(sampling_ratio=2)),
        mask_head=dict(in_channels=channels, conv_out_channels=channels, num_classes=num_classes)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=300),
        rcnn=[dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=iou, neg_iou_thr=iou,
                                 min_pos_iou=iou, match_low_quality=False, ignore_iof_thr=-1),
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
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
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
                 data_prefix=dict(img='train/'), filter_cfg=dict(filter_empty_gt=True),
                 pipeline=train_pipeline))
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
optim_wrapper = dict(optimizer=dict(lr=4e-4), clip_grad=dict(max_norm=10.0))
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(by_epoch=False, interval=200, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)

# the same initial weights, data order and augmentations in every run (mmengine draws a
# random seed otherwise)
randomness = dict(seed=0)
