# The segmentation demo fine-tuned from the SimMIM demo's weights
# (configs/demo/simmim_swinv2_shapes_demo.py: 128 px, window 8) with layer-wise lr decay
# 0.95, the paper's ADE20K value. The architecture is read from the checkpoint
# (arch='auto'); a swinv2_mm checkpoint keeps no window buffers, so the windows its log-CPB
# was trained at are set here: 8 in stages 0-2 and 4 in stage 3 (a 4x4 map at 128 px).
#   python tools/train.py configs/demo/simmim_swinv2_shapes_demo.py
#   python tools/train.py configs/demo/upernet_swinv2_shapes_simmim_ft.py
# (another checkpoint: --cfg-options model.backbone.init_cfg.checkpoint=PATH)
_base_ = './upernet_swinv2_shapes_demo.py'

model = dict(
    backbone=dict(
        arch='auto',
        window_size=8,
        pretrained_window_sizes=[8, 8, 8, 4],
        init_cfg=dict(_delete_=True, type='Pretrained',
                      checkpoint='work_dirs/simmim_swinv2_shapes_demo/iter_1500.pth')))
optim_wrapper = dict(
    constructor='SwinV2LayerDecayConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.95))
