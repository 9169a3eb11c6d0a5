"""Per-GPU training memory of a SwinV2 config, whether it fits, and which switch would.

    python tools/plan_memory.py CONFIG --gpus 8 --gpu-mem 40 [--precision fp32|bf16|fp16]
        [--sharding none|zero1|fsdp] [--with-cp 1 1 1 0] [--attn-chunk 16] [--batch 1]
        [--size 1536 1536] [--json OUT.json] [--cfg-options ...]

Counts the whole model's parameters exactly (built on the meta device), AdamW's state, the
gradients, DDP's buckets or FSDP's gathered units, and the backbone's activations with the
model of ``swinv2_mm/cli/memory_plan.py`` (validated against measured saved tensors in
docs/memory_plan.md). Neck and head activations are only a rough allowance. Defaults are the
config's own settings; --gpu-mem is in GiB, of which 10% is kept free.
"""
import argparse
import json
import sys

from mmengine.config import DictAction

from swinv2_mm.cli import memory_plan as mp
from swinv2_mm.cli.args import number_type
from swinv2_mm.cli.config import load_config

ROWS = [('parameters', 'parameters (fp32 masters)'), ('gradients', 'gradients (fp32)'),
        ('optimizer', 'optimizer state (AdamW, 2 fp32 moments)'),
        ('ddp_buckets', 'DDP gradient buckets'), ('fsdp_gathered', 'FSDP gathered units'),
        ('activations_kept', 'backbone activations kept for backward'),
        ('activations_transient', 'backbone transient (recompute / chunk / casts)'),
        ('attention_masks', 'cached shift/pad attention masks'),
        ('heads_rough', 'neck + heads activations (ROUGH allowance)')]


def _flag(text):
    if text not in ('0', '1'):
        raise argparse.ArgumentTypeError(f'{text!r}: give 0 or 1 per stage')
    return text == '1'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', nargs='?')
    parser.add_argument('--gpus', type=number_type(int, 0, strict=True), help='GPUs (processes)')
    parser.add_argument('--gpu-mem', type=number_type(float, 0, strict=True),
                        help='memory of one GPU in GiB (10%% of it is kept free)')
    parser.add_argument('--validate', action='store_true',
                        help='instead of planning, measure the activation model\'s cases on '
                             'this CPU and print measured, predicted and error')
    parser.add_argument('--precision', choices=mp.PRECISIONS,
                        help="fp32, or AMP: fp32 master weights, bf16/fp16 activations")
    parser.add_argument('--sharding', choices=mp.SHARDINGS,
                        help='zero1: AdamW state / N; fsdp: parameters, gradients, state / N')
    parser.add_argument('--with-cp', type=_flag, nargs='+',
                        help='activation checkpointing, one 0/1 for all or one per stage')
    parser.add_argument('--attn-chunk', type=number_type(int, 0), nargs='+',
                        help='windows attended at a time (0: all), one for all or per stage')
    parser.add_argument('--batch', type=number_type(int, 0, strict=True),
                        help='training samples per GPU')
    parser.add_argument('--size', type=number_type(int, 0, strict=True), nargs='+',
                        help='input size: H W (or S), video T H W (or T S)')
    parser.add_argument('--json', help='write the plan and the suggestion here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, key=value')
    args = parser.parse_args(argv)
    if not args.validate:
        for name in ('config', 'gpus', 'gpu_mem'):
            if getattr(args, name) is None:
                parser.error(f"{'--' + name.replace('_', '-') if name != 'config' else name} "
                             f'is required')
    return args


def validate(args):
    """The validation table of docs/memory_plan.md, row by row as it is measured."""
    import time
    rows = []
    print(f"{'arch':6s} {'size':>4s} {'win':>3s} {'cp':>2s} {'prec':4s} {'chunk':>5s} {'b':>2s} "
          f"{'measured MiB':>12s} {'predicted MiB':>13s} {'error':>7s} {'s':>5s}")
    for case in mp.VALIDATION_CASES:
        start = time.time()
        row = mp.validation_rows([case])[0]
        rows.append(row)
        print(f"{row['arch']:6s} {row['size']:4d} {row['window']:3d} {int(row['with_cp']):2d} "
              f"{row['precision']:4s} {row['chunk']:5d} {row['batch']:2d} "
              f"{row['measured'] / 2 ** 20:12.1f} "
              f"{row['predicted'] / 2 ** 20:13.1f} {row['error']:+7.1%} "
              f'{time.time() - start:5.1f}', flush=True)
    worst = max(abs(r['error']) for r in rows)
    print(f'max |error| {worst:.1%} over {len(rows)} rows')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(rows=rows, max_abs_error=worst), f, indent=1)
    return rows


