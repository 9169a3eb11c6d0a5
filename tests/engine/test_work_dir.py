"""A damaged work dir still resumes: an empty, blank or dangling ``last_checkpoint``, a
truncated newest checkpoint, a cut log line, temporary files of a dead writer."""
import json
import logging
import os
import subprocess
import sys

import pytest
import torch

from swinv2_mm.engine import hooks as hooks_module
from swinv2_mm.engine.work_dir import (LAST_CHECKPOINT, NoReadableCheckpointError,
                                       newest_readable_checkpoint, read_last_checkpoint,
                                       remove_stale_temporaries, write_last_checkpoint)


def checkpoint(path, iteration, age=0):
    """A small real checkpoint file written ``age`` seconds in the past."""
    torch.save(dict(meta=dict(iter=iteration), state_dict=dict(w=torch.ones(256))), path)
    stamp = os.path.getmtime(path) - age
    os.utime(path, (stamp, stamp))
    return str(path)


def truncate(path):
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:len(data) // 2])


@pytest.fixture
def work(tmp_path):
    """iter_4.pth and, newer, iter_8.pth, named by last_checkpoint."""
    checkpoint(tmp_path / 'iter_4.pth', 4, age=10)
    write_last_checkpoint(str(tmp_path), checkpoint(tmp_path / 'iter_8.pth', 8))
    return tmp_path


@pytest.fixture
def warnings(caplog):
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO)
    yield caplog
    logger.removeHandler(caplog.handler)


def test_last_checkpoint_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    write_last_checkpoint(str(tmp_path), '/runs/iter_4.pth')

    def crash(src, dst):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, 'replace', crash)
    with pytest.raises(KeyboardInterrupt):
        write_last_checkpoint(str(tmp_path), '/runs/iter_8.pth')
    assert sorted(os.listdir(tmp_path)) == [LAST_CHECKPOINT]  # no temporary file left
    assert read_last_checkpoint(str(tmp_path)) == '/runs/iter_4.pth'


def test_the_named_checkpoint_is_resumed_when_it_opens(work):
    assert newest_readable_checkpoint(str(work)) == str(work / 'iter_8.pth')


@pytest.mark.parametrize('content', ['', '  \n', None, 'dangling'])
def test_an_empty_blank_absent_or_dangling_last_checkpoint_falls_back(work, content):
    """An empty last_checkpoint (written in place by a process killed at that moment) is no
    checkpoint; mmengine would resume from ''."""
    if content is None:
        os.remove(work / LAST_CHECKPOINT)
    else:
        (work / LAST_CHECKPOINT).write_text(str(work / 'iter_12.pth') if content == 'dangling'
                                            else content)
    if content in ('', '  \n', None):
        assert read_last_checkpoint(str(work)) is None
    assert newest_readable_checkpoint(str(work)) == str(work / 'iter_8.pth')


def test_a_truncated_newest_checkpoint_gives_way_to_the_one_before(work, warnings):
    truncate(work / 'iter_8.pth')
    assert newest_readable_checkpoint(str(work)) == str(work / 'iter_4.pth')
    said = warnings.text
    assert f'{work / "iter_8.pth"} cannot be resumed from' in said
    assert f'resuming from {work / "iter_4.pth"} instead' in said
    assert (work / 'iter_8.pth').exists()  # the damaged file is left for the user


def test_no_checkpoint_at_all_is_a_fresh_start(tmp_path):
    assert newest_readable_checkpoint(str(tmp_path)) is None
    (tmp_path / LAST_CHECKPOINT).write_text('')
    assert newest_readable_checkpoint(str(tmp_path)) is None


def test_checkpoints_none_of_which_opens_are_refused_by_name(work):
    truncate(work / 'iter_8.pth')
    (work / 'iter_4.pth').write_bytes(b'not a checkpoint')
    with pytest.raises(NoReadableCheckpointError) as err:
        newest_readable_checkpoint(str(work))
    assert 'iter_8.pth' in str(err.value) and 'iter_4.pth' in str(err.value)


def dead_pid():
    process = subprocess.Popen([sys.executable, '-c', 'pass'])
    process.wait()
    return process.pid


def test_only_temporary_files_of_dead_writers_are_removed(tmp_path):
    vis = tmp_path / '20260101_000000' / 'vis_data'
    vis.mkdir(parents=True)
    dead = dead_pid()
    stale = [tmp_path / f'iter_8.pth.tmp-{dead}', tmp_path / f'last_checkpoint.tmp-{dead}',
             vis / f'scalars.json.tmp-{dead}']
    kept = [tmp_path / f'iter_8.pth.tmp-{os.getpid()}',  # a live writer (this process)
            tmp_path / f'iter_8.pth.tmp-{os.getppid()}',
            tmp_path / f'notes.tmp-{dead}x', tmp_path / 'iter_8.pth.tmp-', tmp_path / 'iter_4.pth',
            tmp_path / '20260101_000000' / f'config.py.tmp-{dead}']  # not a folder we write
    for path in stale + kept:
        path.write_text('x')
    (tmp_path / f'folder.tmp-{dead}').mkdir()  # a folder is not our temporary file
    removed = remove_stale_temporaries(str(tmp_path))
    assert sorted(removed) == sorted(str(p) for p in stale)
    assert all(p.exists() for p in kept) and (tmp_path / f'folder.tmp-{dead}').is_dir()


def test_log_trimming_skips_a_cut_line_of_an_earlier_run(tmp_path):
    path = tmp_path / 'scalars.json'
    lines = [json.dumps(dict(step=s, loss=1.0 / s)) for s in range(1, 7)]
    path.write_text('\n'.join(lines[:5]) + '\n' + lines[5][:12])  # killed while writing step 6
    hooks_module._drop_steps_after(str(path), 4)
    assert [json.loads(line)['step'] for line in path.read_text().splitlines()] == [1, 2, 3, 4]
    path.write_text('\n'.join(lines[:3]) + '\n{"step": 3, "lo\n' + lines[3] + '\n')
    hooks_module._drop_steps_after(str(path), 8)  # a cut line in the middle
    assert [json.loads(line)['step'] for line in path.read_text().splitlines()] == [1, 2, 3, 4]
