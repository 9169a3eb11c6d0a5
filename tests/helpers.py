"""Shared test helpers: random non-trivial weights, models built in a scope, tool runs."""
import glob
import json
import math
import os
import subprocess
import sys

import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights everywhere, post-norms and biases included (nothing zero-init)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith('logit_scale'):
                p.copy_(math.log(10) + torch.randn(p.shape, generator=g))
            elif p.ndim == 1 and ('norm' in name or 'layernorm' in name) and name.endswith('weight'):
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=g))
            else:
                std = 0.5 / math.sqrt(p.shape[-1]) if p.ndim > 1 else 0.1
                p.copy_(std * torch.randn(p.shape, generator=g))
    return model


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.float() - b.float()).abs().max().item()


def build_in_scope(model_cfg, scope: str, device: str = 'cpu') -> nn.Module:
    """Builds a model config with the registries of ``scope`` ('mmdet', 'mmseg', ...)."""
    import importlib
    from mmengine.registry import DefaultScope
    importlib.import_module(f'{scope}.utils').register_all_modules(init_default_scope=False)
    registry = importlib.import_module(f'{scope}.registry').MODELS
    with DefaultScope.overwrite_default_scope(scope), torch.device(device):
        return registry.build(model_cfg)


def load_tool(name: str):
    """Imports ``tools/<name>.py`` as a module (the tools are scripts, not a package)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(f'tools_{name}',
                                                  os.path.join(ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tool(args, env, cwd, check=True):
    """Runs ``python -W ignore ARGS`` as a user would; raises with its output if it fails."""
    out = subprocess.run([sys.executable, '-W', 'ignore'] + args, cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=900)
    if check and out.returncode != 0:
        raise AssertionError(f'{args} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}')
    return out


def train_demo(config: str, work, env, iters: int, warmup_end: int, *extra: str, flags=()):
    """A short run of a demo config on 8 training images, logging every iteration.

    ``extra`` are further ``--cfg-options`` entries, ``flags`` further arguments of the tool."""
    os.makedirs(work, exist_ok=True)
    run_tool([os.path.join(ROOT, 'tools', 'train.py'), config, '--work-dir', str(work),
              *flags, '--cfg-options', f'train_cfg.max_iters={iters}',
              f'train_cfg.val_interval={iters}', 'train_dataloader.dataset.indices=8',
              'val_dataloader.dataset.indices=4',
              'default_hooks.logger.interval=1', f'default_hooks.checkpoint.interval={iters}',
              f'param_scheduler.0.end={warmup_end}', 'randomness.seed=0', *extra], env, str(work))
    return work


def scalars(work):
    """The scalar log lines mmengine wrote in ``work``, over every run there (a resumed run
    logs into a new timestamped folder), oldest run first."""
    records = []
    for path in sorted(glob.glob(os.path.join(str(work), '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            records += [json.loads(line) for line in f]
    return records


# each demo config's toolbox scope and the smallest data that exercises it
DEMO_DATA = {
    'cascade_swinv2_shapes_demo.py': ('mmdet', dict(num_train=4, num_val=2, image_size=128)),
    'upernet_swinv2_shapes_demo.py': ('mmseg', dict(num_train=4, num_val=2, image_size=128)),
    'video_swinv2_shapes_demo.py': ('mmaction', dict(num_train=4, num_val=2, num_frames=16,
                                                     image_size=64)),
}


def demo_model_and_batches(config: str, data_root, n: int = 2, model_cfg=None):
    """A demo config's model (or ``model_cfg`` built in its scope) and a training and a
    validation batch of ``n`` samples generated under ``data_root``, as the data loader gives
    them (``model.data_preprocessor(batch, training)`` prepares them for the model)."""
    import importlib
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    scope, generate = DEMO_DATA[config]
    cfg = Config.fromfile(os.path.join(ROOT, 'configs', 'demo', config))
    for module in cfg.custom_imports.imports:
        importlib.import_module(module)
    importlib.import_module(f'{scope}.utils').register_all_modules(init_default_scope=False)
    registry = importlib.import_module(f'{scope}.registry')
    with DefaultScope.overwrite_default_scope(scope):
        datasets = [registry.DATASETS.build(dict(loader.dataset, data_root=str(data_root),
                                                 generate=generate))
                    for loader in (cfg.train_dataloader, cfg.val_dataloader)]
        model = registry.MODELS.build(model_cfg or cfg.model)

    def batch(dataset):
        items = [dataset[i] for i in range(n)]
        return dict(inputs=[it['inputs'] for it in items],
                    data_samples=[it['data_samples'] for it in items])
    return model, batch(datasets[0]), batch(datasets[1])
