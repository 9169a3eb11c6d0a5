"""mmengine's Runner with checkpoints written atomically, and the hooks that protect a run."""
import contextlib
import inspect
import os
from typing import Optional

from torch.distributed.optim import ZeroRedundancyOptimizer

from mmengine.dist import get_world_size, is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint_to_model

from ..checkpoint.files import read_runner_checkpoint, weights_only_loading
from ..checkpoint.loading import check_model_fits
from ..checkpoint.loading import revise_keys as revise_keys_of
from .hooks import refuse_non_finite_weights
from .preemption import TrainingPreempted, protect_data_loader_workers
from .work_dir import newest_readable_checkpoint, remove_stale_temporaries, temporary_name

PROTECTING_HOOKS = ('RandomStateHook', 'TrimSupersededLogsHook', 'StopOnNonFiniteLossHook',
                    'OptimizerStateSizeHook', 'PreemptionCheckpointHook')


class SafeCheckpointRunner(Runner):
    """Writes each checkpoint to a temporary file in the same folder and renames it into
    place, so a crash while saving leaves the previous checkpoint intact and never a
    truncated file under a checkpoint's name; checkpoints are read without running code from
    them (see :meth:`load_checkpoint`) and reported by name and reason. A preempted run
    returns from ``train`` normally; no checkpoint of non-finite weights is written."""

    def train(self):
        """mmengine's ``train``, after removing the temporary files of writers that died in the
        work dir (:func:`remove_stale_temporaries`); a preempted run returns normally."""
        if is_main_process():
            remove_stale_temporaries(self.work_dir)
        try:
            return super().train()
        except TrainingPreempted:
            self.call_hook('after_run')  # closes the visualizer, as at the end of a run
            return self.model

    @staticmethod
    def build_dataloader(dataloader, seed=None, diff_rank_seed: bool = False):
        """mmengine's ``build_dataloader`` (every loop's), with workers that ignore SIGTERM
        and SIGINT (:func:`protect_data_loader_workers`): a signal to the process group must
        not kill them before the main process has saved its checkpoint."""
        loader = Runner.build_dataloader(dataloader, seed=seed, diff_rank_seed=diff_rank_seed)
        protect_data_loader_workers(loader)
        return loader

    def load_or_resume(self) -> None:
        """mmengine's ``load_or_resume``, with an automatic resume (``resume=True`` without
        ``load_from``) from the work dir's newest checkpoint that opens
        (:func:`newest_readable_checkpoint`): an empty ``last_checkpoint`` counts as none, and
        a truncated newest checkpoint gives way to the one before it (logged)."""
        if self._resume and self._load_from is None and not self._has_loaded:
            self._load_from = newest_readable_checkpoint(self.work_dir)
            self._resume = self._load_from is not None
            self.logger.info(f'resume: from {self._load_from}, the newest checkpoint in '
                             f'{self.work_dir}' if self._resume else
                             f'resume: no checkpoint in {self.work_dir} yet, training starts '
                             f'from the beginning')
        super().load_or_resume()

    def load_checkpoint(self, filename: str, map_location='cpu', strict: bool = False,
                        revise_keys=((r'^module\.', ''),)):
        """mmengine's ``load_checkpoint`` (``load_from``, ``--resume``, ``tools/test.py``) with
        the file read by :func:`read_runner_checkpoint` (weights only, contents checked, no
        executable ``meta``, errors naming the file) and refused, naming the first weight,
        when its shapes do not fit the model (config ``load_from_ignore``: regular
        expressions of weights that may differ and stay initialised)."""
        checkpoint = read_runner_checkpoint(filename, map_location)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(self.model) else self.model
        state = checkpoint.get('state_dict', checkpoint)
        check_model_fits(model, revise_keys_of(state, revise_keys), f'checkpoint {filename!r}',
                         () if self._resume else self.cfg.get('load_from_ignore', ()))
        checkpoint = _load_checkpoint_to_model(model, checkpoint, strict,
                                               revise_keys=list(revise_keys))
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

    def _init_model_weights(self) -> None:
        """Initialises weights (``init_cfg``) with every checkpoint read weights-only, also
        those of other modules' ``Pretrained`` URLs, which mmengine reads through torch.hub."""
        with weights_only_loading():
            super()._init_model_weights()

    def save_checkpoint(self, out_dir: str, filename: str, *args, **kwargs) -> None:
        """mmengine's ``save_checkpoint``, called on every rank: refuses weights holding NaN or
        infinity (:func:`refuse_non_finite_weights`), gathers what rank 0 writes (the hooks'
        ``before_checkpoint_gather``, a ZeRO optimizer's shards), writes the file atomically,
        and records which checkpoint holds which iteration (``last_saved_checkpoint``)."""
        refuse_non_finite_weights(self, filename)
        self.call_hook('before_checkpoint_gather')
        with _zero_state_gathered(self):
            self._save_atomically(out_dir, filename, *args, **kwargs)
        saved = _resumable_state(self, args, kwargs)
        if saved is not None:
            self.last_saved_checkpoint = (os.path.join(out_dir, filename), saved)

    def _save_atomically(self, out_dir: str, filename: str, *args, **kwargs) -> None:
        remote = '://' in str(out_dir) or kwargs.get('backend_args') or \
            kwargs.get('file_client_args')
        if remote or not is_main_process():  # other ranks write nothing (mmengine's master_only)
            return super().save_checkpoint(out_dir, filename, *args, **kwargs)
        tmp = os.path.basename(temporary_name(filename))
        try:
            super().save_checkpoint(out_dir, tmp, *args, **kwargs)
        except BaseException:
            if os.path.exists(os.path.join(out_dir, tmp)):
                os.remove(os.path.join(out_dir, tmp))
            raise
        os.replace(os.path.join(out_dir, tmp), os.path.join(out_dir, filename))


