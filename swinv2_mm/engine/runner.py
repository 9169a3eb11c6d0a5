"""mmengine's Runner with checkpoints written atomically, and the hooks that protect a run."""
import os

from mmengine.dist import is_main_process
from mmengine.runner import Runner

PROTECTING_HOOKS = ('RandomStateHook', 'TrimSupersededLogsHook', 'StopOnNonFiniteLossHook')


class SafeCheckpointRunner(Runner):
    """Writes each checkpoint to a temporary file in the same folder and renames it into
    place, so a crash while saving leaves the previous checkpoint intact and never a
    truncated file under a checkpoint's name."""

    def save_checkpoint(self, out_dir: str, filename: str, *args, **kwargs) -> None:
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


def add_protecting_hooks(cfg) -> None:
    """Adds exact-resume, log-trimming and NaN-stop hooks to ``cfg.custom_hooks`` once."""
    hooks = list(cfg.get('custom_hooks') or [])
    present = {h.get('type') for h in hooks}
    hooks += [dict(type=name) for name in PROTECTING_HOOKS if name not in present]
    cfg.custom_hooks = hooks
