"""The toolboxes' own tools/train.py (shipped in the mmdet, mmseg and mmaction2 wheels) train the
demo configs with nothing but the configs' ``custom_imports``: ``import swinv2_mm`` alone must
register the backbones and datasets, and allow-list mmengine's checkpoint types so that
``--resume`` loads under torch's weights-only default. Their tools/test.py then evaluates the
checkpoint with the test loop's ``fp16=True`` (bfloat16 autocast on a CPU)."""
import glob
import importlib.util
import json
import math
import os

import pytest

from swinv2_mm.checkpoint.files import read_runner_checkpoint
from tests.helpers import ROOT, run_tool, scalars

DEMOS = os.path.join(ROOT, 'configs', 'demo')
# The config entries that generate the demo data: all of one config's must agree, or the
# second to be built regenerates the data under the first.
GENERATED = {
    'mmdet': ('train_dataloader.dataset', 'val_dataloader.dataset', 'val_evaluator'),
    'mmseg': ('train_dataloader.dataset', 'val_dataloader.dataset'),
    'mmaction': ('train_dataloader.dataset', 'val_dataloader.dataset'),
}
TESTED = {
    'mmdet': ('test_dataloader.dataset', 'test_evaluator'),
    'mmseg': ('test_dataloader.dataset',),
    'mmaction': ('test_dataloader.dataset',),
}
# After a few iterations no box clears mmdet's 0.05 score threshold, and CocoMetric reports
# nothing for an empty result: keep every scored box so that the metric computes.
KEEP_ALL = 'model.test_cfg.rcnn.score_thr=0.0'
# torch's opt-out of the weights-only unpickler, which would make the resume check vacuous
NO_WEIGHTS_ONLY = 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'


@pytest.fixture
def weights_only_env(env):
    """The tools' environment, with torch's default (weights-only) loading whatever the
    user's shell says, so that ``--resume`` depends on swinv2_mm's allow-list."""
    return {k: v for k, v in env.items() if k != NO_WEIGHTS_ONLY}


def toolbox_script(package: str, name: str = 'train') -> str:
    """``<site-packages>/<package>/.mim/tools/<name>.py``, which the wheel ships for mim."""
    spec = importlib.util.find_spec(package)
    assert spec is not None, f'{package} is not installed'
    path = os.path.join(spec.submodule_search_locations[0], '.mim', 'tools', f'{name}.py')
    assert os.path.isfile(path), f'{package} ships no tools/{name}.py at {path}'
    return path


def train(package: str, config: str, work, env, iters: int, *flags: str, validate: bool = True,
          options: tuple = ()):
    """The toolbox's script, run from the work dir as a user would: ``iters`` iterations on 8
    generated training samples, logging every iteration, one checkpoint at the end, then
    (``validate``) validation on 4 samples, which IterBasedTrainLoop runs at the last
    iteration whatever the val_interval. ``options`` are further ``--cfg-options``."""
    data = [f'{entry}.generate.{key}' for entry in GENERATED[package]
            for key in ('num_train=8', 'num_val=4')]
    cfg_options = [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
                   'default_hooks.logger.interval=1',
                   f'default_hooks.checkpoint.interval={iters}', 'param_scheduler.0.end=2',
                   'randomness.seed=0', *data, *options]
    if not validate:
        cfg_options.append(f'train_cfg.val_begin={iters + 1}')
    work.mkdir(parents=True, exist_ok=True)
    return run_tool([toolbox_script(package), os.path.join(DEMOS, config),
                     '--work-dir', str(work), *flags, '--cfg-options', *cfg_options],
                    env, str(work))


