"""Test-time window search: a checkpoint evaluated at other windows and input sizes.

    python tools/window_search.py CONFIG CHECKPOINT --windows 8 12 16 24 [--sizes 192 256]
        [--subset N] [--work-dir DIR] [--json OUT.json] [--plot OUT.png] [--cfg-options ...]

Every window W (every stage W; for video the spatial window, the temporal one kept) and
input size S (the test pipeline's resize short side, for video its crop; default: the
config's own) is evaluated with mmengine's test loop, the config's test data loader and
evaluator, as ``tools/test.py`` does; the log-CPB keeps the normalisation of training (see
``swinv2_mm/cli/window_search.py``). Prints a table, draws the metric against the window
and prints the ``tools/test.py`` command of the best setting.
"""
import argparse
import contextlib
import copy
import gc
import json
import os
import os.path as osp
import shlex
import time
import zipfile
from typing import Dict, List, NamedTuple, Optional

from mmengine.config import DictAction

from swinv2_mm.checkpoint.files import load_checkpoint_file
from swinv2_mm.cli import window_search as ws
from swinv2_mm.cli.args import number_type
from swinv2_mm.cli.checkpoints import check_checkpoint_paths
from swinv2_mm.cli.config import load_config
from swinv2_mm.cli.corrupt_images import use_checked_image_loading
from swinv2_mm.cli.data_checks import DataNotFoundError, check_data_paths
from swinv2_mm.engine import build_runner
from swinv2_mm.models import ConfigError

# the metrics reported per toolbox, the first present one ranks the settings
KNOWN_METRICS = ('coco/bbox_mAP', 'coco/segm_mAP', 'mIoU', 'acc/top1')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file (as tools/test.py takes it)')
    parser.add_argument('--windows', type=number_type(int, 1), nargs='+', required=True,
                        help='windows to test: every stage (video: spatial) window is W')
    parser.add_argument('--sizes', type=number_type(int, 1), nargs='+',
                        help="input sizes to test: the test Resize's short side (video: the "
                             "crop size); default: the config's own")
    parser.add_argument('--subset', type=number_type(int, 1),
                        help='evaluate the first N test samples only (default: all)')
    parser.add_argument('--work-dir', help='folder for the runs\' logs (default: '
                                           'work_dirs/window_search/CONFIG_NAME)')
    parser.add_argument('--json', help='write the table, settings and command here')
    parser.add_argument('--plot', help='draw the metric against the window here (default: '
                                       'WORK_DIR/window_search.png)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, key=value, before the search')
    return parser.parse_args(argv)


class Setting(NamedTuple):
    """One evaluated combination: per-stage windows, their label and the input size."""
    windows: tuple
    label: object  # the searched int, or the config's own per-stage windows as text
    size: Optional[int]  # None: the pipeline has no size step (the config's own input)


class Plan(NamedTuple):
    """What the search runs: the config (subset applied), the normalisers, the settings."""
    cfg: object
    own: Setting
    settings: List[Setting]
    normalisers: list
    num_axes: int


def read_checkpoint(path: str) -> Optional[dict]:
    """The checkpoint, memory-mapped (None for a URL, which tools/test.py downloads)."""
    if '://' in path:
        return None
    return load_checkpoint_file(path, mmap=zipfile.is_zipfile(path))


def trained_windows(cfg, checkpoint: Optional[dict]) -> ws.StageWindows:
    """The windows training used: the config's, with any the checkpoint's recorded config
    (``meta.cfg``) says otherwise replacing them (logged)."""
    backbone = dict(cfg.model.backbone)
    recorded = ws.recorded_backbone_windows(checkpoint) if checkpoint else {}
    differ = {k: v for k, v in recorded.items() if backbone.get(k) != v}
    if differ:
        print(f'window_search: the checkpoint was trained with {differ}, the config says '
              f'{ {k: backbone.get(k) for k in differ} }; the log-CPB normalisers follow the '
              f'checkpoint')
    return ws.resolve_windows(dict(backbone, **recorded))


