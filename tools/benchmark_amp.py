"""Each demo model's train step and evaluation step in float32 and under --amp's autocast
(bfloat16 on a CPU), interleaved in one process, on a batch from the demo's own loaders.

The train step is mmengine's ``model.train_step`` through the optimizer wrapper each run
uses (``OptimWrapper`` / ``AutocastOptimWrapper``, learning rate 0 so that both time the
same weights); the evaluation step is ``model.val_step``, plain or under the autocast that
``tools/test.py --amp`` sets.

    python tools/benchmark_amp.py [--demos cascade_swinv2_shapes_demo ...] [--repeats 10]
"""
import argparse
import contextlib
import importlib
import os
import sys

import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import MODELS, DefaultScope
from mmengine.runner import Runner

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmark import interleaved_medians  # noqa: E402

from swinv2_mm.amp import AutocastOptimWrapper  # noqa: E402
from swinv2_mm.cli.precision import amp_device_dtype  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMOS = ('cascade_swinv2_shapes_demo', 'upernet_swinv2_shapes_demo', 'video_swinv2_shapes_demo')


def build_demo(name: str, device: str):
    """The demo's model (initialised, on ``device``) and one batch of its train and val loaders."""
    cfg = Config.fromfile(os.path.join(ROOT, 'configs', 'demo', f'{name}.py'))
    for module in cfg.custom_imports.imports:
        importlib.import_module(module)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
        train = next(iter(Runner.build_dataloader(cfg.train_dataloader, seed=0)))
        val = next(iter(Runner.build_dataloader(cfg.val_dataloader, seed=0)))
    model.init_weights()
    return model.to(device), train, val


def frozen_sgd(model: torch.nn.Module) -> torch.optim.SGD:
    """SGD at learning rate 0: a full optimizer step that leaves the timed weights as they are."""
    return torch.optim.SGD(list(model.parameters()), lr=0.0)


def demo_steps(name: str):
    """{'train fp32', 'train amp', 'eval fp32', 'eval amp'}: steps of the demo's model."""
    device, dtype = amp_device_dtype()
    model, train, val = build_demo(name, device)
    wrappers = dict(fp32=OptimWrapper(frozen_sgd(model)),
                    amp=AutocastOptimWrapper(optimizer=frozen_sgd(model), dtype=dtype))

    def train_step(precision):
        def run():
            model.train()
            model.train_step(train, wrappers[precision])
        return run

    def eval_step(precision):
        def run():
            model.eval()
            autocast = torch.autocast(device, dtype=dtype) if precision == 'amp' \
                else contextlib.nullcontext()
            with autocast:
                model.val_step(val)
        return run
    return {f'{kind} {precision}': step(precision)
            for kind, step in (('train', train_step), ('eval', eval_step))
            for precision in ('fp32', 'amp')}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--demos', nargs='+', default=list(DEMOS), choices=DEMOS)
    parser.add_argument('--repeats', type=int, default=10)
    args = parser.parse_args(argv)
    device, dtype = amp_device_dtype()
    print(f'# torch {torch.__version__}, {torch.get_num_threads()} threads, {device}, '
          f'amp = {dtype}, median of {args.repeats} interleaved steps')
    print('| demo | train fp32 s | train amp s | speed-up | eval fp32 s | eval amp s | speed-up |')
    print('|---|---|---|---|---|---|---|')
    results = {}
    for name in args.demos:
        t = interleaved_medians(demo_steps(name), args.repeats, torch.device(device))
        results[name] = t
        print(f"| {name} | {t['train fp32']:.3f} | {t['train amp']:.3f} | "
              f"{t['train fp32'] / t['train amp']:.2f}x | {t['eval fp32']:.3f} | "
              f"{t['eval amp']:.3f} | {t['eval fp32'] / t['eval amp']:.2f}x |", flush=True)
    return results


if __name__ == '__main__':
    main()
