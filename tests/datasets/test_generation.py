"""The generated-dataset spec: folder and stamp share one version, generation runs once, and
publishing never costs a file that is not an older copy of the same dataset."""
import json
import multiprocessing
import os
import re
import socket
import stat
import threading
import time

import pytest

from swinv2_mm.datasets import generation
from swinv2_mm.datasets.generation import (STAMP_NAME, TEMP_MARKER, DataRootError, GeneratedData,
                                           publish_dataset)

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


# Publishing never costs a user's files: an existing folder is replaced only when it is an
# older copy of the same dataset (its stamp); everything else is refused, byte for byte intact.



def write_toy_split(root, split, count, size):
    os.makedirs(os.path.join(root, split))
    for i in range(count):
        with open(os.path.join(root, split, f'{i}.txt'), 'w') as f:
            f.write(f'{split} {i} ' * size)


def toy(version=2, delay=0.0):
    """A cheap dataset; ``delay`` seconds per split make concurrent builds overlap."""
    def write_split(root, split, count, size):
        time.sleep(delay)
        write_toy_split(root, split, count, size)
    return GeneratedData('toy', version=version, write_split=write_split,
                         defaults=dict(num_train=2, num_val=1, size=3))


def tree(path):
    """Everything under ``path`` without following links: name -> bytes, link target or a
    folder mark, with the permission bits (what a user would miss if it changed)."""
    if os.path.islink(path) or not os.path.isdir(path):
        return {'': entry(path)}
    found = {'': entry(path)}
    for folder, dirs, names in os.walk(path):
        for name in dirs + names:
            full = os.path.join(folder, name)
            found[os.path.relpath(full, path)] = entry(full)
    return found


def entry(path):
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        return ('link', os.readlink(path))
    if stat.S_ISDIR(info.st_mode):
        return ('dir', info.st_mode, info.st_ino)
    with open(path, 'rb') as f:
        return ('file', info.st_mode, info.st_ino, f.read())


@pytest.fixture()
def user_folder(tmp_path):
    """A folder of a user's files, the kind a wrong ``data_root`` points at."""
    root = tmp_path / 'datasets'
    (root / 'coco' / 'annotations').mkdir(parents=True)
    (root / 'notes.txt').write_text('my notes\n')
    (root / 'coco' / 'annotations' / 'instances_train2017.json').write_bytes(b'{"images": []}')
    (root / 'coco' / 'link_to_notes').symlink_to(root / 'notes.txt')
    return str(root)


def refused(root, match, spec=None):
    """Generating ``spec`` (the toy) at ``root`` raises DataRootError naming ``root`` and the
    fix, before anything is built, and changes nothing at ``root`` or beside it."""
    spec = spec or toy()
    parent = os.path.dirname(root)
    before, beside = tree(root), sorted(os.listdir(parent))
    with pytest.raises(DataRootError, match=match) as err:
        spec.generate(root, num_train=1)
    assert f"'{root}' cannot hold the generated dataset 'toy'" in str(err.value)
    assert 'nothing there was moved or deleted' in str(err.value)
    assert 'leave data_root out' in str(err.value) and 'empty or new folder' in str(err.value)
    with pytest.raises(DataRootError):
        spec.check_root(root, num_train=1)  # the tools' check before any model: same answer
    assert tree(root) == before
    assert sorted(os.listdir(parent)) == beside, 'something was written beside the folder'
    return str(err.value)


def test_a_folder_of_user_files_is_refused_untouched(user_folder):
    calls = []
    with pytest.raises(DataRootError):
        publish_dataset(user_folder, dict(format='toy/2'), calls.append)
    assert calls == [], 'the dataset was built before the folder was refused'
    message = refused(user_folder, r"holds 2 entries \('coco', 'notes.txt'\) and no .complete")
    assert 'leave data_root out to generate the data in' in message


@pytest.mark.parametrize('target', ['user folder', 'older copy', 'current copy', 'nothing'])
def test_a_symbolic_link_is_refused_whatever_it_points_at(tmp_path, user_folder, target):
    real = {'user folder': user_folder, 'nothing': str(tmp_path / 'gone'),
            'older copy': toy(version=1).generate(str(tmp_path / 'old'), num_train=1),
            'current copy': toy().generate(str(tmp_path / 'new'), num_train=1)}[target]
    link = str(tmp_path / 'link')
    os.symlink(real, link)
    target_before = tree(real) if os.path.exists(real) else None
    refused(link, f"is a symbolic link \\(to '{real}'\\)")
    assert os.readlink(link) == real
    assert (tree(real) if os.path.exists(real) else None) == target_before


