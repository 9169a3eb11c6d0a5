"""ZeRO stage-1 as a config switch, and how much optimizer state each rank holds."""
import copy
from typing import List

import torch
from mmengine.dist import all_gather_object, get_world_size
from mmengine.logging import print_log
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch.distributed.tensor import DTensor


class ZeroWhenDistributedConstructor:
    """Builds the optimizer with ``base_constructor`` (any registered constructor, by default
    mmengine's ``DefaultOptimWrapperConstructor``) and, when training runs on more than one
    process, shards its state across the ranks with mmengine's ``ZeroRedundancyOptimizer``
    (ZeRO-1, as the paper trains SwinV2-G). Param-wise settings apply either way.

    Switch it on in a config::

        optim_wrapper = dict(constructor='ZeroWhenDistributedConstructor',
                             base_constructor='DefaultOptimWrapperConstructor', ...)
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg=None):
        cfg = copy.deepcopy(dict(optim_wrapper_cfg))
        base = cfg.pop('base_constructor', 'DefaultOptimWrapperConstructor')
        world_size = get_world_size()
        optimizer = dict(cfg['optimizer'])
        if world_size > 1:
            optimizer['optimizer_type'] = optimizer.pop('type')
            optimizer['type'] = 'ZeroRedundancyOptimizer'
            print_log(f'ZeRO-1: {optimizer["optimizer_type"]} state is sharded across '
                      f'{world_size} ranks (mmengine ZeroRedundancyOptimizer)', logger='current')
        else:
            print_log(f'single process: plain {optimizer["type"]} optimizer, no ZeRO sharding',
                      logger='current')
        cfg['optimizer'] = optimizer
        self.base = OPTIM_WRAPPER_CONSTRUCTORS.build(
            dict(type=base, optim_wrapper_cfg=cfg, paramwise_cfg=paramwise_cfg))

    def __call__(self, model):
        return self.base(model)


def local_optimizer_state_bytes(optimizer) -> int:
    """Bytes of optimizer state (e.g. AdamW's two moments) held by this process; for a
    ``ZeroRedundancyOptimizer`` that is this rank's shard, under FSDP each DTensor's local
    shard."""
    inner = getattr(optimizer, 'optim', optimizer)  # ZeroRedundancyOptimizer keeps its shard here
    local = [value.to_local() if isinstance(value, DTensor) else value
             for state in inner.state.values() for value in state.values()]
    return sum(value.numel() * value.element_size() for value in local if torch.is_tensor(value))


def optimizer_state_bytes_per_rank(optimizer) -> List[int]:
    """Every rank's local optimizer-state bytes, in rank order (a collective when distributed)."""
    local = local_optimizer_state_bytes(optimizer)
    return all_gather_object(local) if get_world_size() > 1 else [local]
