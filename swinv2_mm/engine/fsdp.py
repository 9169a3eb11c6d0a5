"""FSDP (ZeRO-3) as a config switch through torch's FSDP2 ``fully_shard``: parameters,
gradients and optimizer state sharded per SwinV2 block, on CPU processes (gloo) as on GPUs.

Switch it on in a config (or with ``--cfg-options model_wrapper_cfg.type=MMFullyShard``)::

    model_wrapper_cfg = dict(type='MMFullyShard')
    runner_type = 'FSDPRunner'  # set by the tools when the wrapper is asked for

Checkpoints hold the full (gathered) model and optimizer state, keyed by parameter name:
one process loads them for evaluation, and ``--resume`` shards both again. Every rank reads
the checkpoint memory-mapped, so no rank copies the whole file into its memory. A DDP or
single-process checkpoint (optimizer state keyed by position) resumes sharded, and a
gathered FSDP checkpoint resumes unsharded.
"""
import contextlib
import zipfile
from collections import OrderedDict

import torch.nn as nn
from mmengine.device import get_device
from mmengine.dist import all_gather_object, broadcast, get_world_size
from mmengine.logging import print_log
from mmengine.registry import MODEL_WRAPPERS, RUNNERS
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                     get_optimizer_state_dict,
                                                     set_model_state_dict,
                                                     set_optimizer_state_dict)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.distributed.optim import ZeroRedundancyOptimizer
from torch.distributed.tensor import DTensor

from ..checkpoint.files import read_runner_checkpoint
from ..checkpoint.loading import check_model_fits
from ..checkpoint.loading import revise_keys as revise_keys_of
from .runner import SafeCheckpointRunner

WRAPPER = 'MMFullyShard'
GATHERED = StateDictOptions(full_state_dict=True, cpu_offload=True)


@MODEL_WRAPPERS.register_module()
class MMFullyShard(nn.Module):
    """Shards ``module`` with ``fully_shard``: each module whose class is named in
    ``shard_modules`` (SwinV2 blocks) is one unit, the root holds the rest.

    The weights are initialised (``init_weights``) and broadcast from rank 0 before sharding,
    as mmengine's DDP path gives every rank rank 0's weights (:class:`FSDPRunner` builds it
    where that path initialises them). Activation checkpointing (``with_cp``) and sequential
    attention (``attn_chunk_size``) work inside the units.
    """

    def __init__(self, module: nn.Module, shard_modules=('SwinV2Block',),
                 reshard_after_forward: bool = True, init_weights: bool = True):
        super().__init__()
        if init_weights and hasattr(module, 'init_weights'):
            module.init_weights()
        for tensor in module.state_dict().values():
            broadcast(tensor)
        units = shard(module, tuple(shard_modules), reshard_after_forward)
        self.module = module
        log_parameters_per_rank(module, units)

    def train_step(self, data, optim_wrapper):
        """One optimisation step, as ``MMDistributedDataParallel.train_step``."""
        with optim_wrapper.optim_context(self):
            data = self.module.data_preprocessor(data, training=True)
            losses = self.module._run_forward(data, mode='loss')
        parsed_losses, log_vars = self.module.parse_losses(losses)
        optim_wrapper.update_params(parsed_losses)
        return log_vars

    def val_step(self, data):
        """Predictions of the sharded model (the root gathers what it needs)."""
        return self.module.val_step(data)

    def test_step(self, data):
        """Predictions of the sharded model (the root gathers what it needs)."""
        return self.module.test_step(data)

    @contextlib.contextmanager
    def no_sync(self):
        """Gradient accumulation: gradients are reduce-scattered only at the last step."""
        self.module.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            self.module.set_requires_gradient_sync(True)


def shard(module: nn.Module, unit_names: tuple, reshard_after_forward: bool) -> int:
    """Applies ``fully_shard`` to every module of a class in ``unit_names``, then to the root
    (over all processes); returns the number of units."""
    mesh = init_device_mesh(get_device(), (get_world_size(),))
    units = [m for m in module.modules() if type(m).__name__ in unit_names]
    for unit in units:
        fully_shard(unit, mesh=mesh, reshard_after_forward=reshard_after_forward)
    fully_shard(module, mesh=mesh, reshard_after_forward=reshard_after_forward)
    return len(units)


def local_parameter_count(module: nn.Module) -> int:
    """Parameter elements this process holds (its shards)."""
    return sum(p.to_local().numel() if isinstance(p, DTensor) else p.numel()
               for p in module.parameters())


