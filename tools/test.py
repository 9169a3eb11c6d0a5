"""Evaluates a checkpoint of a detection, segmentation or video config.

    python tools/test.py CONFIG CHECKPOINT [--amp] [--show-dir DIR]
        [--cfg-options model.backbone.window_size=24]
"""
import argparse
import os

from swinv2_mm.checkpoint import CheckpointFileError, CheckpointFitError
from swinv2_mm.cli.args import add_common_args
from swinv2_mm.cli.checkpoints import check_checkpoint_paths
from swinv2_mm.cli.config import load_config
from swinv2_mm.cli.corrupt_images import use_checked_image_loading
from swinv2_mm.cli.data_checks import DataNotFoundError, check_data_paths
from swinv2_mm.cli.distributed import finish_distributed, prepare_distributed
from swinv2_mm.cli.precision import enable_amp
from swinv2_mm.cli.visualization import enable_show_dir
from swinv2_mm.engine import build_runner
from swinv2_mm.models import ConfigError


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--amp', action='store_true',
                        help='evaluate under autocast: bfloat16 on a CPU or a GPU that supports '
                             'it, else float16')
    parser.add_argument('--out', help='dump the raw predictions to this pickle file')
    parser.add_argument('--show', action='store_true', help='show predictions in a window')
    parser.add_argument('--show-dir', help='save pictures of the predictions in this folder')
    parser.add_argument('--wait-time', type=float, default=2, help='seconds per shown picture')
    add_common_args(parser)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main():
    """The steps, in order; each lives in the ``swinv2_mm.cli`` module it is imported from."""
    args = parse_args()
    try:
        cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
        prepare_distributed(cfg)
        check_data_paths(cfg, 'test')
        use_checked_image_loading(cfg)
        if args.amp:
            enable_amp(cfg, training=False)
        if args.show or args.show_dir:
            enable_show_dir(cfg, args.show_dir, args.show, args.wait_time)
        cfg.load_from = args.checkpoint
        check_checkpoint_paths(cfg, training=False)
    except (DataNotFoundError, ValueError, FileNotFoundError) as err:
        raise SystemExit(f'error: {err}')
    try:
        runner = build_runner(cfg)
    except ConfigError as err:  # a backbone argument: the message names it and the fix
        raise SystemExit(f'error: {err}')
    if args.out:
        from mmengine.evaluator import DumpResults
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
    try:
        runner.test()
    except (CheckpointFileError, CheckpointFitError) as err:  # read once the model is built
        raise SystemExit(f'error: {err}')
    finish_distributed()


if __name__ == '__main__':
    main()
