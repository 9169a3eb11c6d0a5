"""The files a run keeps in its work dir to be resumed: ``last_checkpoint``, the checkpoints
it names, and the temporary files of writes in progress.

Every small file here is written to a temporary file beside it and renamed into place, so a
reader sees the old or the new content, never a cut one; the readers still accept damage
(an empty ``last_checkpoint``, a truncated newest checkpoint) and fall back to what is
intact, as a crash of the machine, a full disk or a copy cut short leaves such files.
"""
import glob
import logging
import os
import re
from typing import List, Optional

from mmengine.logging import print_log

LAST_CHECKPOINT = 'last_checkpoint'  # mmengine's name: its find_latest_checkpoint reads it
# the names mmengine's CheckpointHook gives by default (best_*.pth hold no optimizer state)
CHECKPOINT_PATTERNS = ('iter_*.pth', 'epoch_*.pth')
# what SafeCheckpointRunner and write_atomically write before renaming: NAME.tmp-PID
_TEMPORARY = re.compile(r'^(?P<name>.+)\.tmp-(?P<pid>[0-9]+)$')


def temporary_name(path: str) -> str:
    """Where a write to ``path`` goes before it is renamed into place (``PATH.tmp-PID``;
    :func:`remove_stale_temporaries` recognises it)."""
    return f'{path}.tmp-{os.getpid()}'


def write_atomically(path: str, text: str) -> None:
    """Writes ``text`` to ``path`` through a temporary file renamed over it (flushed to disk
    first), so ``path`` holds the old or the new text whenever the process stops."""
    tmp = temporary_name(path)
    try:
        with open(tmp, 'w') as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_last_checkpoint(work_dir: str, checkpoint: str) -> None:
    """Points the work dir's ``last_checkpoint`` at ``checkpoint``, atomically."""
    write_atomically(os.path.join(work_dir, LAST_CHECKPOINT), checkpoint)


def read_last_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint the work dir's ``last_checkpoint`` names, or None when that file is
    absent, empty or blank (mmengine would try to resume from '')."""
    try:
        with open(os.path.join(work_dir, LAST_CHECKPOINT)) as f:
            named = f.read().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except UnicodeDecodeError:  # garbage: treated as absent too
        return None
    return named or None


def checkpoint_files(work_dir: str) -> List[str]:
    """The work dir's checkpoints under mmengine's default names, newest written first."""
    paths = {p for pattern in CHECKPOINT_PATTERNS
             for p in glob.glob(os.path.join(glob.escape(work_dir), pattern))}
    return sorted((p for p in paths if os.path.isfile(p)), key=os.path.getmtime, reverse=True)


def unreadable_reason(path: str) -> Optional[str]:
    """Why the local checkpoint ``path`` cannot be resumed from (missing, truncated, not a
    checkpoint, refused), or None when it opens (tensors memory-mapped, not read)."""
    from ..checkpoint.files import check_checkpoint_file
    if not os.path.isfile(path):
        return 'it does not exist'
    try:
        check_checkpoint_file(path)
    except Exception as err:  # torch and the checks raise many types for a bad file
        return f'{type(err).__name__}: {err}'
    return None


class NoReadableCheckpointError(RuntimeError):
    """A work dir has checkpoints, and none of them can be resumed from."""


def newest_readable_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint a resume of ``work_dir`` starts from: the one ``last_checkpoint`` names
    when it opens, else the newest written checkpoint that opens (logged with both names);
    None when the work dir holds none. Raises :class:`NoReadableCheckpointError`, naming
    each file and why, when there are checkpoints and none opens: resuming from the
    beginning then would silently discard the run."""
    named = read_last_checkpoint(work_dir)
    if named is not None and '://' in named:
        return named  # a remote out_dir: read where it is, not checked here
    candidates = [named] if named is not None else []
    candidates += [p for p in checkpoint_files(work_dir)
                   if named is None or os.path.abspath(p) != os.path.abspath(named)]
    refused = []
    for path in candidates:
        reason = unreadable_reason(path)
        if reason is None:
            if refused:
                print_log(f'resume: {refused[0][0]} cannot be resumed from ({refused[0][1]}); '
                          f'resuming from {path} instead, the newest checkpoint in {work_dir} '
                          f'that opens', logger='current', level=logging.WARNING)
            return path
        refused.append((path, reason))
    if refused:
        listed = '; '.join(f'{path}: {reason}' for path, reason in refused)
        raise NoReadableCheckpointError(
            f'--resume: no checkpoint in {work_dir} can be resumed from ({listed}). Copy an '
            f'intact checkpoint there and resume from it with --resume PATH, or move these '
            f'files away to train from the beginning')
    return None


def remove_stale_temporaries(work_dir: str) -> List[str]:
    """Removes the temporary files (``NAME.tmp-PID``) that a writer which died left in
    ``work_dir`` and its runs' ``vis_data`` folders, and returns them. Only files of exactly
    that pattern whose process ``PID`` no longer exists on this machine are removed; a live
    writer's file, or one whose PID now belongs to another process, is kept."""
    if not os.path.isdir(work_dir):
        return []
    folders = [work_dir] + glob.glob(os.path.join(glob.escape(work_dir), '*', 'vis_data'))
    removed = []
    for folder in folders:
        for entry in os.scandir(folder):
            found = _TEMPORARY.match(entry.name)
            if found and entry.is_file(follow_symlinks=False) and \
                    not _process_exists(int(found.group('pid'))):
                os.remove(entry.path)
                removed.append(entry.path)
    if removed:
        print_log(f'removed {len(removed)} temporary file(s) that a stopped writer left: '
                  f'{", ".join(removed)}', logger='current')
    return removed


def _process_exists(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (another user's counts)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True
