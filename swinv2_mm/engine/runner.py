"""mmengine's Runner with checkpoints written atomically, and the hooks that protect a run."""
import contextlib
import os

from torch.distributed.optim import ZeroRedundancyOptimizer

from mmengine.dist import get_world_size, is_main_process
from mmengine.runner import Runner

from ..checkpoint.files import check_checkpoint_file
from .preemption import TrainingPreempted

PROTECTING_HOOKS = ('RandomStateHook', 'TrimSupersededLogsHook', 'StopOnNonFiniteLossHook',
                    'OptimizerStateSizeHook', 'PreemptionCheckpointHook')


class SafeCheckpointRunner(Runner):
    """Writes each checkpoint to a temporary file in the same folder and renames it into
    place, so a crash while saving leaves the previous checkpoint intact and never a
    truncated file under a checkpoint's name; a local checkpoint mmengine fails to read
    (truncated, not a checkpoint, untrusted) is reported by name and reason. A preempted
    epoch-based run returns from ``train`` as an iteration-based one does."""

    def train(self):
        try:
            return super().train()
        except TrainingPreempted:
            self.call_hook('after_run')  # closes the visualizer, as at the end of a run
            return self.model

    def load_checkpoint(self, filename: str, *args, **kwargs):
        try:
            return super().load_checkpoint(filename, *args, **kwargs)
        except Exception:
            if '://' not in str(filename):
                check_checkpoint_file(filename)  # raises the error that names file and reason
            raise

    def save_checkpoint(self, out_dir: str, filename: str, *args, **kwargs) -> None:
        with _zero_state_gathered(self):
            self._save_atomically(out_dir, filename, *args, **kwargs)

    def _save_atomically(self, out_dir: str, filename: str, *args, **kwargs) -> None:
        remote = '://' in str(out_dir) or kwargs.get('backend_args') or \
            kwargs.get('file_client_args')
        if remote or not is_main_process():  # other ranks write nothing (mmengine's master_only)
            return super().save_checkpoint(out_dir, filename, *args, **kwargs)
        tmp = f'{filename}.tmp-{os.getpid()}'
        try:
            super().save_checkpoint(out_dir, tmp, *args, **kwargs)
        except BaseException:
            if os.path.exists(os.path.join(out_dir, tmp)):
                os.remove(os.path.join(out_dir, tmp))
            raise
        os.replace(os.path.join(out_dir, tmp), os.path.join(out_dir, filename))


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
    to ``cfg.custom_hooks`` once."""
    hooks = list(cfg.get('custom_hooks') or [])
    present = {h.get('type') for h in hooks}
    hooks += [dict(type=name) for name in PROTECTING_HOOKS if name not in present]
    cfg.custom_hooks = hooks


def build_runner(cfg):
    """The runner a config asks for (``runner_type``), by default ``SafeCheckpointRunner``,
    with the protecting hooks added."""
    from mmengine.registry import RUNNERS
    add_protecting_hooks(cfg)
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return SafeCheckpointRunner.from_cfg(cfg)
