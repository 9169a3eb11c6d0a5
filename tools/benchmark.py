"""swinv2_mm beside timm's and mmpretrain's SwinV2, with the same weights, in one process.

Each case builds the three backbones from one set of random weights (timm's layout,
converted with ``swinv2_mm.checkpoint``), checks that their outputs agree, then times
them interleaved (eval forward without grad; train step = forward + backward) and
reports medians, throughput, FLOP utilisation against this machine's measured fp32
matrix-multiply rate, the bytes autograd saves for backward, and (one subprocess per
implementation and case) the peak resident memory of a train step.

    python tools/benchmark.py [--cases tiny-256-w8 ...] [--repeats 5] [--json out.json]

See docs/benchmarks.md.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn

from swinv2_mm.checkpoint import convert_state_dict, to_mmpretrain
from swinv2_mm.models import ARCH_ZOO, SwinTransformerV2
from swinv2_mm.models.attention_kernels import KERNELS, choose_kernel
from swinv2_mm.models.windows import window_attention_mask


@dataclass(frozen=True)
class Case:
    name: str
    arch: str
    size: Tuple[int, int]
    window: int
    batch: int
    pretrained_window: int = 0  # > 0: weights of that window, run at ``window`` (transfer)


CASES = {c.name: c for c in [
    Case('tiny-256-w8', 'tiny', (256, 256), 8, 8),
    Case('tiny-256-w16', 'tiny', (256, 256), 16, 8),
    Case('base-512-w16', 'base', (512, 512), 16, 2, pretrained_window=8),
    Case('tiny-800x1216-w8', 'tiny', (800, 1216), 8, 1),
    Case('tiny-1024-w8', 'tiny', (1024, 1024), 8, 1),
    Case('tiny-64-w4', 'tiny', (64, 64), 4, 1),  # seconds: the tool's own test
]}
DEFAULT_CASES = ['tiny-256-w8', 'tiny-256-w16', 'base-512-w16', 'tiny-800x1216-w8',
                 'tiny-1024-w8']
PEERS = ('timm', 'mmpretrain')
# swinv2_mm's memory option measured as 'swinv2_mm-lean': activation checkpointing of the
# blocks of stages 0-2 (autograd keeps only their inputs; they are recomputed in backward);
# stage 3 holds little and is not recomputed
LEAN = dict(with_cp=[True, True, True, False])
# swinv2_mm's variants: the default, the memory option, and explicit attention products
# everywhere (the CPU default before the attention kernel rule, for what the rule buys)
VARIANTS = {'swinv2_mm': {}, 'swinv2_mm-lean': LEAN,
            'swinv2_mm-explicit': dict(fused_attn=False)}
IMPLS = list(VARIANTS) + list(PEERS)
# freed tensors go back to the OS at once, so a child's peak RSS follows live memory rather
# than glibc's heap retention (the same setting for every implementation)
CHILD_ENV = dict(MALLOC_MMAP_THRESHOLD_='131072')


def _perturb_(model: nn.Module, seed: int) -> nn.Module:
    """Moves every parameter off its initial value (post-norm gains away from 1 too)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.02)
    return model


def build_timm(case: Case) -> nn.Module:
    from timm.models.swin_transformer_v2 import SwinTransformerV2 as TimmSwinV2
    arch = ARCH_ZOO[case.arch]
    return TimmSwinV2(img_size=case.size, window_size=case.window, embed_dim=arch['embed_dims'],
                      depths=tuple(arch['depths']), num_heads=tuple(arch['num_heads']),
                      num_classes=0, drop_path_rate=0.0,
                      pretrained_window_sizes=(case.pretrained_window,) * 4)


def build_mmpretrain(case: Case) -> nn.Module:
    from mmpretrain.models import SwinTransformerV2 as MMPretrainSwinV2
    arch = ARCH_ZOO[case.arch]
    return MMPretrainSwinV2(
        arch=dict(embed_dims=arch['embed_dims'], depths=list(arch['depths']),
                  num_heads=list(arch['num_heads']), extra_norm_every_n_blocks=0),
        img_size=case.size, window_size=stage_windows(case), drop_path_rate=0.0,
        pretrained_window_sizes=[case.pretrained_window] * 4, out_indices=(3,))