def normalisers_of_training(cfg, checkpoint: Optional[dict]) -> list:
    """Per-stage log-CPB normalisers of training, from the window geometry at the training
    input; the checkpoint's window buffers win where it keeps them. Each step is printed."""
    trained = trained_windows(cfg, checkpoint)
    size, source = ws.training_input_size(cfg, trained.num_axes)
    attended = trained.attention_windows(size)
    derived = ws.training_normalisers(trained, size)
    print(f'window_search: trained at windows {ws.format_windows(trained.window_sizes)}, '
          f'pretrained_window_sizes {ws.format_windows(trained.pretrained_window_sizes)}; '
          f'training input {"x".join(map(str, size))} ({source}), windows attended '
          f'{ws.format_windows(attended)}')
    for i, (w, p, a) in enumerate(zip(trained.window_sizes, trained.pretrained_window_sizes,
                                      attended)):
        if a != w and not all(p):
            print(f'window_search: stage {i}: pretrained window 0 normalised by the window '
                  f'shrunk to its map, {ws.format_windows([a])}, not {ws.format_windows([w])}')
    found, what = ws.checkpoint_normalisers(checkpoint, trained.num_axes) if checkpoint \
        else (None, 'a remote checkpoint is not inspected')
    if found is not None and found != derived:
        print(f'window_search: {what}; using them instead of {ws.format_windows(derived)}')
        derived = found
    else:
        print(f'window_search: {what}; normalisers from the window geometry')
    print(f'window_search: every run sets model.backbone.pretrained_window_sizes='
          f'{ws.format_windows(derived)}')
    return derived


def window_label(windows: List[tuple]):
    """The searched int a per-stage window list stands for, else its config text."""
    spatial = {w[-2:] for w in windows}
    temporal = {w[:-2] for w in windows}
    if len(spatial) == 1 and len(temporal) == 1 and len(set(next(iter(spatial)))) == 1:
        return next(iter(spatial))[0]
    return ws.format_windows(windows)


def plan_search(args) -> Plan:
    """Every check before a model is built, then the normalisers and the settings (the
    config's own first, then window by window, size by size)."""
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    if args.work_dir is None:
        cfg.work_dir = osp.join('work_dirs', 'window_search',
                                osp.splitext(osp.basename(args.config))[0])
    ws.backbone_class(cfg)
    if not (cfg.get('test_dataloader') and cfg.get('test_evaluator') and cfg.get('test_cfg')):
        raise ConfigError('the config has no test_dataloader, test_evaluator or test_cfg, '
                          'which tools/test.py and the window search evaluate with')
    pipeline = cfg.test_dataloader.dataset.get('pipeline', [])
    own_size = ws.own_input_size(pipeline)
    if args.sizes:
        ws.resized_pipeline(pipeline, args.sizes[0])  # refuses a pipeline without a size step
    check_data_paths(cfg, 'test')
    use_checked_image_loading(cfg)
    cfg.load_from = args.checkpoint
    check_checkpoint_paths(cfg, training=False)
    if args.subset:
        cfg.test_dataloader.dataset.indices = args.subset
    if 'log_level' not in (args.cfg_options or {}):
        cfg.log_level = 'WARNING'  # the table is the output; logs go to the work dir
    checkpoint = read_checkpoint(args.checkpoint)
    normalisers = normalisers_of_training(cfg, checkpoint)
    del checkpoint
    own_windows = ws.resolve_windows(cfg.model.backbone).window_sizes
    own = Setting(tuple(own_windows), window_label(own_windows), own_size)
    settings = [own]
    for window in args.windows:
        windows = tuple(ws.search_windows(window, own_windows))
        for size in args.sizes or [own_size]:
            setting = Setting(windows, window, size)
            if setting.windows == own.windows and size == own_size:
                continue
            settings.append(setting)
    settings.sort(key=lambda s: s.windows != own.windows)  # the own window's runs first
    return Plan(cfg, own, settings, normalisers, len(own_windows[0]))


def config_at_window(plan: Plan, windows: tuple):
    """The config of one window: every stage's window and the training normalisers."""
    cfg = copy.deepcopy(plan.cfg)
    cfg.model.backbone.window_size = [tuple(w) for w in windows]
    cfg.model.backbone.pretrained_window_sizes = [tuple(p) for p in plan.normalisers]
    label = window_label(list(windows))
    cfg.work_dir = osp.join(plan.cfg.work_dir, f'window_{label}'.replace(' ', ''))
    cfg.experiment_name = f'window_search_{label}_{time.strftime("%Y%m%d_%H%M%S")}'
    return cfg