def test_a_stamp_of_another_dataset_is_refused(tmp_path):
    other = GeneratedData('other', version=2, write_split=write_toy_split,
                          defaults=dict(num_train=2, num_val=1, size=3))
    root = other.generate(str(tmp_path / 'data'))
    refused(root, "holds the generated dataset 'other', not 'toy'")
    with open(os.path.join(root, STAMP_NAME), 'w') as f:  # a stamp without a format tag
        json.dump(dict(num_train=2, format_version=1), f)
    refused(root, 'holds a .complete stamp that does not name a dataset')


def test_a_file_is_refused(tmp_path):
    path = tmp_path / 'data'
    path.write_bytes(b'\x00 my data')
    refused(str(path), 'is a file, not a folder')


def test_the_default_folder_is_refused_with_its_own_fix(tmp_path, monkeypatch, user_folder):
    monkeypatch.setenv('SWINV2_MM_DATA', str(tmp_path))
    os.rename(user_folder, toy().default_root())
    with pytest.raises(DataRootError, match='this is the default folder of .toy., in the '
                                            'swinv2_mm data folder') as err:
        toy().generate()
    assert 'set SWINV2_MM_DATA to another folder' in str(err.value)


def test_an_empty_folder_is_used_and_counts_below_one_are_refused(tmp_path):
    root = tmp_path / 'data'
    root.mkdir()
    assert toy().generate(str(root), num_train=1) == str(root)
    assert sorted(os.listdir(root)) == [STAMP_NAME, 'train', 'val']
    assert sorted(os.listdir(tmp_path)) == ['data']
    for count in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match=f'generate.num_val: expected a whole number of '
                                             f'items, at least 1.*got {count!r}'):
            toy().check_root(str(tmp_path / 'new'), num_val=count)


def test_an_older_copy_of_itself_is_replaced(tmp_path):
    root = toy(version=1).generate(str(tmp_path / 'data'), num_train=3)
    open(os.path.join(root, 'train', 'stale.txt'), 'w').close()
    assert toy().generate(root, num_train=1) == root  # a new version
    with open(os.path.join(root, STAMP_NAME)) as f:
        assert json.load(f)['format'] == 'toy/2'
    assert sorted(os.listdir(os.path.join(root, 'train'))) == ['0.txt']
    toy().generate(root, num_train=2)  # the same version with other parameters
    assert sorted(os.listdir(os.path.join(root, 'train'))) == ['0.txt', '1.txt']
    assert sorted(os.listdir(tmp_path)) == ['data']
    assert TEMP_MARKER not in os.listdir(root)


def publish_toy(root, delay):
    toy(delay=delay).generate(root, num_train=2)


