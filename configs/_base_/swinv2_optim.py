# SwinV2 parameters that take no weight decay: norms, biases (q_bias / v_bias too), the
# log-CPB meta network, the attention temperature and SimMIM's mask token. Used as
# paramwise_cfg={{_base_.swinv2_paramwise_cfg}} by the task base configs.
swinv2_paramwise_cfg = dict(
    norm_decay_mult=0.0,
    bias_decay_mult=0.0,
    custom_keys={
        'cpb_mlp': dict(decay_mult=0.0),
        'logit_scale': dict(decay_mult=0.0),
        'q_bias': dict(decay_mult=0.0),
        'v_bias': dict(decay_mult=0.0),
        'mask_token': dict(decay_mult=0.0),
    })