def size_loader(cfg, size: Optional[int]):
    """The test data loader config at input size ``size`` (unchanged for None or the own)."""
    loader = copy.deepcopy(cfg.test_dataloader)
    if size is not None:
        loader.dataset.pipeline = ws.resized_pipeline(loader.dataset.pipeline, size)[0]
    return loader


def evaluate(runner, cfg, size: Optional[int], log_path: str) -> Dict[str, float]:
    """The test loop at one input size on a built runner (model and checkpoint loaded once
    per window); what the evaluators print goes to ``log_path``."""
    runner._test_dataloader = size_loader(cfg, size)  # mmengine 0.10.7 has no setter
    runner._test_loop = copy.deepcopy(cfg.test_cfg)
    with open(log_path, 'a') as log, contextlib.redirect_stdout(log):
        metrics = runner.test()
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}


def backbone_windows(runner) -> dict:
    """The windows of the backbone the runner built, as the model holds them."""
    backbone = runner.model.backbone
    return dict(window_sizes=[list(w) for w in backbone.window_sizes],
                pretrained_window_sizes=[list(p) for p in backbone.pretrained_window_sizes])


def size_text(size: Optional[int]) -> str:
    """A size as the table writes it: the int, or 'config' for the pipeline as it is."""
    return 'config' if size is None else str(size)


def run_search(plan: Plan) -> List[dict]:
    """Evaluates every setting, one runner per window; returns one row per setting."""
    rows = []
    by_window: Dict[tuple, List[Setting]] = {}
    for setting in plan.settings:
        by_window.setdefault(setting.windows, []).append(setting)
    for windows, settings in by_window.items():
        cfg = config_at_window(plan, windows)
        os.makedirs(cfg.work_dir, exist_ok=True)
        try:
            runner = build_runner(cfg)
        except ConfigError as err:
            raise SystemExit(f'error: {err}')
        for setting in settings:
            start = time.perf_counter()
            metrics = evaluate(runner, cfg, setting.size,
                               osp.join(cfg.work_dir, f'size_{size_text(setting.size)}.log'))
            row = dict(window=setting.label, size=setting.size, own=setting == plan.own,
                       metrics=metrics, seconds=round(time.perf_counter() - start, 1),
                       **backbone_windows(runner))
            rows.append(row)
            print(f'window_search: window {row["window"]}, size {size_text(row["size"])}: '
                  + ', '.join(f'{k} {v:g}' for k, v in metrics.items() if k in KNOWN_METRICS)
                  + f' ({row["seconds"]} s)', flush=True)
        del runner
        gc.collect()
    return rows


def chosen_metrics(rows: List[dict]) -> List[str]:
    """The metrics to tabulate: the known ones present (box and mask AP, mIoU, top-1),
    else all."""
    names = rows[0]['metrics']
    return [k for k in KNOWN_METRICS if k in names] or sorted(names)


def add_deltas(rows: List[dict], metrics: List[str]) -> None:
    """Each row's difference to the config's own setting, per metric."""
    own = next(r for r in rows if r['own'])
    for row in rows:
        row['delta'] = {k: round(row['metrics'][k] - own['metrics'][k], 6) for k in metrics}


def best_row(rows: List[dict], metric: str) -> dict:
    """The highest ``metric``; on a tie the config's own setting, then the smallest window
    and size (the cheapest)."""
    def key(row):
        cost = (row['window'] if isinstance(row['window'], int) else 0, row['size'] or 0)
        return (-row['metrics'][metric], not row['own'], cost)
    return min(rows, key=key)


def format_table(rows: List[dict], metrics: List[str]) -> str:
    """A markdown table: window, size, each metric with its delta, seconds."""
    head = ['window', 'size'] + [c for k in metrics for c in (k, 'Δ')] + ['seconds']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for row in sorted(rows, key=lambda r: (str(type(r['window'])), r['window'], r['size'] or 0)):
        own = ' (own)' if row['own'] else ''
        cells = [f'{row["window"]}{own}', size_text(row['size'])]
        for k in metrics:
            cells += [f'{row["metrics"][k]:g}', f'{row["delta"][k]:+.4g}']
        lines.append('| ' + ' | '.join(cells + [str(row['seconds'])]) + ' |')
    return '\n'.join(lines)