@pytest.mark.parametrize('kind', ['processes', 'threads'])
def test_concurrent_publishers_over_an_older_copy_all_end_with_the_dataset(tmp_path, kind):
    """Like data-parallel ranks: several publishers replace an older copy at once (threads
    share a pid, so their temporary folders must still differ)."""
    root = toy(version=1).generate(str(tmp_path / 'data'), num_train=5)
    if kind == 'processes':
        context = multiprocessing.get_context('fork')
        workers = [context.Process(target=publish_toy, args=(root, 0.2)) for _ in range(4)]
    else:
        errors = []

        def publish():
            try:
                publish_toy(root, 0.2)
            except BaseException as err:  # reported below
                errors.append(err)
        workers = [threading.Thread(target=publish) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    if kind == 'processes':
        assert [w.exitcode for w in workers] == [0] * 4
    else:
        assert errors == []
    assert toy().holds(root, num_train=2)
    assert sorted(os.listdir(os.path.join(root, 'train'))) == ['0.txt', '1.txt']
    assert sorted(os.listdir(tmp_path)) == ['data'], 'a temporary folder was left behind'


def test_a_folder_swapped_in_after_the_check_is_put_back_untouched(tmp_path, monkeypatch,
                                                                   user_folder):
    """The race an unlucky user could hit: the old copy is checked, then the folder is
    replaced by a user's before it is deleted. It is renamed aside, found not ours, put back."""
    root = toy(version=1).generate(str(tmp_path / 'data'))
    user_tree = tree(user_folder)
    real_refusal, calls = generation._refusal, []

    def swap_after_checking(path, name):
        reason = real_refusal(path, name)
        calls.append(path)
        if len(calls) == 2:  # the check right before the old copy is discarded
            os.rename(root, str(tmp_path / 'moved_old'))
            os.rename(user_folder, root)
        return reason

    monkeypatch.setattr(generation, '_refusal', swap_after_checking)
    with pytest.raises(DataRootError, match='holds 2 entries'):
        toy().generate(root)
    assert tree(root) == user_tree
    assert sorted(os.listdir(tmp_path)) == ['data', 'moved_old']


def make_temporary_and_die(root, conn):
    conn.send(generation._make_temporary(root))
    os._exit(0)  # killed mid-build: no clean-up runs


def test_only_marked_temporaries_of_dead_processes_are_removed(tmp_path):
    root = str(tmp_path / 'data')
    context = multiprocessing.get_context('fork')
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=make_temporary_and_die, args=(root, send))
    child.start()
    dead = receive.recv()
    child.join()
    open(os.path.join(dead, 'half-written.png'), 'w').close()
    assert re.fullmatch(rf'{re.escape(root)}\.tmp-{child.pid}-[0-9a-f]{{8}}', dead)

    alive = generation._make_temporary(root)  # ours: this process is alive
    kept = {alive: tree(alive)}
    for name, marker in [
            (f'data.tmp-{child.pid}-0badc0de', None),  # the name alone proves nothing
            ('data.tmp-123', None),  # a user's folder named like the old scheme
            (f'data.tmp-{child.pid}-00000001', dict(host='other-node', pid=child.pid,
                                                    root='data')),  # another host's build
            (f'data.tmp-{child.pid}-00000002', dict(host=socket.gethostname(), pid=child.pid,
                                                    root='other'))]:  # another folder's
        path = tmp_path / name
        path.mkdir()
        (path / 'keep.txt').write_text('user data')
        if marker:
            (path / TEMP_MARKER).write_text(json.dumps(marker))
        kept[str(path)] = tree(str(path))
    link = tmp_path / f'data.tmp-{child.pid}-00000003'
    link.symlink_to(dead)  # a link to a stale temporary is not one
    kept[str(link)] = tree(str(link))

    toy().generate(root, num_train=1)
    assert not os.path.exists(dead)
    assert {path: tree(path) for path in kept} == kept
    generation._delete_marked(alive)
    assert not os.path.exists(alive)


def test_a_failed_build_leaves_nothing_behind(tmp_path):
    def write_split(root, split, count, size):
        raise RuntimeError('disk full')
    broken = GeneratedData('toy', version=2, write_split=write_split,
                           defaults=dict(num_train=1, num_val=1, size=1))
    with pytest.raises(RuntimeError, match='disk full'):
        broken.generate(str(tmp_path / 'data'))
    assert os.listdir(tmp_path) == []


def test_semantic_map_folders_follow_the_same_rule(tmp_path):
    shapes_coco = pytest.importorskip('swinv2_mm.datasets.shapes_coco')
    params = dict(num_train=2, num_val=1, image_size=32)
    root = shapes_coco.SHAPES_COCO.generate(str(tmp_path / 'data'), **params)
    maps = os.path.join(root, shapes_coco.SEMANTIC_DIR, 'train')
    os.makedirs(maps)
    with open(os.path.join(maps, 'mine.png'), 'wb') as f:
        f.write(b'user map')
    before = tree(maps)
    for attempt in (shapes_coco.ShapesCocoDataset.check_generated_root,
                    shapes_coco.ShapesCocoDataset.generated_root):
        with pytest.raises(DataRootError, match=f"'{maps}' cannot hold the generated dataset "
                                                f"'stuffthingmaps'"):
            attempt(root, params)
        assert tree(maps) == before


def test_an_early_stamp_in_the_swinv2_mm_data_folder_is_replaced(tmp_path, monkeypatch):
    """A copy stamped by an early format (no dataset name) in swinv2_mm's own data folder is
    an older copy; the same folder elsewhere is refused."""
    from swinv2_mm.datasets.generation import check_publishable
    monkeypatch.setenv('SWINV2_MM_DATA', str(tmp_path / 'cache'))
    for root in (tmp_path / 'cache' / 'shapes_coco_v1', tmp_path / 'mine'):
        root.mkdir(parents=True)
        (root / '.complete').write_text(json.dumps(dict(format_version=1)))
    assert check_publishable(str(tmp_path / 'cache' / 'shapes_coco_v1'), 'shapes_coco')
    with pytest.raises(DataRootError, match='does not name a dataset'):
        check_publishable(str(tmp_path / 'mine'), 'shapes_coco')
