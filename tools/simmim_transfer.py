"""What SimMIM pre-training and the log-CPB carry into fine-tuning, measured on the demos.

Fine-tunes the segmentation demo (192 px) from scratch and from a SimMIM demo checkpoint
(128 px, window 8), at window 8 and at window 12, with and without layer-wise lr decay,
for each budget and seed; prints mean and spread of the validation mIoU per arm.

    python tools/train.py configs/demo/simmim_swinv2_shapes_demo.py --work-dir WORK/pretrain
    python tools/simmim_transfer.py WORK/pretrain/iter_1500.pth --json docs/simmim_transfer.json

Every run is ``tools/train.py`` in its own process and work dir; finished runs are kept
(``result.json``), so an interrupted study resumes where it stopped.
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRATCH = 'configs/demo/upernet_swinv2_shapes_demo.py'
FINETUNE = 'configs/demo/upernet_swinv2_shapes_simmim_ft.py'
# arm -> (config, extra --cfg-options); the fine-tuning config decays the lr by layer
ARMS = {
    'scratch, window 8': (SCRATCH, {}),
    'scratch, window 12': (SCRATCH, {'model.backbone.window_size': 12}),
    'SimMIM, window 8': (FINETUNE, {'optim_wrapper.paramwise_cfg.layer_decay_rate': 1.0}),
    'SimMIM, window 8, layer decay 0.95': (FINETUNE, {}),
    'SimMIM, window 12': (FINETUNE, {'model.backbone.window_size': 12,
                                     'optim_wrapper.paramwise_cfg.layer_decay_rate': 1.0}),
    'SimMIM, window 12, layer decay 0.95': (FINETUNE, {'model.backbone.window_size': 12}),
}


def run_options(budget: int, seed: int, checkpoint: str, extra: dict) -> Dict[str, object]:
    """The demo's schedule shrunk to ``budget`` iterations (warm-up 1/12 of it, as the
    demo's 50 of 600), one validation and one checkpoint at the end, and the seed."""
    warmup = max(budget // 12, 1)
    return {'train_cfg.max_iters': budget, 'train_cfg.val_interval': budget,
            'param_scheduler.0.end': warmup, 'param_scheduler.1.begin': warmup,
            'param_scheduler.1.end': budget, 'default_hooks.checkpoint.interval': budget,
            'randomness.seed': seed, 'model.backbone.init_cfg.checkpoint': checkpoint,
            **extra}


def last_metrics(work_dir: str) -> Optional[dict]:
    """The last validation scalars mmengine logged in ``work_dir`` (None when none)."""
    found = None
    for path in sorted(glob.glob(os.path.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                entry = json.loads(line)
                if 'mIoU' in entry:
                    found = entry
    return found


def run_one(arm: str, budget: int, seed: int, checkpoint: str, work_root: str,
            threads: int) -> dict:
    """Trains and validates one arm, budget and seed (or reads its stored result)."""
    work_dir = os.path.join(work_root, arm.replace(', ', '_').replace(' ', '-'),
                            f'iters{budget}_seed{seed}')
    result_file = os.path.join(work_dir, 'result.json')
    if os.path.isfile(result_file):
        with open(result_file) as f:
            return json.load(f)
    config, extra = ARMS[arm]
    options = run_options(budget, seed, checkpoint, extra)
    if config == SCRATCH:
        options = {k: v for k, v in options.items() if 'init_cfg' not in k}
    command = [sys.executable, 'tools/train.py', config, '--work-dir', work_dir,
               '--cfg-options'] + [f'{k}={v}' for k, v in options.items()]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    os.makedirs(work_dir, exist_ok=True)
    with open(os.path.join(work_dir, 'stdout.log'), 'w') as log:
        subprocess.run(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                       check=True)
    metrics = last_metrics(work_dir)
    result = dict(arm=arm, budget=budget, seed=seed, mIoU=metrics['mIoU'],
                  aAcc=metrics['aAcc'])
    with open(result_file, 'w') as f:
        json.dump(result, f)
    return result


def summarise(results: List[dict], budgets: List[int]) -> List[dict]:
    """Mean and sample standard deviation of mIoU per arm and budget."""
    rows = []
    for arm in ARMS:
        for budget in budgets:
            values = [r['mIoU'] for r in results if r['arm'] == arm and r['budget'] == budget]
            if values:
                rows.append(dict(arm=arm, budget=budget, values=values,
                                 mean=statistics.mean(values),
                                 std=statistics.stdev(values) if len(values) > 1 else 0.0))
    return rows


def format_table(rows: List[dict], budgets: List[int]) -> str:
    """A markdown table: one row per arm, one column per budget (mean +- std, n)."""
    lines = ['| fine-tuning | ' + ' | '.join(f'{b} iterations' for b in budgets) + ' |',
             '|---' * (len(budgets) + 1) + '|']
    for arm in ARMS:
        cells = []
        for budget in budgets:
            row = next((r for r in rows if r['arm'] == arm and r['budget'] == budget), None)
            cells.append('' if row is None else
                         f"{row['mean']:.1f} ± {row['std']:.1f} (n={len(row['values'])})")
        lines.append(f'| {arm} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint', help='SimMIM demo checkpoint (iter_*.pth)')
    parser.add_argument('--budgets', type=int, nargs='+', default=[120, 240])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--arms', nargs='+', default=list(ARMS), choices=list(ARMS))
    parser.add_argument('--jobs', type=int, default=2, help='runs at a time')
    parser.add_argument('--threads', type=int, default=1, help='torch threads per run')
    parser.add_argument('--work-dir', default='work_dirs/simmim_transfer')
    parser.add_argument('--json', help='write the runs and the summary here')
    args = parser.parse_args()
    if not os.path.isfile(args.checkpoint):
        raise SystemExit(f'error: checkpoint {args.checkpoint!r} does not exist; pre-train '
                         f'first with configs/demo/simmim_swinv2_shapes_demo.py')
    checkpoint = os.path.abspath(args.checkpoint)
    jobs = [(arm, budget, seed) for budget in args.budgets for seed in args.seeds
            for arm in args.arms]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(
            lambda job: run_one(*job, checkpoint, args.work_dir, args.threads), jobs))
    rows = summarise(results, args.budgets)
    print(format_table(rows, args.budgets))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(checkpoint=args.checkpoint, runs=results, summary=rows), f, indent=1)


if __name__ == '__main__':
    main()
