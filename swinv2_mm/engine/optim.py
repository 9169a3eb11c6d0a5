"""ZeRO stage-1 whenever training runs on more than one process, the plain optimizer otherwise."""
import copy

from mmengine.dist import get_world_size
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor


class ZeroWhenDistributedConstructor(DefaultOptimWrapperConstructor):
    """Builds the configured optimizer, sharding its state across data-parallel ranks with
    mmengine's ``ZeroRedundancyOptimizer`` (ZeRO-1, as the paper trains SwinV2-G) when the
    world size is above one. Param-wise settings (no weight decay on norms, biases,
    ``cpb_mlp``, ``logit_scale``) apply either way."""

    def __call__(self, model):
        world_size = get_world_size()
        if world_size > 1:
            cfg = copy.deepcopy(self.optimizer_cfg)
            cfg['optimizer_type'] = cfg.pop('type')
            cfg['type'] = 'ZeroRedundancyOptimizer'
            self.optimizer_cfg = cfg
            print_log(f'ZeRO-1: {cfg["optimizer_type"]} state is sharded across {world_size} '
                      f'ranks (mmengine ZeroRedundancyOptimizer)', logger='current')
        else:
            print_log(f'single process: plain {self.optimizer_cfg["type"]} optimizer, no ZeRO '
                      f'sharding', logger='current')
        return super().__call__(model)
