"""mmengine runner checkpoints load under weights_only=True; other pickled objects do not."""
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

import swinv2_mm  # noqa: F401  (installs the allow-list)


def test_message_hub_state_loads_weights_only(tmp_path):
    buffer = HistoryBuffer()
    buffer.update(np.float64(1.5))
    buffer.update(2.0)
    ckpt = {'state_dict': {'w': torch.ones(2)},
            'message_hub': {'log_scalars': {'train/loss': buffer},
                            'runtime_info': {'iter': 3, 'lr': np.float32(0.1),
                                             'hist': np.arange(3)}}}
    torch.save(ckpt, tmp_path / 'ckpt.pth')
    loaded = torch.load(tmp_path / 'ckpt.pth', weights_only=True)
    assert loaded['message_hub']['log_scalars']['train/loss'].mean() == pytest.approx(1.75)
    assert loaded['message_hub']['runtime_info']['lr'] == np.float32(0.1)


class Payload:
    """Stands for any class a checkpoint should not be able to instantiate."""


def test_other_objects_are_still_refused(tmp_path):
    torch.save({'meta': Payload()}, tmp_path / 'bad.pth')
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / 'bad.pth', weights_only=True)
