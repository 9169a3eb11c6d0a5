"""Layer-wise learning-rate decay for fine-tuning a SwinV2 backbone in any OpenMMLab model."""
import copy
import re
from numbers import Real
from typing import Dict, List, Optional, Sequence, Tuple

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS

from ..models import ConfigError, SwinV2Backbone

NAME = 'SwinV2LayerDecayConstructor'
# the paramwise_cfg keys DefaultOptimWrapperConstructor reads (mmengine 0.10)
PARAMWISE_KEYS = {'custom_keys', 'bias_lr_mult', 'bias_decay_mult', 'norm_decay_mult',
                  'dwconv_decay_mult', 'flat_decay_mult', 'dcn_offset_lr_mult',
                  'bypass_duplicate'}
STAGE_PARAM = re.compile(r'stages\.(\d+)\.(?:blocks\.(\d+)|downsample)\.')


def check_layer_decay_rate(rate) -> float:
    """``paramwise_cfg.layer_decay_rate``, which must be a number in (0, 1]."""
    if not isinstance(rate, Real) or isinstance(rate, bool) or not 0 < rate <= 1:
        raise ConfigError(f'{NAME}: paramwise_cfg.layer_decay_rate must be a number in (0, 1], '
                          f'got {rate!r}; e.g. paramwise_cfg=dict(layer_decay_rate=0.9, ...) '
                          f'(1 disables the decay)')
    return float(rate)


def check_paramwise_keys(paramwise_cfg: dict) -> None:
    """Refuses keys that DefaultOptimWrapperConstructor would silently ignore, such as the
    per-name rules of mmaction2's SwinOptimWrapperConstructor (``backbone=dict(lr_mult=...)``)."""
    unknown = sorted(set(paramwise_cfg) - PARAMWISE_KEYS)
    if unknown:
        key = unknown[0]
        raise ConfigError(f'{NAME}: paramwise_cfg has unknown keys {unknown}; with mmengine\'s '
                          f'DefaultOptimWrapperConstructor it reads that constructor\'s keys '
                          f'plus layer_decay_rate. Put rules per parameter name under '
                          f'custom_keys (e.g. custom_keys={{{key!r}: {paramwise_cfg[key]!r}}}), or '
                          f'set groups_constructor=\'SwinOptimWrapperConstructor\' for '
                          f'mmaction2\'s multiplying rules')


def find_swinv2_backbone(model: nn.Module) -> Tuple[str, SwinV2Backbone]:
    """The model's swinv2_mm backbone and the prefix of its parameter names: ``model`` itself
    or its ``backbone`` (detector, segmentor, recognizer)."""
    if isinstance(model, SwinV2Backbone):
        return '', model
    if isinstance(getattr(model, 'backbone', None), SwinV2Backbone):
        return 'backbone.', model.backbone
    raise ConfigError(f'{NAME}: {type(model).__name__} has no swinv2_mm SwinV2 backbone; it '
                      f'expects a model whose `backbone` is a SwinTransformerV2 or '
                      f'VideoSwinTransformerV2 (or such a backbone itself). Use '
                      f'DefaultOptimWrapperConstructor for other models')


def layer_id(name: str, depths: Sequence[int]) -> int:
    """The layer of a backbone parameter name as SwinV2/SimMIM fine-tuning numbers them:
    0 for the patch embedding and mask token, ``sum(depths[:i]) + j + 1`` for block j of
    stage i, the id of the stage's last block for the patch merging after it, and
    ``sum(depths) + 1`` for everything else (output norms)."""
    if name == 'mask_token' or name.startswith('patch_embed.'):
        return 0
    match = STAGE_PARAM.match(name)
    if match is None:
        return sum(depths) + 1
    stage = int(match[1])
    if match[2] is None:  # downsample
        return sum(depths[:stage + 1])
    return sum(depths[:stage]) + int(match[2]) + 1


def layer_ids(model: nn.Module) -> Tuple[Dict[int, int], int]:
    """``id(parameter) -> layer id`` for every parameter of ``model``, and the number of
    layers; parameters outside the SwinV2 backbone (necks, heads) are in the last layer."""
    prefix, backbone = find_swinv2_backbone(model)
    depths = [len(stage.blocks) for stage in backbone.stages]
    num_layers = sum(depths) + 2
    ids = {}
    for name, param in model.named_parameters():
        inside = name.startswith(prefix)
        ids[id(param)] = layer_id(name[len(prefix):], depths) if inside else num_layers - 1
    return ids, num_layers


