"""The tools as a user runs them: a crafted checkpoint given to ``tools/train.py --resume``,
``tools/test.py`` or mmdet's own ``tools/train.py --resume`` (the shipped configs name
swinv2_mm's runner) is refused by name and its payload never runs; a checkpoint of another
architecture is refused by ``tools/test.py`` naming the first weight that does not fit."""
import os

import pytest
import torch

from tests.helpers import ROOT, run_tool
from tests.security.crafted import (checkpoint_pickle, getattr_chain_gadget, marker_code,
                                    write_torch_file)
from tests.tools.test_bad_input import DET_DEMO, SEG_DEMO, TEST, TRAIN, fails_early
from tests.tools.test_toolbox_train_scripts import toolbox_script


@pytest.fixture
def crafted(tmp_path):
    """A runner checkpoint whose message hub runs a payload when deep-copied (as mmengine's
    resume does), and the file that payload would create."""
    marker = tmp_path / 'payload_ran'
    path = write_torch_file(tmp_path / 'iter_8.pth', checkpoint_pickle(
        lambda p: getattr_chain_gadget(p, marker_code(marker)), 'message_hub'))
    yield path
    assert not marker.exists(), 'the payload ran'


def test_train_resume_refuses_a_crafted_checkpoint_before_building(tmp_path, crafted):
    fails_early([TRAIN, SEG_DEMO, '--resume', crafted], tmp_path, None,
                f"checkpoint: '{crafted}' is refused", 'getattr')


def test_mmdet_train_script_resume_refuses_a_crafted_checkpoint(tmp_path, crafted, env):
    out = run_tool([toolbox_script('mmdet'), DET_DEMO, '--work-dir', str(tmp_path / 'work'),
                    '--resume', crafted, '--cfg-options', 'train_cfg.max_iters=1'],
                   env, str(tmp_path), check=False)
    assert out.returncode != 0
    assert f"checkpoint: '{crafted}' is refused" in out.stderr, out.stderr[-3000:]


def test_test_tool_refuses_a_checkpoint_of_another_architecture(tmp_path, env):
    path = tmp_path / 'other_arch.pth'
    # the demo's first weight (its patch embedding) from a model with 96 channels
    torch.save({'state_dict': {'backbone.patch_embed.proj.weight': torch.randn(96, 3, 4, 4)}},
               path)
    out = fails_early([TEST, SEG_DEMO, str(path)], tmp_path, env,
                      f"checkpoint '{path}' does not fit this model: "
                      'backbone.patch_embed.proj.weight is (96, 3, 4, 4) in the checkpoint',
                      runner_built=True)
    assert 'Epoch(test)' not in out.stdout + out.stderr  # nothing was evaluated


@pytest.fixture
def env(tmp_path):
    return dict(os.environ, SWINV2_MM_DATA=str(tmp_path / 'data'))
