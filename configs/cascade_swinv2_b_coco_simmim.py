# Cascade Mask R-CNN, SwinV2-B, COCO as cascade_swinv2_b_coco.py, starting from the official
# SimMIM zoo's swinv2_base_22k_500k.pth (SimMIM on ImageNet-22K, 192 px, window 12), with
# layer-wise lr decay 0.9. The paper gives no decay for COCO (its detectors start from
# supervised weights); SimMIM weights are fine-tuned with one everywhere they are published
# (0.75 for ImageNet-1K, 0.95 for ADE20K). 0.9 sits between them for a 3x schedule whose
# FPN and heads start from scratch; it is a starting point, not measured on COCO.
_base_ = './cascade_swinv2_b_coco.py'

simmim = 'https://msravcghub.blob.core.windows.net/simmim-release/swinv2/pretrain/swinv2_base_22k_500k.pth?se=2049-12-31&sp=r&sv=2022-11-02&sr=b&sig=BmJvfC4vGYLTZAy85hI5oNh4GEeQpc2pDaqSLR0VwEE%3D'
model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=simmim)))
optim_wrapper = dict(
    constructor='SwinV2LayerDecayConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.9))