def log_parameters_per_rank(module: nn.Module, units: int) -> None:
    """Logs every rank's local parameter count next to the full model's (a collective)."""
    counts = all_gather_object(local_parameter_count(module))
    full = sum(p.numel() for p in module.parameters())  # a DTensor's numel is the global one
    print_log(f'FSDP: {units} SwinV2 block units + root sharded over {len(counts)} ranks; '
              f'parameters per rank: {counts} of {full}', logger='current')


def uses_fsdp(cfg) -> bool:
    """Whether a config asks for :class:`MMFullyShard`."""
    return (cfg.get('model_wrapper_cfg') or {}).get('type') == WRAPPER


def use_fsdp_runner(cfg) -> None:
    """For a config that asks for :class:`MMFullyShard`: :class:`FSDPRunner` (which gathers
    checkpoints) unless a runner other than ours is named, and the plain optimizer
    constructor in place of ZeRO-1's, whose sharding FSDP replaces."""
    if not uses_fsdp(cfg):
        return
    if cfg.get('runner_type') in (None, 'SafeCheckpointRunner'):  # the shipped configs' runner
        cfg.runner_type = 'FSDPRunner'
    optim = cfg.get('optim_wrapper') or {}
    if optim.get('constructor') == 'ZeroWhenDistributedConstructor':
        optim['constructor'] = optim.pop('base_constructor', 'DefaultOptimWrapperConstructor')
        print(f'swinv2_mm: FSDP shards the optimizer state itself: optim_wrapper.constructor '
              f'ZeroWhenDistributedConstructor replaced by {optim["constructor"]}')


@RUNNERS.register_module()
class FSDPRunner(SafeCheckpointRunner):
    """``SafeCheckpointRunner`` for a model sharded by :class:`MMFullyShard`: checkpoints are
    gathered by every rank and written by rank 0 as full state dicts; loading and resuming
    shard them again. Other models run as with ``SafeCheckpointRunner``."""

    _resuming = False
    _pending_wrapper_cfg = None

    @classmethod
    def from_cfg(cls, cfg):
        use_fsdp_runner(cfg)
        return super().from_cfg(cfg)

    def wrap_model(self, model_wrapper_cfg, model):
        """Defers :class:`MMFullyShard` to the start of ``train``/``val``/``test``, where DDP
        runs initialise the weights: both draw them from the same random state."""
        if not self.distributed or (model_wrapper_cfg or {}).get('type') != WRAPPER:
            return super().wrap_model(model_wrapper_cfg, model)
        self._pending_wrapper_cfg = model_wrapper_cfg
        return model.to(get_device())

    def _shard(self) -> None:
        if self._pending_wrapper_cfg is not None:
            cfg, self._pending_wrapper_cfg = self._pending_wrapper_cfg, None
            self.model = super().wrap_model(cfg, self.model)

    def train(self):
        # as in mmengine's train: the training loop first (its data iterator draws a seed)
        self._train_loop = self.build_train_loop(self._train_loop)
        self._shard()
        return super().train()

    def val(self):
        self._shard()
        return super().val()

    def test(self):
        self._shard()
        return super().test()

    @property
    def sharded(self) -> bool:
        return isinstance(self.model, MMFullyShard)

    def _init_model_weights(self) -> None:
        if not self.sharded:  # MMFullyShard initialised the weights before sharding
            super()._init_model_weights()

    def build_optim_wrapper(self, optim_wrapper):
        built = super().build_optim_wrapper(optim_wrapper)
        if self.sharded and isinstance(getattr(built, 'optimizer', None),
                                       ZeroRedundancyOptimizer):
            raise ValueError("model_wrapper_cfg.type='MMFullyShard' (FSDP) shards the optimizer "
                             "state itself: set optim_wrapper.constructor to a plain constructor, "
                             "not 'ZeroWhenDistributedConstructor'")
        return built

    def save_checkpoint(self, out_dir: str, filename: str, *args, **kwargs) -> None:
        context = gathered_state(self) if self.sharded else contextlib.nullcontext()
        with context:
            super().save_checkpoint(out_dir, filename, *args, **kwargs)

    def resume(self, filename: str, *args, **kwargs) -> None:
        self._resuming = True
        try:
            super().resume(filename, *args, **kwargs)
        finally:
            self._resuming = False

    def load_checkpoint(self, filename: str, map_location='cpu', strict: bool = False,
                        revise_keys=((r'^module\.', ''),)):
        if self.sharded:
            checkpoint = self._load_sharded(filename, strict, revise_keys)
        else:
            checkpoint = super().load_checkpoint(filename, map_location, strict,
                                                 list(revise_keys))
        optimizer_state = checkpoint.get('optimizer')
        if self._resuming and optimizer_state and self.sharded and \
                not is_gathered_optimizer_state(optimizer_state):
            checkpoint['optimizer'] = optimizer_state_by_name(
                optimizer_state, self.optim_wrapper.optimizer, self.model.module, filename)
        if self._resuming and is_gathered_optimizer_state(checkpoint.get('optimizer')):
            self._set_optimizer_state(checkpoint)
        return checkpoint

    def _load_sharded(self, filename: str, strict: bool, revise_keys):
        """Every rank maps the full checkpoint and keeps its shards of the weights (refused,
        naming the first weight, where the shapes do not fit, as unsharded loading does)."""
        checkpoint = read_checkpoint(filename)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        state = revise_keys_of(checkpoint.get('state_dict', checkpoint), revise_keys)
        check_model_fits(self.model.module, state, f'checkpoint {filename!r}',
                         () if self._resume else self.cfg.get('load_from_ignore', ()))
        set_model_state_dict(self.model.module, state,
                             options=StateDictOptions(full_state_dict=True, strict=strict))
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename} (sharded over the ranks)')
        return checkpoint

    def _set_optimizer_state(self, checkpoint: dict) -> None:
        """Shards a gathered optimizer state into the optimizer; mmengine's resume then reloads
        the optimizer's own state dict, a no-op, and the wrapper's own entries (the loss
        scale) as saved."""
        model = self.model.module if hasattr(self.model, 'module') else self.model
        optimizer = self.optim_wrapper.optimizer
        saved = dict(checkpoint['optimizer'])
        wrapper_entries = {key: saved.pop(key) for key in list(saved)
                           if key not in ('state', 'param_groups')}
        set_optimizer_state_dict(model, optimizer, saved,
                                 options=StateDictOptions(full_state_dict=True))
        checkpoint['optimizer'] = dict(optimizer.state_dict(), **wrapper_entries)


