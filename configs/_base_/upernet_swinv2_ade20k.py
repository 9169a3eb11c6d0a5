# UperNet + SwinV2 on ADE20K: the Swin segmentation recipe (REFERENCE.md section 4) on top
# of mmseg's own base configs. Size-specific configs set the backbone and its weights.
_base_ = [
    'mmseg::_base_/models/upernet_swin.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
    './swinv2_optim.py',
]
custom_imports = dict(imports=['swinv2_mm'], allow_failed_imports=False)
# swinv2_mm's runner also under the toolboxes' own tools/train.py and test.py: checkpoints are
# read without running code from them and written atomically (docs/trust.md)
runner_type = 'SafeCheckpointRunner'

crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True,
        type='SwinTransformerV2',
        arch='tiny',
        window_size=16,
        pretrained_window_sizes=[16, 16, 16, 8],
        drop_path_rate=0.3,
        out_indices=(0, 1, 2, 3),
        with_cp=False),
    decode_head=dict(in_channels=[96, 192, 384, 768], num_classes=150),
    # auxiliary FCN head on stage 2 (stages numbered 0..3), loss weight 0.4
    auxiliary_head=dict(in_channels=384, in_index=2, num_classes=150,
                        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                                         loss_weight=0.4)))

# AdamW lr 6e-5, weight decay 0.01 (none on norms, biases, cpb_mlp, logit_scale), linear
# warm-up over 1500 iterations, then poly decay to 160k; 16 images per step (8 GPUs x 2)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg={{_base_.swinv2_paramwise_cfg}})
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=160000, by_epoch=False),
]
train_dataloader = dict(batch_size=2)
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
auto_scale_lr = dict(enable=False, base_batch_size=16)