def evaluate_in_low_precision(package: str, config: str, work, env, iters: int,
                              *options: str) -> str:
    """The toolbox's own test.py on the checkpoint of iteration ``iters`` with its test loop's
    ``fp16=True``, on 2 generated samples; returns what it printed."""
    data = [f'{entry}.generate.{key}' for entry in TESTED[package]
            for key in ('num_train=8', 'num_val=4')]
    out = run_tool([toolbox_script(package, 'test'), os.path.join(DEMOS, config),
                    str(work / f'iter_{iters}.pth'), '--work-dir', str(work / 'test'),
                    '--cfg-options', 'test_cfg.fp16=True', 'test_dataloader.dataset.indices=2',
                    *data, *options], env, str(work))
    return out.stdout + out.stderr


def losses_by_step(records) -> dict:
    return {r['step']: r['loss'] for r in records if 'loss' in r}


def newest_run_records(work) -> list:
    """The scalars of the newest run in ``work`` alone (each run logs into its own folder)."""
    newest = sorted(glob.glob(os.path.join(str(work), '*', 'vis_data', 'scalars.json')))[-1]
    with open(newest) as f:
        return [json.loads(line) for line in f]


def assert_trained(work, iters: int) -> list:
    """A checkpoint of the last iteration that swinv2_mm's reader accepts as data (weights
    only, contents checked), and a finite loss logged at every iteration."""
    assert (work / f'iter_{iters}.pth').is_file()
    checkpoint = read_runner_checkpoint(str(work / f'iter_{iters}.pth'))
    assert {'meta', 'state_dict', 'message_hub', 'optimizer'} <= set(checkpoint)
    records = scalars(work)
    losses = losses_by_step(records)
    assert sorted(losses) == list(range(1, iters + 1)), sorted(losses)
    assert all(math.isfinite(loss) for loss in losses.values()), losses
    return records


def test_mmdet_train_script_trains_then_resumes_from_its_checkpoint(weights_only_env, tmp_path):
    work = tmp_path / 'work'
    train('mmdet', 'cascade_swinv2_shapes_demo.py', work, weights_only_env, 2, validate=False)
    assert_trained(work, 2)
    # the checkpoint holds mmengine types that torch alone refuses to load weights-only, so
    # the resume below loads it only through swinv2_mm's allow-list
    refused = run_tool(['-c', 'import sys, torch; torch.load(sys.argv[1], weights_only=True)',
                        str(work / 'iter_2.pth')], weights_only_env, str(tmp_path), check=False)
    assert refused.returncode != 0 and 'Unsupported global' in refused.stderr, refused.stderr

    out = train('mmdet', 'cascade_swinv2_shapes_demo.py', work, weights_only_env, 4, '--resume',
                options=(KEEP_ALL,))
    assert 'resumed epoch: 0, iter: 2' in out.stdout + out.stderr
    # the resumed run trained iterations 3 and 4 only: it started from the checkpoint
    assert sorted(losses_by_step(newest_run_records(work))) == [3, 4]
    records = assert_trained(work, 4)
    assert any('coco/bbox_mAP' in r for r in records)  # the demo's ShapesCocoMetric ran
    printed = evaluate_in_low_precision('mmdet', 'cascade_swinv2_shapes_demo.py', work,
                                        weights_only_env, 4, KEEP_ALL)
    assert 'coco/segm_mAP:' in printed


def test_mmseg_train_and_test_scripts(env, tmp_path):
    train('mmseg', 'upernet_swinv2_shapes_demo.py', tmp_path, env, 2)
    records = assert_trained(tmp_path, 2)
    assert any('mIoU' in r for r in records)
    printed = evaluate_in_low_precision('mmseg', 'upernet_swinv2_shapes_demo.py', tmp_path, env, 2)
    assert 'mIoU:' in printed


def test_mmaction_train_and_test_scripts(env, tmp_path):
    train('mmaction', 'video_swinv2_shapes_demo.py', tmp_path, env, 2)
    records = assert_trained(tmp_path, 2)
    assert any('acc/top1' in r for r in records)
    printed = evaluate_in_low_precision('mmaction', 'video_swinv2_shapes_demo.py', tmp_path, env,
                                        2)
    assert 'acc/top1:' in printed
