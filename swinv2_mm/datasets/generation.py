"""Where generated datasets live, and how they are published: idempotent, atomic, race-safe.

A dataset is built into ``<root>.tmp-<pid>``, stamped with the parameters it was made
with, and renamed into place. Readers never see a partial dataset, a second call with
the same parameters does nothing, and concurrent callers (data-parallel ranks) all end
up with the same complete dataset.
"""
import json
import os
import shutil
from typing import Callable, Optional

STAMP_NAME = '.complete'


def data_base_dir() -> str:
    """The folder holding every generated dataset: $SWINV2_MM_DATA or the user cache."""
    return os.environ.get('SWINV2_MM_DATA') or os.path.expanduser('~/.cache/swinv2_mm/data')


def _stamp(params: dict) -> str:
    """The content of the completion stamp: the parameters as canonical JSON."""
    return json.dumps(params, sort_keys=True)


def _read_stamp(root: str) -> Optional[str]:
    """The stamp of the dataset at ``root``, None when there is none."""
    try:
        with open(os.path.join(root, STAMP_NAME)) as f:
            return f.read()
    except OSError:
        return None


def _discard(path: str) -> None:
    """Moves ``path`` aside (atomic) and deletes it; a path already gone is fine."""
    aside = f'{path}.old-{os.getpid()}'
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    shutil.rmtree(aside)


def _move_into_place(tmp: str, root: str, stamp: str) -> None:
    """Moves the complete ``tmp`` to ``root``, replacing anything stale there.

    When a concurrent process published the same dataset first, ``tmp`` is dropped.
    """
    if _read_stamp(root) == stamp:
        shutil.rmtree(tmp)
        return
    if os.path.lexists(root):
        _discard(root)
    try:
        os.rename(tmp, root)
    except OSError:
        if _read_stamp(root) != stamp:
            raise
        shutil.rmtree(tmp)


def publish_dataset(root: str, params: dict, build: Callable[[str], None]) -> str:
    """Makes ``root`` hold the dataset that ``build`` writes for ``params``; returns ``root``.

    Nothing is done when ``root`` is already stamped with ``params`` (JSON-serialisable;
    include whatever tells datasets apart, such as a format version). Otherwise
    ``build(tmp)`` writes the files into an empty folder ``tmp``, which is stamped and
    renamed to ``root`` (absolute, user expanded).
    """
    root = os.path.abspath(os.path.expanduser(root))
    stamp = _stamp(params)
    if _read_stamp(root) == stamp:
        return root
    tmp = f'{root}.tmp-{os.getpid()}'
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    build(tmp)
    with open(os.path.join(tmp, STAMP_NAME), 'w') as f:
        f.write(stamp)
    _move_into_place(tmp, root, stamp)
    return root