def stage_windows(case: Case) -> List[int]:
    """The window of each stage where the map is at least that large (mmpretrain needs it
    given; timm and swinv2_mm shrink a window to a smaller map themselves)."""
    h, w = case.size[0] // 4, case.size[1] // 4
    windows = []
    for _ in range(4):
        windows.append(min(case.window, h, w))
        h, w = (h + 1) // 2, (w + 1) // 2
    return windows


def build_ours(case: Case, **options) -> nn.Module:
    return SwinTransformerV2(case.arch, window_size=case.window, drop_path_rate=0.0,
                             pretrained_window_sizes=case.pretrained_window, out_indices=(3,),
                             **options)


class Features(nn.Module):
    """Last-stage features (B, C, H, W) after the final norm, whatever the implementation."""

    def __init__(self, model: nn.Module, kind: str):
        super().__init__()
        self.model, self.kind = model, kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == 'timm':
            return self.model.forward_features(x).permute(0, 3, 1, 2)
        return self.model(x)[-1]


def build_models(case: Case, impls: List[str], seed: int = 0) -> Dict[str, nn.Module]:
    """The requested implementations with identical weights; a missing peer maps to None."""
    models: Dict[str, Optional[nn.Module]] = {}
    try:
        timm_model = _perturb_(build_timm(case), seed)
    except ImportError:
        timm_model = None
    if timm_model is None:
        reference = _perturb_(build_ours(case), seed).state_dict()
    else:
        reference = convert_state_dict(timm_model.state_dict(), verbose=False)
    for impl in impls:
        if impl == 'timm':
            models[impl] = timm_model
        elif impl == 'mmpretrain':
            try:
                peer = build_mmpretrain(case)
            except ImportError:
                models[impl] = None
                continue
            _load_params(peer, to_mmpretrain(reference))
            models[impl] = peer
        else:
            model = build_ours(case, **VARIANTS[impl])
            _load_params(model, reference)
            models[impl] = model
    return {k: None if m is None else Features(m, k) for k, m in models.items()}


def _load_params(model: nn.Module, sd: Dict[str, torch.Tensor]) -> None:
    """Loads every parameter (buffers derived from the window may be absent)."""
    missing, _ = model.load_state_dict(sd, strict=False)
    params = {n for n, _ in model.named_parameters()}
    lost = [k for k in missing if k in params]
    if lost:
        raise RuntimeError(f'benchmark: {type(model).__name__} did not receive {lost[:3]}')


def needs_padding(case: Case) -> bool:
    h, w = case.size[0] // 4, case.size[1] // 4
    for win in stage_windows(case):
        if h % win or w % win:
            return True
        h, w = (h + 1) // 2, (w + 1) // 2
    return False


def agreement(models: Dict[str, nn.Module], x: torch.Tensor) -> Dict[str, float]:
    """Max abs difference of each implementation's features from swinv2_mm's, over the
    largest feature magnitude."""
    with torch.no_grad():
        outs = {k: m.eval()(x) for k, m in models.items() if m is not None}
    ref = outs['swinv2_mm']
    scale = ref.abs().max().item()
    return {k: (o - ref).abs().max().item() / scale for k, o in outs.items() if k != 'swinv2_mm'}


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize()


