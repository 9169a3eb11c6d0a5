# UperNet, SwinV2-B, ADE20K as upernet_swinv2_b_ade20k.py, starting from SimMIM weights: the
# official SimMIM zoo's swinv2_base_22k_500k.pth (SimMIM on ImageNet-22K, 500k iterations at
# batch 2048, 192 px, window 12; MODELHUB.md of microsoft/Swin-Transformer), with layer-wise
# lr decay 0.95, the paper's ADE20K value (SwinV2 appendix A1.2). The zoo file stores the
# log-CPB network as rpe_mlp: the converter renames it and drops the mask token and decoder.
_base_ = './upernet_swinv2_b_ade20k.py'

simmim = 'https://msravcghub.blob.core.windows.net/simmim-release/swinv2/pretrain/swinv2_base_22k_500k.pth?se=2049-12-31&sp=r&sv=2022-11-02&sr=b&sig=BmJvfC4vGYLTZAy85hI5oNh4GEeQpc2pDaqSLR0VwEE%3D'
model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=simmim)))
optim_wrapper = dict(
    constructor='SwinV2LayerDecayConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.95))
