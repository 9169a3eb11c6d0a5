"""The generated-dataset spec: folder and stamp share one version, and generation runs once."""
import json
import os
import re

import pytest

from swinv2_mm.datasets.generation import STAMP_NAME, GeneratedData

# (module, spec, version): the versions pin the default folders that configs and the README use.
SPECS = [('shapes_coco', 'SHAPES_COCO', 1), ('shapes_ade', 'SHAPES_ADE', 3),
         ('shapes_motion', 'SHAPES_MOTION', 5)]


def file_states(root):
    """(path, inode, mtime) of every file under ``root``: unchanged when nothing is rewritten."""
    return sorted((os.path.join(folder, name), os.stat(os.path.join(folder, name)).st_ino,
                   os.stat(os.path.join(folder, name)).st_mtime_ns)
                  for folder, _, names in os.walk(root) for name in names)


@pytest.mark.parametrize('module_name, spec_name, version', SPECS)
def test_default_folder_and_stamp_carry_one_version_and_a_second_call_does_nothing(
        tmp_path, monkeypatch, module_name, spec_name, version):
    module = pytest.importorskip(f'swinv2_mm.datasets.{module_name}')
    spec = getattr(module, spec_name)
    monkeypatch.setenv('SWINV2_MM_DATA', str(tmp_path))
    root = module.default_data_root()
    assert root == str(tmp_path / f'{spec.name}_v{version}')

    params = dict(num_train=1, num_val=1, image_size=32)
    if 'num_frames' in spec.defaults:
        params['num_frames'] = 2
    assert spec.generate(**params) == root
    with open(os.path.join(root, STAMP_NAME)) as f:
        stamp = json.load(f)
    folder_version = re.fullmatch(r'.+_v(\d+)', os.path.basename(root)).group(1)
    assert stamp['format'] == f'{spec.name}/{folder_version}'

    before = file_states(root)
    assert spec.generate(root, **params) == root
    assert file_states(root) == before
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(root)]


def test_parameters_bind_like_a_signature_and_each_split_is_written_once(tmp_path):
    calls = []

    def write_split(root, split, count, size):
        calls.append((split, count, size))
        open(os.path.join(root, split), 'w').close()

    spec = GeneratedData('toy', version=2, write_split=write_split,
                         defaults=dict(num_train=3, num_val=1, size=8))
    root = str(tmp_path / 'toy')
    assert spec.generate(root, 5, size=4) == root
    assert calls == [('train', 5, 4), ('val', 1, 4)]
    assert spec.generate(root, num_train=5, size=4) == root
    assert len(calls) == 2, 'the same parameters were generated twice'
    with pytest.raises(TypeError):
        spec.generate(root, colour='red')
    with pytest.raises(ValueError, match='num_val'):
        GeneratedData('toy', version=1, write_split=write_split, defaults=dict(num_train=1))