def per_stage(name, values, n):
    if values is None:
        return None
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise SystemExit(f'plan_memory: error: {name}: give one value or {n} (one per stage), '
                         f'got {len(values)}')
    return list(values)


def input_size(values, axes):
    if values is None:
        return None
    if axes == 3 and len(values) == 2:
        return (values[0], values[1], values[1])
    if len(values) == 1:
        return tuple(values) * axes
    if len(values) != axes:
        raise SystemExit(f'plan_memory: error: --size: give {axes} values (or a square side), '
                         f'got {len(values)}')
    return tuple(values)


def build_setup(args, setup):
    """The config's setting with the command line's overrides."""
    n = len(setup.with_cp)
    setup.with_cp = per_stage('--with-cp', args.with_cp, n) or setup.with_cp
    setup.chunks = per_stage('--attn-chunk', args.attn_chunk, n) or setup.chunks
    setup.precision = args.precision or setup.precision
    setup.sharding = args.sharding or setup.sharding
    setup.batch = args.batch or setup.batch
    return setup


def gib(n):
    return n / mp.GIB


def format_plan(p, info, source):
    s = p.setup
    kernel = ('SDPA memory-efficient, no attention map kept' if p.kernel == 'fused'
              else 'explicit products, the attention map kept')
    lines = [f'model: {info.task}, {info.params / 1e9:.3f}B parameters '
             f'({info.trainable / 1e9:.3f}B trainable)',
             f"input {'x'.join(map(str, s.size))} x batch {s.batch} per GPU ({source}); "
             f'{s.gpus} GPU(s) of {s.gpu_mem_gib:g} GiB',
             f'setting: {s.describe()}; attention kernel assumed: {p.kernel} ({kernel})',
             f"{'component':48s} {'GiB/GPU':>9s}"]
    for key, label in ROWS:
        if key in p.parts:
            lines.append(f'{label:48s} {gib(p.parts[key]):9.2f}')
    lines.append(f"{'total':48s} {gib(p.total):9.2f}")
    verdict = 'FITS' if p.fits else f'DOES NOT FIT (over by {gib(p.total - p.budget):.2f} GiB)'
    lines.append(f'budget {s.gpu_mem_gib:g} GiB - {mp.HEADROOM:.0%} headroom = '
                 f'{gib(p.budget):.2f} GiB: {verdict}')
    return lines


def main(argv=None):
    args = parse_args(argv)
    if args.validate:
        return validate(args)
    cfg = load_config(args.config, args.cfg_options)
    try:
        info = mp.model_info(cfg)
        source = '--size' if args.size else mp.training_input(cfg, info.task)[1]
        setup = mp.config_setup(cfg, info, args.gpus, args.gpu_mem,
                                input_size(args.size, info.backbone.num_axes))
    except ValueError as e:
        raise SystemExit(f'plan_memory: error: {e}') from None
    setup = build_setup(args, setup)
    p = mp.plan(info, setup)
    lines = format_plan(p, info, source)
    result = dict(config=args.config, setup=vars(setup), parts=p.parts, total=p.total,
                  budget=p.budget, fits=p.fits, kernel=p.kernel, suggestion=None)
    if not p.fits:
        found = mp.suggest(info, setup)
        if found is None:
            lines.append('suggest: no combination of checkpointing, fsdp, bf16, a smaller '
                         'attention chunk and batch 1 fits; use more or larger GPUs or a '
                         'smaller --size')
        else:
            combo, q = found
            flags = ' '.join(mp.SWITCH_FLAGS[c](q.setup) for c in combo)
            lines.append(f'suggest: {flags} -> {gib(q.total):.2f} GiB per GPU, fits')
            result['suggestion'] = dict(switches=combo, flags=flags, total=q.total,
                                        parts=q.parts)
    print('\n'.join(lines))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == '__main__':
    sys.exit(0 if main() else 1)
