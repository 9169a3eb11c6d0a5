"""The global random generators a training process draws from (torch's CPU and CUDA ones,
numpy's and Python's ``random``), as plain tensors and numbers that a weights-only checkpoint
holds, and put back from them."""
import random
from typing import List, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_world_size


def numpy_state() -> dict:
    """numpy's global Mersenne Twister (what mmcv's and mmdet's transforms draw from)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    return dict(keys=torch.from_numpy(keys.astype(np.int64)), pos=int(pos),
                has_gauss=int(has_gauss), gauss=float(gauss))


def python_state() -> dict:
    """Python's ``random`` (what mmengine's and mmaction2's transforms draw from)."""
    version, internal, gauss_next = random.getstate()
    return dict(version=version, internal=torch.tensor(internal, dtype=torch.int64),
                gauss_next=gauss_next)


def process_states() -> dict:
    """This process's generators: ``cpu``, ``cuda`` (one per visible device), ``numpy``,
    ``random``."""
    state = dict(cpu=torch.get_rng_state(), numpy=numpy_state(), random=python_state())
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_torch(state: dict) -> None:
    """Puts back torch's CPU and CUDA generators (from the CPU, wherever the checkpoint was
    mapped to; the devices both runs see)."""
    torch.set_rng_state(state['cpu'].cpu())
    if torch.cuda.is_available():
        for device, saved in enumerate(state.get('cuda', [])[:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(saved.cpu(), device)


def restore_numpy_and_python(state: dict) -> None:
    """Puts back numpy's and Python's generators (states saved without them are skipped)."""
    if 'numpy' in state:
        saved = state['numpy']
        np.random.set_state(('MT19937', saved['keys'].cpu().numpy().astype(np.uint32),
                             saved['pos'], saved['has_gauss'], saved['gauss']))
    if 'random' in state:
        saved = state['random']
        random.setstate((saved['version'], tuple(saved['internal'].tolist()),
                         saved['gauss_next']))


def restore_all(state: dict) -> None:
    """Puts back every generator ``state`` holds."""
    restore_torch(state)
    restore_numpy_and_python(state)


def gather_ranks(record: dict) -> List[dict]:
    """Every rank's ``record``, in rank order (a collective: every rank calls it)."""
    if get_world_size() < 2:
        return [record]
    return all_gather_object(record)


def rank_record(saved, rank: int, world_size: int) -> Optional[dict]:
    """This rank's entry of the per-rank records a checkpoint holds, or None when they
    come from another number of ranks (or there are none)."""
    if not isinstance(saved, (list, tuple)) or len(saved) != world_size:
        return None
    return saved[rank]
