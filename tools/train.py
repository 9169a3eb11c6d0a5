"""Trains a detection, segmentation or video config (mmdet / mmseg / mmaction2 scope).

    python tools/train.py configs/cascade_swinv2_g_coco.py [--work-dir DIR] [--amp] [--resume]

SIGTERM or Ctrl-C stops training after the iteration in progress (or the validation batch in
progress), saves it and exits with status 0, leaving WORK_DIR/preempted.json (the iteration and
the checkpoint) until the next run in that work dir starts; --resume continues. A second signal,
2 s or more after the first, aborts at once without that checkpoint.
"""
import argparse
import os

from swinv2_mm.checkpoint import CheckpointFileError, CheckpointFitError
from swinv2_mm.cli.args import add_common_args
from swinv2_mm.cli.checkpoints import check_checkpoint_paths, set_resume
from swinv2_mm.cli.config import load_config
from swinv2_mm.cli.corrupt_images import use_checked_image_loading
from swinv2_mm.cli.data_checks import DataNotFoundError, check_data_paths
from swinv2_mm.cli.distributed import finish_distributed, prepare_distributed
from swinv2_mm.cli.precision import enable_amp
from swinv2_mm.engine import build_runner
from swinv2_mm.models import ConfigError


def parse_args():
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='config file')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision: bfloat16 on a CPU or a GPU that supports it, else '
                             'float16 with loss scaling; validation too')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate with the total batch size')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from the last checkpoint in the work dir, or from a path')
    parser.add_argument('--skip-corrupt-images', action='store_true',
                        help='skip corrupt or unreadable training images (logged, counted and '
                             'listed in WORK_DIR/skipped_images.txt) instead of stopping')
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
        check_data_paths(cfg, 'train')
        use_checked_image_loading(cfg, args.skip_corrupt_images)
        if args.amp:
            enable_amp(cfg)
        set_resume(cfg, args.resume)
        check_checkpoint_paths(cfg)
    except (DataNotFoundError, RuntimeError, ValueError, FileNotFoundError) as err:
        raise SystemExit(f'error: {err}')
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    try:
        runner = build_runner(cfg)
    except ConfigError as err:  # a backbone argument: the message names it and the fix
        raise SystemExit(f'error: {err}')
    try:
        runner.train()
    except (CheckpointFileError, CheckpointFitError) as err:  # read once the model is built
        raise SystemExit(f'error: {err}')
    finish_distributed()


if __name__ == '__main__':
    main()