class SwinV2LayerDecayConstructor:
    """Layer-wise lr decay, the way SwinV2 and SimMIM fine-tune: every parameter group that
    ``groups_constructor`` builds (by default mmengine's ``DefaultOptimWrapperConstructor``,
    whose ``norm_decay_mult``, ``custom_keys``, ... all apply) has its lr multiplied by
    ``layer_decay_rate ** (num_layers - 1 - layer_id)``: the patch embedding learns slowest,
    necks and heads at the full lr. Each group carries its ``layer_id`` and ``lr_scale``;
    mmengine's schedulers scale every group alike, so the ratios hold.

    Works on any model whose ``backbone`` is a swinv2_mm SwinV2 backbone (mmdet, mmseg,
    mmaction2) and on the backbone itself. mmaction2's ``SwinOptimWrapperConstructor``, whose
    rules multiply (``backbone=dict(lr_mult=0.1)`` and the no-decay rules together), can
    build the groups; and the whole nests as ``base_constructor`` of
    ``ZeroWhenDistributedConstructor``::

        optim_wrapper = dict(constructor='SwinV2LayerDecayConstructor',
                             groups_constructor='SwinOptimWrapperConstructor',  # optional
                             optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
                             paramwise_cfg=dict(layer_decay_rate=0.9, ...))
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None):
        cfg = copy.deepcopy(dict(optim_wrapper_cfg))
        groups = cfg.pop('groups_constructor', 'DefaultOptimWrapperConstructor')
        paramwise_cfg = dict(paramwise_cfg or {})
        self.layer_decay_rate = check_layer_decay_rate(paramwise_cfg.pop('layer_decay_rate',
                                                                         None))
        if groups == 'DefaultOptimWrapperConstructor':
            check_paramwise_keys(paramwise_cfg)
            # an empty paramwise_cfg would put every parameter in one group
            paramwise_cfg.setdefault('custom_keys', {})
        self.base_lr = cfg.get('optimizer', {}).get('lr')
        if not isinstance(self.base_lr, Real):
            raise ConfigError(f'{NAME}: optimizer.lr must be set (got {self.base_lr!r}): the '
                              f'layer-wise decay scales it, e.g. optimizer=dict(type=..., lr=1e-4)')
        self.groups = OPTIM_WRAPPER_CONSTRUCTORS.build(
            dict(type=groups, optim_wrapper_cfg=cfg, paramwise_cfg=paramwise_cfg))

    def __call__(self, model: nn.Module):
        """The optimizer wrapper of ``groups_constructor`` with each group's lr scaled by its
        layer's factor; a model without a SwinV2 backbone is refused before anything is built."""
        ids, num_layers = layer_ids(getattr(model, 'module', model))  # as mmengine unwraps
        wrapper = self.groups(model)
        self.scale_by_layer(wrapper.optimizer.param_groups, ids, num_layers)
        self.log_summary(num_layers)
        return wrapper

    def scale_by_layer(self, groups: List[dict], ids: Dict[int, int], num_layers: int) -> None:
        """Multiplies each group's lr (its ``lr_mult`` already applied) by its layer factor
        and records ``layer_id`` and ``lr_scale`` in the group."""
        for group in groups:
            layers = {ids[id(p)] for p in group['params']}
            if len(layers) > 1:
                raise ConfigError(f'{NAME}: the groups constructor put parameters of layers '
                                  f'{sorted(layers)} in one group; use one that builds a group '
                                  f'per parameter (mmengine\'s default, mmaction2\'s '
                                  f'SwinOptimWrapperConstructor)')
            layer = layers.pop()
            scale = self.layer_decay_rate ** (num_layers - 1 - layer)
            group.update(lr=group['lr'] * scale, layer_id=layer, lr_scale=scale)

    def log_summary(self, num_layers: int) -> None:
        """One line: the layers, the rate and the lr of the first and the last layer."""
        first = self.base_lr * self.layer_decay_rate ** (num_layers - 1)
        print_log(f'{NAME}: {num_layers} layers, layer_decay_rate={self.layer_decay_rate}: '
                  f'lr {first:.3g} at layer 0 (patch embedding) to {self.base_lr:.3g} at layer '
                  f'{num_layers - 1} (output norms, neck, heads), times any lr_mult',
                  logger='current')