@contextlib.contextmanager
def gathered_state(runner):
    """Gathers the full model and optimizer state on rank 0 with every rank taking part, and
    has mmengine's rank-0 ``save_checkpoint`` write them."""
    module, wrapper = runner.model.module, runner.optim_wrapper
    model_state = OrderedDict(get_model_state_dict(module, options=GATHERED))  # mmengine's type
    optim_state = get_optimizer_state_dict(module, wrapper.optimizer, options=GATHERED)
    module.state_dict = lambda *args, **kwargs: model_state
    wrapper.state_dict = lambda: optim_state
    try:
        yield
    finally:
        del module.state_dict, wrapper.state_dict  # back to the classes' methods


def is_gathered_optimizer_state(state) -> bool:
    """Whether an optimizer state dict is keyed by parameter names (a gathered FSDP one)."""
    groups = (state or {}).get('param_groups') or [{}]
    return any(isinstance(p, str) for p in groups[0].get('params', ()))


def read_checkpoint(filename: str) -> dict:
    """A checkpoint for sharding, read as the runners read one (weights only, no executable
    ``meta``): a local file memory-mapped (its tensors stay in the file, in the page cache the
    ranks of a node share, until each rank copies its shards); a URL or a legacy (non-zip)
    file read whole."""
    mapped = '://' not in str(filename) and zipfile.is_zipfile(filename)
    return read_runner_checkpoint(filename, map_location='cpu', mmap=mapped)


def optimizer_state_by_name(state: dict, optimizer, module: nn.Module, filename: str) -> dict:
    """An optimizer state keyed by parameter position (what a DDP or single-process run saves)
    keyed by parameter name instead, as a gathered FSDP state is: position i is the i-th
    parameter of ``optimizer``'s groups, which the same constructor over the same model lists
    in the same order. A checkpoint whose groups do not have this optimizer's sizes is refused."""
    groups, saved = optimizer.param_groups, state.get('param_groups', [])
    sizes, saved_sizes = [len(g['params']) for g in groups], [len(g['params']) for g in saved]
    if sizes != saved_sizes:
        raise ValueError(
            f'--resume {filename}: its optimizer state has parameter groups of {saved_sizes} '
            f'parameters, this FSDP run\'s optimizer {sizes}: it was trained with another '
            f'optimizer constructor or paramwise_cfg (use the same ones), or another model '
            f'(start from its weights with load_from instead)')
    names = {id(p): name for name, p in module.named_parameters()}
    name_of = {position: names[id(p)] for group, saved_group in zip(groups, saved)
               for position, p in zip(saved_group['params'], group['params'])}
    by_name = dict(state)
    by_name['state'] = {name_of[position]: value for position, value in state['state'].items()}
    by_name['param_groups'] = [dict(g, params=[name_of[p] for p in g['params']]) for g in saved]
    return by_name
