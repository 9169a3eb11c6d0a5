"""What ``torch.compile`` buys on this machine, against eager in one process, interleaved.

Two things are compiled, each with inductor's defaults: the backbone alone
(``torch.compile(SwinTransformerV2)``, forward in eval and forward + backward in training)
and a demo config's ``model.train_step``, which is what mmengine's runner option
``compile=True`` compiles (data preprocessor, forward, loss, backward and optimizer step;
validation and test stay eager). Reported: seconds of the first call (compilation
included), steady-state medians, graphs compiled and graph breaks.

    python tools/benchmark_compile.py [--case tiny-256-w8] [--demo upernet_swinv2_shapes_demo]
"""
import argparse
import json
import os
import sys
import time
from typing import Callable, Dict

import torch
import torch._dynamo
from mmengine.optim import OptimWrapper
from torch._dynamo.utils import counters

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmark import (CASES, Features, build_ours, eval_step, interleaved_medians,  # noqa: E402
                       train_step)
from benchmark_amp import DEMOS, build_demo, frozen_sgd  # noqa: E402

CPU = torch.device('cpu')


def dynamo_counts() -> Dict[str, int]:
    """Graphs dynamo compiled and graph breaks it took since the last reset."""
    return dict(graphs=counters['stats']['unique_graphs'],
                graph_breaks=sum(counters['graph_break'].values()))


def first_call_seconds(step: Callable[[], None]) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def compare(eager: Dict[str, Callable[[], None]], compiled: Dict[str, Callable[[], None]],
            repeats: int) -> dict:
    """First-call seconds of each compiled step (eager's first call for comparison), then
    every step's steady-state median, eager and compiled interleaved."""
    torch._dynamo.reset()
    counters.clear()
    result = {}
    for mode in compiled:
        result[mode] = dict(eager_first_s=first_call_seconds(eager[mode]),
                            compiled_first_s=first_call_seconds(compiled[mode]))
    result.update(dynamo_counts())
    steps = {f'{mode} {kind}': fn for kind, fns in (('eager', eager), ('compiled', compiled))
             for mode, fn in fns.items()}
    medians = interleaved_medians(steps, repeats, CPU)
    for mode in compiled:
        entry = result[mode]
        entry['eager_s'], entry['compiled_s'] = medians[f'{mode} eager'], \
            medians[f'{mode} compiled']
        entry['speed_up'] = entry['eager_s'] / entry['compiled_s']
        entry['compile_s'] = entry['compiled_first_s'] - entry['compiled_s']
    return result


def backbone_result(case_name: str, repeats: int) -> dict:
    case = CASES[case_name]
    model = Features(build_ours(case), 'swinv2_mm')
    compiled = torch.compile(model)
    x = torch.randn(case.batch, 3, *case.size)

    def steps(m):
        return dict(eval=lambda: (model.eval(), eval_step(m, x)()),
                    train=lambda: (model.train(), train_step(m, x)()))
    return compare(steps(model), steps(compiled), repeats)


def demo_result(name: str, repeats: int) -> dict:
    model, batch, _ = build_demo(name, 'cpu')
    model.train()
    wrapper = OptimWrapper(frozen_sgd(model))
    compiled = torch.compile(model.train_step)  # as mmengine's Runner._maybe_compile
    return compare(dict(train=lambda: model.train_step(batch, wrapper)),
                   dict(train=lambda: compiled(batch, wrapper)), repeats)


def format_rows(label: str, result: dict) -> str:
    return '\n'.join(
        f"| {label} | {mode} | {e['compile_s']:.0f} | {e['eager_s']:.3f} | {e['compiled_s']:.3f} "
        f"| {e['speed_up']:.2f}x | {result['graphs']} | {result['graph_breaks']} |"
        for mode, e in result.items() if isinstance(e, dict))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--case', default='tiny-256-w8', choices=sorted(CASES))
    parser.add_argument('--demo', default='upernet_swinv2_shapes_demo', choices=DEMOS)
    parser.add_argument('--skip-demo', action='store_true')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--json', help='write the results here')
    args = parser.parse_args(argv)
    print(f'# torch {torch.__version__}, {torch.get_num_threads()} threads, inductor, median '
          f'of {args.repeats} interleaved steps')
    print('| compiled | step | compile s | eager s | compiled s | speed-up | graphs | '
          'graph breaks |\n|---|---|---|---|---|---|---|---|', flush=True)
    results = dict(backbone=backbone_result(args.case, args.repeats))
    print(format_rows(f'backbone {args.case}', results['backbone']), flush=True)
    if not args.skip_demo:
        results['demo'] = demo_result(args.demo, args.repeats)
        print(format_rows(f'{args.demo} train_step', results['demo']), flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == '__main__':
    main()
