"""Lets torch's weights-only unpickler read mmengine's own checkpoints, and nothing more.

torch >= 2.6 loads with ``weights_only=True`` by default and mmengine 0.10.7 calls
``torch.load`` without saying otherwise, so the message-hub state in every checkpoint the
runner writes (HistoryBuffer objects holding numpy arrays and scalars) is refused and
``tools/test.py`` or ``--resume`` fail. Instead of switching the protection off, the exact
types those checkpoints hold are allow-listed.
"""
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
