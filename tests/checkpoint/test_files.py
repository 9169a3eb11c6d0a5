"""mmengine runner checkpoints load under weights_only=True; other pickled objects do not,
and bad files are reported by name with the reason."""
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

import swinv2_mm  # noqa: F401  (installs the allow-list)
from swinv2_mm.checkpoint.files import (CheckpointFileError, check_checkpoint_file,
                                        load_checkpoint_file)


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


def test_untrusted_checkpoint_is_refused_with_the_type_and_the_opt_in(tmp_path, monkeypatch):
    path = str(tmp_path / 'foreign.pth')
    torch.save({'state_dict': {'w': torch.ones(2)}, 'meta': Payload()}, path)
    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', raising=False)
    for check in (check_checkpoint_file, load_checkpoint_file):
        with pytest.raises(CheckpointFileError) as err:
            check(path)
        message = str(err.value)
        assert path in message and f'{__name__}.Payload' in message
        assert 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1' in message and 'truncated' not in message
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')  # the user trusts the file
    assert isinstance(load_checkpoint_file(path)['meta'], Payload)


def bad_files(tmp_path):
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.randn(1000)}}, good)
    data = good.read_bytes()
    files = {'half': data[:len(data) // 2], 'last bytes cut': data[:-10], 'empty': b'',
             'text': b'epoch 12, loss 0.3\n', 'random': np.random.default_rng(0).bytes(4096)}
    for name, content in files.items():
        (tmp_path / f'{name}.pth').write_bytes(content)
    return [str(tmp_path / f'{name}.pth') for name in files]


def test_truncated_or_foreign_files_are_named_and_explained(tmp_path):
    for path in bad_files(tmp_path):
        for check in (check_checkpoint_file, load_checkpoint_file):
            with pytest.raises(CheckpointFileError, match='truncated or not a checkpoint') as err:
                check(path)
            assert path in str(err.value)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        check_checkpoint_file(str(tmp_path / 'missing.pth'))
