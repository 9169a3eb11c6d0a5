# SwinV2-B SimMIM pre-training on ImageNet-1K, 192 px, window 12, 800 epochs: the official
# simmim_pretrain__swinv2_base__img192_window12__800ep.yaml (configs/_base_/simmim_swinv2_in1k.py).
#   python tools/train.py configs/simmim_swinv2_b_in1k_192.py          # ImageNet in data/imagenet
# The checkpoint fine-tunes downstream with init_cfg=dict(type='Pretrained', checkpoint=...)
# (README: Pre-training with SimMIM).
_base_ = '_base_/simmim_swinv2_in1k.py'
