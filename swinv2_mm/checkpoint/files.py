"""Lets torch's weights-only unpickler read mmengine's own checkpoints, and nothing more.

torch >= 2.6 loads with ``weights_only=True`` by default and mmengine 0.10.7 calls
``torch.load`` without saying otherwise, so the message-hub state in every checkpoint the
runner writes (HistoryBuffer objects holding numpy arrays and scalars) is refused and
``tools/test.py`` or ``--resume`` fail. Instead of switching the protection off, the exact
types those checkpoints hold are allow-listed; a file that needs more is refused with a
message that names the type and torch's opt-in for files the user trusts.
"""
import os
import re
import zipfile

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer


def mmengine_checkpoint_globals() -> list:
    """The non-tensor types an mmengine runner checkpoint contains.

    ``getattr`` is how pickle stores HistoryBuffer's statistics methods
    (``getattr(HistoryBuffer, 'mean')``); the unpickler still refuses to call anything
    it fetches that is not itself allow-listed.
    """
    multiarray = np.core.multiarray
    return [HistoryBuffer, getattr, np.ndarray, np.dtype, multiarray._reconstruct,
            multiarray.scalar, type(np.dtype(np.float64)), type(np.dtype(np.float32)),
            type(np.dtype(np.int64))]


def allow_mmengine_checkpoints() -> None:
    """Adds exactly those types to torch's weights-only allow-list (idempotent)."""
    torch.serialization.add_safe_globals(mmengine_checkpoint_globals())


TRUST_ALL_ENV = 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'  # torch's own switch to full unpickling
_UNSUPPORTED_GLOBAL = re.compile(r'Unsupported global: GLOBAL (\S+)')


class CheckpointFileError(ValueError):
    """A checkpoint file that cannot be loaded: truncated, not a checkpoint, or untrusted."""


def trusts_every_checkpoint() -> bool:
    """Whether the user opted in to full unpickling (torch's environment switch)."""
    return os.environ.get(TRUST_ALL_ENV, '0').lower() in ('1', 'y', 'yes', 'true')


def load_checkpoint_file(path: str, map_location='cpu', mmap: bool = False):
    """``torch.load`` with the weights-only unpickler (plus mmengine's checkpoint types);
    a file that fails gets an error that names it and says why: truncated or not a
    checkpoint, or holding a type outside the allow-list (and how to opt in)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint: {path!r} does not exist')
    try:
        return torch.load(path, map_location=map_location, mmap=mmap,
                          weights_only=not trusts_every_checkpoint())
    except Exception as err:  # torch raises many types for a bad file
        found = _UNSUPPORTED_GLOBAL.search(str(err))
        if found:
            raise CheckpointFileError(
                f'checkpoint: {path!r} holds {found.group(1)}, a type outside what model '
                f'weights and mmengine checkpoints need; unpickling it could run code, so it '
                f'is refused. If you trust this file, run with {TRUST_ALL_ENV}=1 (full '
                f'unpickling for every checkpoint), or allow that one type with '
                f'torch.serialization.add_safe_globals([{found.group(1)}]) in a module your '
                f'config imports (custom_imports)') from None
        raise CheckpointFileError(
            f'checkpoint: {path!r} is truncated or not a checkpoint (a torch.save file was '
            f'expected; {type(err).__name__}: {str(err)[:200]}); use an earlier checkpoint or '
            f'copy the file again') from None


def check_checkpoint_file(path: str) -> None:
    """Opens a local checkpoint without reading its tensors (memory-mapped; legacy non-zip
    files are read whole) to report a bad file before a model is built."""
    load_checkpoint_file(path, mmap=zipfile.is_zipfile(path))