def option_token(key: str, value) -> str:
    """One ``--cfg-options`` entry, quoted for a shell."""
    text = value if isinstance(value, str) else ws.format_option(value)
    return shlex.quote(f'{key}={text}')


def test_command(args, plan: Plan, row: dict) -> str:
    """The tools/test.py command that evaluates ``row``'s setting on the whole test set."""
    options = dict(args.cfg_options or {})
    options['model.backbone.window_size'] = ws.format_windows(
        [tuple(w) for w in row['window_sizes']])
    options['model.backbone.pretrained_window_sizes'] = ws.format_windows(
        [tuple(p) for p in row['pretrained_window_sizes']])
    if row['size'] is not None:
        changed = ws.resized_pipeline(plan.cfg.test_dataloader.dataset.pipeline, row['size'])[1]
        for key, value in changed.items():
            options[f'test_dataloader.dataset.pipeline.{key}'] = value
    tokens = [option_token(k, v) for k, v in options.items()]
    return ' '.join(['python tools/test.py', shlex.quote(args.config),
                     shlex.quote(args.checkpoint), '--cfg-options'] + tokens)


def draw(rows: List[dict], metrics: List[str], path: str, title: str) -> None:
    """Each metric against the window, one line per input size, the own setting starred."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics) + 1.5, 4), squeeze=False)
    searched = [r for r in rows if isinstance(r['window'], int)]
    for ax, metric in zip(axes[0], metrics):
        for size in sorted({r['size'] or 0 for r in searched}):
            line = sorted((r for r in searched if (r['size'] or 0) == size),
                          key=lambda r: r['window'])
            ax.plot([r['window'] for r in line], [r['metrics'][metric] for r in line],
                    marker='o', label=f'size {size or "(config)"}')
        for r in searched:
            if r['own']:
                ax.plot(r['window'], r['metrics'][metric], marker='*', markersize=16,
                        color='black', linestyle='none', label='config\'s own')
        ax.set_xscale('log', base=2)
        windows = sorted({r['window'] for r in searched})
        ax.set_xticks(windows, [str(w) for w in windows])
        ax.set_xlabel('window')
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc='center left', bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(args, plan: Plan, rows: List[dict], wall: float) -> dict:
    """Prints the table and the best setting's command, draws the plot, writes the JSON."""
    metrics = chosen_metrics(rows)
    add_deltas(rows, metrics)
    best = best_row(rows, metrics[0])
    command = test_command(args, plan, best)
    print(format_table(rows, metrics))
    print(f'best by {metrics[0]}: window {best["window"]}, size {size_text(best["size"])} '
          f'({best["delta"][metrics[0]]:+.4g} over the config\'s own'
          f'{"; on a subset of " + str(args.subset) + " samples" if args.subset else ""})')
    print(f'reproduce it with: {command}')
    plot = args.plot or osp.join(plan.cfg.work_dir, 'window_search.png')
    draw(rows, metrics, plot, f'{osp.basename(args.config)}: {osp.basename(args.checkpoint)}'
         + (f', first {args.subset} samples' if args.subset else '')
         + f'\npretrained_window_sizes={ws.format_windows(plan.normalisers)} in every run')
    print(f'plot: {plot}')
    result = dict(config=args.config, checkpoint=args.checkpoint, subset=args.subset,
                  metrics=metrics, normalisers=ws.format_windows(plan.normalisers),
                  own=dict(window=plan.own.label, size=plan.own.size), rows=rows,
                  best=dict(window=best['window'], size=best['size']), command=command,
                  wall_seconds=round(wall, 1))
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)
    return result


def main(argv=None) -> dict:
    """Checks, plans, evaluates and reports; returns what the JSON holds."""
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        plan = plan_search(args)
    except (ConfigError, DataNotFoundError, ValueError, FileNotFoundError) as err:
        raise SystemExit(f'error: {err}')
    rows = run_search(plan)
    return report(args, plan, rows, time.perf_counter() - start)


if __name__ == '__main__':
    main()