_SAVE_SIGNATURE = inspect.signature(Runner.save_checkpoint)


def _resumable_state(runner, args, kwargs) -> Optional[int]:
    """The iteration a checkpoint being saved with these arguments resumes at (mmengine's
    rule for ``meta['iter']``), or None for one without optimizer or scheduler state (a best
    checkpoint)."""
    bound = _SAVE_SIGNATURE.bind(runner, '', '', *args, **kwargs)
    bound.apply_defaults()
    saved = bound.arguments
    if not (saved['save_optimizer'] and saved['save_param_scheduler']):
        return None
    meta = saved['meta'] or {}
    if 'iter' in meta:
        return meta['iter']
    return runner.iter if saved['by_epoch'] else runner.iter + 1


@contextlib.contextmanager
def _zero_state_gathered(runner):
    """Gathers a ZeRO-sharded optimizer state on rank 0 with every rank taking part.

    mmengine 0.10.7 saves on rank 0 only (``master_only``), while its
    ZeroRedundancyOptimizer.state_dict gathers the shards with a collective, so a
    multi-process ZeRO run deadlocks at its first checkpoint. Here every rank gathers
    first and rank 0's own gather inside ``state_dict`` is skipped.
    """
    optimizer = getattr(getattr(runner, 'optim_wrapper', None), 'optimizer', None)
    if not isinstance(optimizer, ZeroRedundancyOptimizer) or get_world_size() < 2:
        yield
        return
    optimizer.consolidate_state_dict(to=0)
    optimizer.consolidate_state_dict = lambda *args, **kwargs: None
    try:
        yield
    finally:
        del optimizer.consolidate_state_dict  # back to the class's method


def add_protecting_hooks(cfg) -> None:
    """Adds exact-resume, log-trimming, NaN-stop, optimizer-state-size and preemption hooks
    to ``cfg.custom_hooks`` once, and makes mmengine's checkpoint hook a
    :class:`SafeCheckpointHook`."""
    hooks = list(cfg.get('custom_hooks') or [])
    present = {h.get('type') for h in hooks}
    hooks += [dict(type=name) for name in PROTECTING_HOOKS if name not in present]
    cfg.custom_hooks = hooks
    use_safe_checkpoint_hook(cfg)


def use_safe_checkpoint_hook(cfg) -> None:
    """``default_hooks.checkpoint`` of mmengine's type (named, or mmengine's default when the
    config has none: every epoch) becomes :class:`SafeCheckpointHook` with the same arguments;
    a disabled (None) or other checkpoint hook is left as it is."""
    if cfg.get('default_hooks') is None:
        cfg.default_hooks = {}
    default_hooks = cfg.default_hooks
    if 'checkpoint' not in default_hooks:
        default_hooks['checkpoint'] = dict(type='SafeCheckpointHook', interval=1)
        return
    hook = default_hooks['checkpoint']
    kind = hook.get('type') if isinstance(hook, dict) else None
    if kind is CheckpointHook or isinstance(kind, str) and \
            kind.split('.')[-1] == 'CheckpointHook':
        hook['type'] = 'SafeCheckpointHook'


def build_runner(cfg):
    """The runner a config asks for (``runner_type``), by default ``SafeCheckpointRunner``,
    with the protecting hooks added."""
    from mmengine.registry import RUNNERS
    add_protecting_hooks(cfg)
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return SafeCheckpointRunner.from_cfg(cfg)
