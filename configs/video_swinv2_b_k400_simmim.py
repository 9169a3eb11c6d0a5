# Video-SwinV2-B, Kinetics-400 as video_swinv2_b_k400.py, starting from the official SimMIM
# zoo's 2D swinv2_base_22k_500k.pth (SimMIM on ImageNet-22K, 192 px, window 12), inflated to
# 3D on load, with layer-wise lr decay 0.9 on top of mmaction2's backbone lr x0.1 and
# no-decay rules (its SwinOptimWrapperConstructor builds the groups; its rules multiply).
# The paper gives no decay for Kinetics; 0.9 keeps the inflated patch embedding and early
# stages, the layers SimMIM trained best, moving least. Not measured on Kinetics.
_base_ = './video_swinv2_b_k400.py'

simmim = 'https://msravcghub.blob.core.windows.net/simmim-release/swinv2/pretrain/swinv2_base_22k_500k.pth?se=2049-12-31&sp=r&sv=2022-11-02&sr=b&sig=BmJvfC4vGYLTZAy85hI5oNh4GEeQpc2pDaqSLR0VwEE%3D'
model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=simmim)))
optim_wrapper = dict(
    constructor='SwinV2LayerDecayConstructor',
    groups_constructor='SwinOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.9))