def eval_step(model: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def run():
        with torch.no_grad():
            model(x)
    return run


def train_step(model: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def run():
        model.zero_grad(set_to_none=True)
        model(x).float().pow(2).mean().backward()
    return run


def in_bf16(step: Callable[[], None], device: torch.device) -> Callable[[], None]:
    """The step under bfloat16 autocast, on a GPU or a CPU (``--bf16``)."""
    def run():
        with torch.autocast(device.type, dtype=torch.bfloat16):
            step()
    return run


def interleaved_medians(steps: Dict[str, Callable[[], None]], repeats: int,
                        device: torch.device) -> Dict[str, float]:
    """Median seconds per step, the implementations taking turns (order rotated)."""
    names = list(steps)
    for name in names:  # warm-up
        steps[name]()
    times = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            _sync(device)
            start = time.perf_counter()
            steps[name]()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def saved_activation_bytes(step: Callable[[], None], model: nn.Module) -> int:
    """Bytes of the distinct tensor storages autograd saves for backward in one train step
    (parameters excluded)."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: Dict[int, int] = {}

    def pack(t: torch.Tensor):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    return sum(seen.values())


def model_flops(case: Case, x: torch.Tensor, train: bool) -> int:
    """FLOPs of the plain (unfused) swinv2_mm path: one forward, or forward + backward."""
    from torch.utils.flop_counter import FlopCounterMode
    model = Features(build_ours(case, fused_attn=False), 'swinv2_mm')
    step = train_step(model, x) if train else eval_step(model.eval(), x)
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def matmul_flops_per_second(device: torch.device, dtype: torch.dtype = torch.float32,
                            n: int = 2048, repeats: int = 5) -> float:
    """This machine's matrix-multiply rate: the best of a few large ``a @ b``."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    best = float('inf')
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best


def peak_rss_of_train_step(impl: str, case: Case, bf16: bool = False) -> Optional[dict]:
    """Resident memory before and at the peak of one train step, in a fresh subprocess."""
    out = subprocess.run([sys.executable, os.path.abspath(__file__), '--child', impl,
                          case.name] + ['--bf16'] * bf16, capture_output=True, text=True,
                         timeout=1800,
                         env=dict(os.environ, **CHILD_ENV))
    if out.returncode != 0:
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def _status_bytes(field: str) -> int:
    """A size from /proc/self/status (VmRSS: now; VmHWM: peak since the last reset)."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(f'{field}:'):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f'benchmark: /proc/self/status has no {field}')


def _child(impl: str, case_name: str, bf16: bool) -> None:
    """Peak RSS of one train step. VmHWM is reset first (``clear_refs`` 5), so neither the
    model building nor the parent (``ru_maxrss`` survives exec) counts."""
    case = CASES[case_name]
    model = build_models(case, [impl])[impl].train()
    x = torch.randn(case.batch, 3, *case.size)
    before = _status_bytes('VmRSS')
    step = train_step(model, x)
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
    (in_bf16(step, x.device) if bf16 else step)()
    print(json.dumps(dict(rss_before=before, rss_peak=_status_bytes('VmHWM'))))


KERNEL_WINDOWS = (7, 8, 12, 16, 24, 32)


def kernel_inputs(window: int, dtype: torch.dtype, train: bool, batch: int = 4,
                  heads: int = 3, head_dim: int = 32) -> tuple:
    """q, k, v (B, nW*h, N, d) and the 4-D bias of a shifted stage-0 block of SwinV2-T
    on a map of about 64x64 tokens; in training all four require gradients."""
    side = window * -(-64 // window)
    mask = window_attention_mask((side, side), (window, window), (window // 2,) * 2,
                                 torch.device('cpu'))  # (nW, N, N)
    nw, n = mask.shape[:2]
    gen = torch.Generator().manual_seed(window)
    q, k, v = (torch.nn.functional.normalize(torch.randn(batch, nw * heads, n, head_dim,
                                                         generator=gen), dim=-1) for _ in 'qkv')
    q = q * 10  # a temperature of 0.1
    bias = (16 * torch.rand(1, heads, n, n, generator=gen).sigmoid() + mask[:, None])
    tensors = [t.to(dtype).requires_grad_(train) for t in (q, k, v)]
    return (*tensors, bias.reshape(1, nw * heads, n, n).requires_grad_(train))


def kernel_table(repeats: int, dtypes=(torch.float32, torch.bfloat16)) -> List[dict]:
    """Each attention kernel timed on the same inputs per window, dtype and mode, interleaved
    (the measurements behind ``choose_kernel``'s rule), with the rule's pick."""
    rows = []
    for dtype in dtypes:
        for train in (False, True):
            for window in KERNEL_WINDOWS:
                q, k, v, bias = kernel_inputs(window, dtype, train)

                def step(kernel):
                    def run():
                        with torch.set_grad_enabled(train):
                            out = KERNELS[kernel](q, k, v, bias, 0.0, not train)
                            if train:
                                out.float().pow(2).mean().backward()
                    return run
                medians = interleaved_medians({k: step(k) for k in KERNELS}, repeats,
                                              torch.device('cpu'))
                with torch.set_grad_enabled(train):
                    pick = choose_kernel(q, bias, 0.0, None)
                rows.append(dict(window=window, tokens=q.shape[-2], dtype=str(dtype)[6:],
                                 mode='train' if train else 'eval', ms={
                                     k: t * 1e3 for k, t in medians.items()}, rule=pick,
                                 fastest=min(medians, key=medians.get)))
                print(format_kernel_rows(rows[-1:]), flush=True)
    return rows


def format_kernel_rows(rows: List[dict]) -> str:
    """Rows of the kernel table; "rule vs fastest" is the fastest kernel's time over the
    pick's (1.00: the rule picked the fastest), as in docs/benchmarks.md."""
    return '\n'.join(
        f"| {r['dtype']} | {r['mode']} | {r['window']} ({r['tokens']}) | "
        + ' | '.join(f"{r['ms'][k]:.1f}" for k in KERNELS)
        + f" | {r['rule']} | {r['ms'][r['fastest']] / r['ms'][r['rule']]:.2f} |"
        for r in rows)


KERNEL_HEADER = ('| dtype | mode | window (tokens) | ' + ' | '.join(f'{k} ms' for k in KERNELS)
                 + ' | rule picks | rule vs fastest |\n|' + '---|' * (len(KERNELS) + 5))


def run_case(case: Case, impls: List[str], repeats: int, device: torch.device,
             matmul_rate: float, rss: bool, bf16: bool = False) -> dict:
    """Every measurement of one case, as a dict (see ``format_table``)."""
    models = build_models(case, impls)
    missing = [k for k, m in models.items() if m is None]
    models = {k: m.to(device) for k, m in models.items() if m is not None}
    x = torch.randn(case.batch, 3, *case.size, device=device)
    result = dict(case=asdict(case), missing=missing, padding=needs_padding(case),
                  agreement=agreement(models, x), impls={})
    flops = {mode: model_flops(case, x.cpu(), mode == 'train') for mode in ('eval', 'train')}
    result['flops'] = flops
    for mode, make in (('eval', eval_step), ('train', train_step)):
        for m in models.values():
            m.train(mode == 'train')
        steps = {k: make(m, x) for k, m in models.items()}
        if bf16:
            steps = {k: in_bf16(step, device) for k, step in steps.items()}
        medians = interleaved_medians(steps, repeats, device)
        for name, seconds in medians.items():
            entry = result['impls'].setdefault(name, {})
            entry[f'{mode}_s'] = seconds
            entry[f'{mode}_images_per_s'] = case.batch / seconds
            entry[f'{mode}_utilisation'] = flops[mode] / seconds / matmul_rate
    for name, model in models.items():
        entry = result['impls'][name]
        step = in_bf16(train_step(model, x), device) if bf16 else train_step(model, x)
        entry['saved_activation_bytes'] = saved_activation_bytes(step, model)
        if device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats()
            step()
            entry['cuda_max_allocated_bytes'] = torch.cuda.max_memory_allocated()
        elif rss:
            entry['rss'] = peak_rss_of_train_step(name, case, bf16)
    return result


def _ratio(result: dict, name: str, key: str) -> Optional[float]:
    """How many times faster ``name`` is than the faster peer (>1: faster)."""
    peers = [result['impls'][p][key] for p in PEERS if p in result['impls']]
    return min(peers) / result['impls'][name][key] if peers else None


def format_table(results: List[dict]) -> str:
    rows = ['| case | implementation | eval ms | eval img/s | eval vs best peer | eval util | '
            'train ms | train img/s | train vs best peer | train util | saved for backward MiB '
            '| peak RSS of a train step MiB |', '|' + '---|' * 12]
    for result in results:
        for name, e in result['impls'].items():
            ours = name.startswith('swinv2_mm')
            rss = e.get('rss')
            ratio = {k: _ratio(result, name, f'{k}_s') if ours else None for k in ('eval', 'train')}
            rows.append('| ' + ' | '.join([
                result['case']['name'], name,
                f"{e['eval_s'] * 1e3:.0f}", f"{e['eval_images_per_s']:.2f}",
                f"{ratio['eval']:.2f}x" if ratio['eval'] else '',
                f"{e['eval_utilisation']:.0%}",
                f"{e['train_s'] * 1e3:.0f}", f"{e['train_images_per_s']:.2f}",
                f"{ratio['train']:.2f}x" if ratio['train'] else '',
                f"{e['train_utilisation']:.0%}",
                f"{e['saved_activation_bytes'] / 2**20:.0f}",
                f"{(rss['rss_peak'] - rss['rss_before']) / 2**20:.0f}" if rss else
                (f"{e['cuda_max_allocated_bytes'] / 2**20:.0f} (CUDA)"
                 if 'cuda_max_allocated_bytes' in e else '')]) + ' |')
        for name in result['missing']:
            rows.append(f"| {result['case']['name']} | {name} | not installed |" + ' |' * 9)
    return '\n'.join(rows)


def _cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: Optional[List[str]] = None) -> List[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--cases', nargs='+', default=DEFAULT_CASES, choices=sorted(CASES))
    parser.add_argument('--impls', nargs='+', default=IMPLS, choices=IMPLS)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--bf16', action='store_true',
                        help='run every implementation under bfloat16 autocast')
    parser.add_argument('--no-rss', action='store_true', help='skip the peak-RSS subprocesses')
    parser.add_argument('--json', help='write the results here')
    parser.add_argument('--kernels', action='store_true',
                        help='only time the attention kernels per window (CPU)')
    parser.add_argument('--child', nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(*args.child, args.bf16)
    if 'swinv2_mm' not in args.impls:
        args.impls.insert(0, 'swinv2_mm')  # the agreement reference
    device = torch.device(args.device)
    rate = matmul_flops_per_second(device, torch.bfloat16 if args.bf16 else torch.float32)
    header = dict(torch=torch.__version__, threads=torch.get_num_threads(), device=str(device),
                  cpu=_cpu_name(), matmul_flops_per_s=rate, repeats=args.repeats,
                  dtype='bfloat16 autocast' if args.bf16 else 'float32')
    if device.type == 'cuda':
        header['gpu'] = torch.cuda.get_device_name()
    print(f'# {header}', flush=True)
    if args.kernels:
        print(KERNEL_HEADER, flush=True)
        rows = kernel_table(args.repeats)
        print(KERNEL_HEADER + '\n' + format_kernel_rows(rows))
        results = rows
    else:
        results = [run_and_print(CASES[name], args, device, rate) for name in args.cases]
        print(format_table(results))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(dict(header=header, results=results), f, indent=1)
    return results


def run_and_print(case: Case, args: argparse.Namespace, device: torch.device,
                  rate: float) -> dict:
    result = run_case(case, args.impls, args.repeats, device, rate,
                      not args.no_rss and device.type == 'cpu', args.bf16)
    print(format_table([result]), flush=True)
    print(f"agreement with swinv2_mm (max abs diff / max |x|): {result['agreement']}"
          f"{' (padded input: the peers attend to zero padding)' if result['padding'] else ''}",
          flush=True)
    return result


if __name__ == '__main__':
    main()
