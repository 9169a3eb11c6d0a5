"""Per-GPU training memory of a SwinV2 config: parameters, gradients, AdamW state and the
backbone's activations, the model behind ``tools/plan_memory.py`` (see docs/memory_plan.md).

The activation model counts, per block, the tensors autograd keeps for backward on the code
paths of ``models/blocks.py``, ``attention.py`` and ``attention_kernels.py``, in units of the
block's shapes (padded window tokens x channels, tokens x channels, MLP hidden, attention map,
position bias, mask + bias). Its coefficients were counted op by op against the tensors kept
by torch 2.14 (``measure_saved_bytes``) and are checked by ``validation_rows``.
"""
import copy
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from ..engine.fsdp import uses_fsdp

GIB = 1024 ** 3
HEADROOM = 0.10  # of --gpu-mem, kept free for the CUDA context, NCCL buffers, fragmentation
PRECISIONS = ('fp32', 'bf16', 'fp16')
SHARDINGS = ('none', 'zero1', 'fsdp')
# bytes per padded-window-token x channel a block keeps, by (low precision, kernel, masking);
# masking: 'none' (no mask), 'pad' (regular block with padded windows), 'shift'
WINDOW_TOKEN_BYTES = {
    (False, 'fused', 'none'): 32, (False, 'fused', 'pad'): 40, (False, 'fused', 'shift'): 44,
    (False, 'explicit', 'none'): 36, (False, 'explicit', 'pad'): 32,
    (False, 'explicit', 'shift'): 32,
    (True, 'fused', 'none'): 24, (True, 'fused', 'pad'): 22, (True, 'fused', 'shift'): 24,
    (True, 'explicit', 'none'): 20, (True, 'explicit', 'pad'): 18, (True, 'explicit', 'shift'): 20,
}
HALF_FUSED_MIN_TOKENS = 144  # as attention_kernels.HALF_FLASH_MIN_TOKENS (CPU rule only)


@dataclass
class StageShape:
    """What one stage's blocks see: batch, map, window, channels, heads, depth."""
    batch: int
    map_size: Tuple[int, ...]
    window: Tuple[int, ...]
    dim: int
    heads: int
    depth: int
    hidden: int
    with_cp: bool
    chunk: int
    extra_norm_every: int
    block_params: int  # parameters of one block (the largest)
    block_linear_params: int  # of which Linear weights and biases (cast under autocast)

    @property
    def tokens(self) -> int:
        return self.batch * math.prod(self.map_size)

    @property
    def padded_tokens(self) -> int:
        return self.batch * math.prod(math.ceil(s / w) * w
                                      for s, w in zip(self.map_size, self.window))

    @property
    def windows(self) -> int:
        """Windows per sample, the map padded to whole windows."""
        return math.prod(math.ceil(s / w) for s, w in zip(self.map_size, self.window))

    @property
    def window_tokens(self) -> int:
        return math.prod(self.window)

    @property
    def padded(self) -> bool:
        return any(s % w for s, w in zip(self.map_size, self.window))

    @property
    def shifts(self) -> bool:
        """Whether the odd blocks shift (the map is larger than the window on some axis)."""
        return any(s > w for s, w in zip(self.map_size, self.window))

    def masking(self, block: int) -> str:
        if block % 2 and self.shifts:
            return 'shift'
        return 'pad' if self.padded else 'none'


def attention_kernel(stage: StageShape, low: bool, device: str, fused: Optional[bool],
                     dropout: float) -> str:
    """'fused' (CPU flash_with_bias, CUDA SDPA memory-efficient: q, k, v, bias, output and
    log-sum-exp kept) or 'explicit' (the softmax map kept), as the kernel rule picks."""
    if fused is False or (dropout > 0 and device == 'cpu'):
        return 'explicit'
    if device == 'cpu' and low and not fused and stage.window_tokens < HALF_FUSED_MIN_TOKENS:
        return 'explicit'
    return 'fused'


def block_saved_bytes(stage: StageShape, block: int, low: bool, kernel: str,
                      device: str = 'cuda') -> Dict[str, int]:
    """Bytes one block keeps for backward, by part, without checkpointing or chunking."""
    a = 2 if low else 4
    pc, tc = stage.padded_tokens * stage.dim, stage.tokens * stage.dim
    ph, n2 = stage.padded_tokens * stage.heads, stage.heads * stage.window_tokens ** 2
    masking = stage.masking(block)
    table = math.prod(2 * w - 1 for w in stage.window) * 512  # log-CPB hidden layer
    parts = dict(window_tokens=WINDOW_TOKEN_BYTES[(low, kernel, masking)] * pc,
                 qk_norms=(5 if kernel == 'explicit' else 6) * 4 * ph,
                 mlp=2 * a * stage.tokens * stage.hidden,
                 residual=2 * a * tc, ln_stats=16 * stage.tokens, cpb=table * a)
    if masking == 'shift' and (not low or kernel == 'explicit'):
        parts['residual'] -= a * tc  # measured: the shifted block's fc1 input is not kept
    parts['position_bias'] = n2 * a * (2 if masking == 'none' and kernel == 'fused' else 1)
    if masking != 'none':
        parts['mask_bias'] = stage.windows * n2 * a
    if kernel == 'explicit':
        parts['attention_map'] = stage.batch * stage.windows * n2 * a
    if low:
        parts['weight_casts'] = 2 * stage.block_linear_params
        if device == 'cuda':  # autocast runs LayerNorm in fp32: its inputs are kept in fp32
            parts['ln_fp32_inputs'] = 2 * (pc + tc)
    if stage.extra_norm_every and (block + 1) % stage.extra_norm_every == 0:
        parts['extra_norm'] = a * tc + 8 * stage.tokens
    return parts


def chunked_block_bytes(stage: StageShape, block: int, low: bool, kernel: str,
                        device: str) -> Tuple[Dict[str, int], int]:
    """(kept parts, one chunk's transient working set) of a block with chunked attention:
    a chunk's attention tensors exist only while it is computed (again in backward)."""
    parts = block_saved_bytes(stage, block, low, kernel, device)
    chunk = stage.chunk
    masked = stage.masking(block) != 'none'
    along = stage.windows if masked else stage.batch * stage.windows
    if not chunk or along <= chunk:
        return parts, 0
    share = chunk / along
    a = 2 if low else 4
    attention = ['qk_norms', 'mask_bias', 'attention_map']
    transient = sum(parts.pop(k, 0) for k in attention)
    inside = parts['window_tokens'] - 2 * a * stage.padded_tokens * stage.dim
    transient += inside
    parts['window_tokens'] -= inside  # the windows (the chunks' inputs) and LN1's input stay
    return parts, int(transient * share)


def block_plan(stage: StageShape, block: int, low: bool, kernel: str, device: str
               ) -> Tuple[int, int, int]:
    """(bytes kept from forward to backward, bytes its recompute keeps in backward, one
    attention chunk's transient bytes) of a block: a checkpointed block keeps its input and
    recomputes the rest in backward."""
    parts, chunk = chunked_block_bytes(stage, block, low, kernel, device)
    inside = sum(v for k, v in parts.items() if k != 'weight_casts')
    casts = parts.get('weight_casts', 0)
    if stage.with_cp:
        a = 4 if (low and device == 'cuda') or not low else 2
        return a * stage.tokens * stage.dim, inside + casts, chunk
    return inside + casts, 0, chunk


def stem_bytes(stages: List[StageShape], low: bool, out_indices: Sequence[int],
               stem_params: int = 0) -> int:
    """Patch embedding, patch merging and output norms: what they keep for backward (under
    autocast also the low-precision copies of their ``stem_params`` weights)."""
    a = 2 if low else 4
    first = stages[0]
    total = a * first.tokens * first.dim + 8 * first.tokens + (2 * stem_params if low else 0)
    for i, s in enumerate(stages):
        tc = s.tokens * s.dim
        if i < len(stages) - 1:
            total += a * tc + a * tc // 2 + 2 * s.tokens  # 2x2 concat copy, reduction output
        if i in out_indices:
            total += a * tc + 8 * s.tokens
    return total


@dataclass
class ActivationPlan:
    """Backbone activation bytes: kept from forward to backward, the largest transient on
    top (a recomputed block, a chunk, or the autocast weight casts at the end of forward),
    and the cached shift/pad masks."""
    kept: int
    transient: int
    masks: int
    kernel: str
    detail: Dict[str, int] = field(default_factory=dict)

    @property
    def peak(self) -> int:
        return self.kept + self.transient + self.masks


def activation_plan(stages: List[StageShape], precision: str, out_indices: Sequence[int],
                    stem_params: int = 0, device: str = 'cuda', fused: Optional[bool] = None,
                    dropout: float = 0.0) -> ActivationPlan:
    """The backbone's activation memory for one training step (see :class:`ActivationPlan`)."""
    low = precision != 'fp32'
    kept, transients, casts, masks, kernels = 0, [0], 0, 0, set()
    for stage in stages:
        kernel = attention_kernel(stage, low, device, fused, dropout)
        kernels.add(kernel)
        for b in range(stage.depth):
            k, recompute, chunk = block_plan(stage, b, low, kernel, device)
            kept += k
            transients.append(recompute + chunk)
            if low and stage.with_cp:
                casts += 2 * stage.block_linear_params
        n2 = stage.window_tokens ** 2
        masks += 4 * stage.windows * n2 * (int(stage.padded) + int(stage.shifts))
    kept += stem_bytes(stages, low, out_indices, stem_params)
    return ActivationPlan(kept, max(max(transients), casts), masks, '/'.join(sorted(kernels)))


def stage_shapes(backbone, input_size: Sequence[int], batch: int,
                 with_cp: Optional[Sequence[bool]] = None,
                 chunks: Optional[Sequence[int]] = None) -> List[StageShape]:
    """Per-stage shapes of a built (meta) backbone for inputs of ``input_size`` (no channels)."""
    sizes = backbone.stage_map_sizes(input_size)
    windows = backbone.attention_windows(input_size)
    shapes = []
    for i, (stage, size, window) in enumerate(zip(backbone.stages, sizes, windows)):
        block = stage.blocks[0]
        linear = sum(p.numel() for m in block.modules() if isinstance(m, torch.nn.Linear)
                     for p in m.parameters()) + 3 * block.mlp.fc2.out_features
        shapes.append(StageShape(
            batch, tuple(size), tuple(window), block.mlp.fc2.out_features,
            block.attn.num_heads, len(stage.blocks), block.mlp.fc1.out_features,
            stage.with_cp if with_cp is None else bool(with_cp[i]),
            block.attn.attn_chunk_size if chunks is None else int(chunks[i]),
            _extra_norm_every(stage), sum(p.numel() for p in block.parameters()), linear))
    return shapes


def stem_param_count(backbone) -> int:
    """Weights of the patch embedding and the patch mergings (cast under autocast)."""
    total = backbone.patch_embed.proj.weight.numel()
    return total + sum(s.downsample.reduction.weight.numel() for s in backbone.stages
                       if s.downsample is not None)


def _extra_norm_every(stage) -> int:
    """n of ``extra_norm_every_n_blocks`` as built (0: none)."""
    for i, block in enumerate(stage.blocks):
        if block.norm3 is not None:
            return i + 1
    return 0


# ----- measurement: bytes alive between forward and backward --------------------------------

def measure_saved_bytes(model, x: torch.Tensor, bf16: bool = False,
                        per_block: bool = False):
    """Bytes of the distinct storages created in one forward that are still alive when it
    returns (what autograd and checkpointing keep for backward; parameters, the input and
    caches filled before excluded), total or per SwinV2 block (the rest under 'other')."""
    from torch.multiprocessing.reductions import StorageWeakRef
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    from ..models.blocks import SwinV2Block

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: Dict[int, tuple] = {}
    tag = ['other']

    class Track(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if func.is_view:
                return out
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor):
                    s = t.untyped_storage()
                    ptr = s.data_ptr()
                    if ptr and ptr not in params and (ptr not in seen or seen[ptr][0].expired()):
                        seen[ptr] = (StorageWeakRef(s), s.nbytes(), tag[0])
            return out

    hooks = []
    for name, m in model.named_modules():
        if isinstance(m, SwinV2Block):
            hooks.append(m.register_forward_pre_hook(
                lambda *_, n=name: tag.__setitem__(0, n)))
            hooks.append(m.register_forward_hook(lambda *_: tag.__setitem__(0, 'other')))
    with torch.no_grad(), torch.autocast('cpu', torch.bfloat16, enabled=bf16):
        model(x)  # fills the window, mask and index caches
    with Track():
        with torch.autocast('cpu', torch.bfloat16, enabled=bf16):
            outs = model(x)
        loss = sum(o.float().sum() for o in outs)
        del outs
    for h in hooks:
        h.remove()
    alive: Dict[str, int] = {}
    for ref, nbytes, name in seen.values():
        if not ref.expired():
            alive[name] = alive.get(name, 0) + nbytes
    del loss
    return alive if per_block else sum(alive.values())


def measured_activation_bytes(arch, size: int, window: int, with_cp: bool, bf16: bool,
                              batch: int = 1, chunk: int = 0) -> int:
    """Measured counterpart of the model: bytes kept after forward, plus, with checkpointing,
    the largest block's own kept bytes measured without it (what its recompute holds)."""
    from ..models import SwinTransformerV2
    torch.manual_seed(0)
    kw = dict(window_size=window, drop_path_rate=0.1, attn_chunk_size=chunk)
    x = torch.randn(batch, 3, size, size)
    model = SwinTransformerV2(arch, with_cp=with_cp, **kw).train()
    total = measure_saved_bytes(model, x, bf16)
    if with_cp:
        plain = SwinTransformerV2(arch, **kw).train()
        blocks = measure_saved_bytes(plain, x, bf16, per_block=True)
        total += max(v for k, v in blocks.items() if k != 'other')
    return total


def predicted_activation_bytes(arch, size: int, window: int, with_cp: bool, bf16: bool,
                               batch: int = 1, chunk: int = 0) -> int:
    """The model's figure for :func:`measured_activation_bytes` (CPU kernels, no masks or
    end-of-forward casts, which the measurement does not see)."""
    from ..models import SwinTransformerV2
    with torch.device('meta'):
        model = SwinTransformerV2(arch, window_size=window, with_cp=with_cp,
                                  attn_chunk_size=chunk)
    stages = stage_shapes(model, (size, size), batch)
    low = bf16
    kept, recompute = 0, 0
    for stage in stages:
        kernel = attention_kernel(stage, low, 'cpu', None, 0.0)
        for b in range(stage.depth):
            k, t, _ = block_plan(stage, b, low, kernel, 'cpu')
            kept += k
            recompute = max(recompute, t)
    return kept + recompute + stem_bytes(stages, low, model.out_indices, stem_param_count(model))


# (arch, size, window, with_cp, bf16, attn_chunk[, batch]): docs/memory_plan.md's table
VALIDATION_CASES = (
    [('tiny', s, w, False, b, 0) for s in (192, 256, 384) for w in (8, 12, 16)
     for b in (False, True)]
    + [('tiny', 256, w, True, b, 0) for w in (8, 16) for b in (False, True)]
    + [('small', 192, 12, False, False, 0), ('small', 192, 12, True, True, 0),
       ('small', 256, 8, False, True, 0), ('small', 256, 16, False, False, 0),
       ('small', 256, 16, True, False, 0), ('small', 384, 12, False, True, 0),
       ('small', 384, 12, True, False, 0), ('small', 384, 16, False, False, 0)]
    + [('base', 192, 12, False, True, 0), ('base', 256, 8, False, False, 0),
       ('base', 256, 16, True, False, 0), ('base', 256, 16, False, True, 0),
       ('base', 384, 12, False, False, 0), ('base', 384, 16, True, True, 0)]
    + [('tiny', 256, 8, True, False, 4), ('tiny', 256, 16, False, True, 2),
       ('base', 256, 8, True, True, 8), ('small', 384, 12, False, False, 4)]
    + [('tiny', 192, 8, False, True, 0, 2), ('tiny', 256, 16, False, False, 0, 2),
       ('tiny', 256, 8, True, False, 0, 2), ('small', 256, 12, True, True, 4, 2)])


def validation_rows(cases) -> List[dict]:
    """(arch, size, window, with_cp, bf16, chunk[, batch]) cases -> measured, predicted and
    relative error (chunk 0: attention over all windows at once; batch 1 unless given)."""
    rows = []
    for arch, size, window, cp, bf16, chunk, *batch in cases:
        batch = batch[0] if batch else 1
        measured = measured_activation_bytes(arch, size, window, cp, bf16, batch, chunk)
        predicted = predicted_activation_bytes(arch, size, window, cp, bf16, batch, chunk)
        rows.append(dict(arch=arch, size=size, window=window, with_cp=cp, chunk=chunk, batch=batch,
                         precision='bf16' if bf16 else 'fp32', measured=measured,
                         predicted=predicted, error=predicted / measured - 1))
    return rows


# ----- the whole model: parameters, sharding, what the config trains at ---------------------

TASKS = {'mmdet': 'detection', 'mmseg': 'segmentation', 'mmaction': 'video'}
SWITCH_ORDER = ('with_cp', 'fsdp', 'bf16', 'attn_chunk', 'batch1')


@dataclass
class ModelInfo:
    """What the planner reads from the model built on the meta device."""
    task: str
    backbone: object
    params: int  # every parameter
    trainable: int  # those with requires_grad
    root_params: int  # outside the SwinV2 blocks (FSDP's root unit)
    largest_block: int  # parameters of the largest block (an FSDP unit)
    head_channels: int  # FPN / decode head width, for the rough neck and head allowance
    fused_attn: Optional[bool]
    attn_dropout: float


@dataclass
class Setup:
    """One training setting to plan: GPUs, memory, precision, sharding and the switches."""
    gpus: int
    gpu_mem_gib: float
    precision: str
    sharding: str
    with_cp: List[bool]
    chunks: List[int]
    batch: int
    size: Tuple[int, ...]

    def describe(self) -> str:
        cp = ''.join(str(int(c)) for c in self.with_cp)
        return (f"{self.precision}, sharding {self.sharding}, with_cp {cp}, attn_chunk "
                f"{','.join(map(str, self.chunks))}, batch {self.batch}")


def config_scope(cfg) -> str:
    scope = cfg.get('default_scope')
    if scope not in TASKS:
        raise ValueError(f'config: default_scope={scope!r}; the planner knows '
                         f'{sorted(TASKS)} (detection, segmentation, video)')
    return scope


def build_meta_model(cfg):
    """The config's whole model on the meta device (no memory), through its toolbox."""
    import importlib

    from mmengine.registry import DefaultScope
    scope = config_scope(cfg)
    importlib.import_module(f'{scope}.utils').register_all_modules(init_default_scope=False)
    registry = importlib.import_module(f'{scope}.registry').MODELS
    with DefaultScope.overwrite_default_scope(scope), torch.device('meta'):
        return registry.build(copy.deepcopy(cfg.model))


def model_info(cfg) -> ModelInfo:
    """Parameter counts and attention options of the config's model (built on meta)."""
    from ..models.blocks import SwinV2Block
    model = build_meta_model(cfg)
    backbone = model.backbone
    blocks = [m for m in model.modules() if isinstance(m, SwinV2Block)]
    in_blocks = sum(p.numel() for b in blocks for p in b.parameters())
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    attn = blocks[0].attn
    neck = cfg.model.get('neck') or {}
    head = cfg.model.get('decode_head') or {}
    channels = neck.get('out_channels') or head.get('channels') or 0
    return ModelInfo(TASKS[config_scope(cfg)], backbone, params, trainable, params - in_blocks,
                     max(sum(p.numel() for p in b.parameters()) for b in blocks), channels,
                     attn.fused_attn, attn.attn_drop_rate)


def _steps(node):
    """Every dict with a type in a pipeline tree (RandomChoice branches included)."""
    if isinstance(node, dict):
        if 'type' in node:
            yield node
        for value in node.values():
            yield from _steps(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _steps(value)


def _scales(step) -> List[Tuple[int, int]]:
    values = step.get('scales') or ([step['scale']] if step.get('scale') is not None else [])
    return [tuple(v) if not isinstance(v, int) else (v, v) for v in values]


def training_input(cfg, task: str) -> Tuple[Tuple[int, ...], str]:
    """The largest input the config trains at (no batch, no channels), and where it is read:
    detection a fixed batch pad, else the largest training scale (short side x long limit,
    padded to the preprocessor's divisor: an image wide enough to reach both limits);
    segmentation the crop; video frames x crop."""
    pre = cfg.model.get('data_preprocessor') or {}
    pipeline = cfg.train_dataloader.dataset.get('pipeline', [])
    if task == 'segmentation' and pre.get('size'):
        return tuple(pre['size']), 'model.data_preprocessor.size (the training crop)'
    if task == 'video':
        frames = [s['clip_len'] for s in _steps(pipeline) if s['type'] == 'SampleFrames']
        crops = [max(sc) for s in _steps(pipeline) if s['type'] == 'Resize'
                 and s.get('keep_ratio') is False for sc in _scales(s)]
        crops += [s['crop_size'] if isinstance(s['crop_size'], int) else max(s['crop_size'])
                  for s in _steps(pipeline) if 'Crop' in s['type'] and s.get('crop_size')]
        if frames and crops:
            return (frames[0], crops[-1], crops[-1]), 'SampleFrames.clip_len x the final crop'
    for aug in pre.get('batch_augments') or []:
        if aug.get('type') == 'BatchFixedSizePad':
            return tuple(aug['size']), 'BatchFixedSizePad (every batch is padded to it)'
    scales = [sc for s in _steps(pipeline) for sc in _scales(s) if min(sc) > 0]
    if not scales:
        raise ValueError('config: the training pipeline has no scale or crop to read '
                         'the input size from; pass --size')
    short = max(min(s) for s in scales)
    long = max(max(s) for s in scales)
    div = pre.get('pad_size_divisor', 1) or 1
    size = tuple(math.ceil(v / div) * div for v in (short, long))
    return size, ('the largest training scale, short x long limit (a wide image reaching '
                  'both); typical 4:3 images are smaller')


def config_setup(cfg, info: ModelInfo, gpus: int, gpu_mem: float,
                 size: Optional[Tuple[int, ...]] = None) -> Setup:
    """The setting the config itself trains with on ``gpus`` GPUs (at ``size`` if given)."""
    wrapper = cfg.get('optim_wrapper') or {}
    precision = 'fp32'
    if wrapper.get('type') == 'AmpOptimWrapper':
        precision = 'bf16' if 'bf' in str(wrapper.get('dtype', 'float16')) else 'fp16'
    if uses_fsdp(cfg):
        sharding = 'fsdp'
    elif wrapper.get('constructor') == 'ZeroWhenDistributedConstructor':
        sharding = 'zero1'
    else:
        sharding = 'none'
    stages = info.backbone.stages
    size = size or training_input(cfg, info.task)[0]
    batch = cfg.train_dataloader.batch_size
    return Setup(gpus, gpu_mem, precision, sharding, [s.with_cp for s in stages],
                 [s.blocks[0].attn.attn_chunk_size for s in stages], batch, size)


def state_bytes(info: ModelInfo, setup: Setup) -> Dict[str, int]:
    """Parameters (fp32 masters, AMP included), gradients (fp32), AdamW's two fp32 moments,
    DDP's gradient buckets and FSDP's gathered units, per GPU."""
    n = setup.gpus
    out = dict(parameters=4 * info.params, gradients=4 * info.trainable,
               optimizer=8 * info.trainable)
    if setup.sharding in ('zero1', 'fsdp') and n > 1:
        out['optimizer'] //= n
    if setup.sharding == 'fsdp' and n > 1:
        out['parameters'] //= n
        out['gradients'] //= n
        # the root unit stays gathered; one block computes while the next is prefetched, and
        # a block's unsharded gradients exist until they are reduce-scattered
        out['fsdp_gathered'] = 4 * (info.root_params + 3 * info.largest_block)
    elif n > 1:
        out['ddp_buckets'] = 4 * info.trainable  # gradient_as_bucket_view=False (default)
    return out


def head_allowance(info: ModelInfo, setup: Setup) -> int:
    """A rough allowance for neck and head activations (not modelled, not validated):
    detection ~10 FPN-sized maps per level (strides 4-64) plus 3 cascade stages of RoI box
    (512 RoIs) and mask (128 RoIs) heads; segmentation ~12 stride-4 maps of the decode
    head's width; video nothing (the head pools first)."""
    a = 4 if setup.precision == 'fp32' else 2
    if info.task == 'video' or not info.head_channels:
        return 0
    h, w = setup.size[-2:]
    c = info.head_channels
    if info.task == 'segmentation':
        return 12 * setup.batch * math.ceil(h / 4) * math.ceil(w / 4) * c * a
    fpn = sum(math.ceil(h / s) * math.ceil(w / s) for s in (4, 8, 16, 32, 64))
    roi = 3 * (512 * 49 + 128 * 196) * c * 12
    return setup.batch * (10 * fpn * c + roi) * a


@dataclass
class MemoryPlan:
    """Per-GPU bytes of one setting, by component, and whether they fit."""
    setup: Setup
    parts: Dict[str, int]
    kernel: str

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    @property
    def budget(self) -> float:
        return self.setup.gpu_mem_gib * GIB * (1 - HEADROOM)

    @property
    def fits(self) -> bool:
        return self.total <= self.budget


def plan(info: ModelInfo, setup: Setup) -> MemoryPlan:
    """Every component of one setting."""
    stages = stage_shapes(info.backbone, setup.size, setup.batch, setup.with_cp, setup.chunks)
    acts = activation_plan(stages, setup.precision, info.backbone.out_indices,
                           stem_param_count(info.backbone), 'cuda', info.fused_attn,
                           info.attn_dropout)
    parts = state_bytes(info, setup)
    parts.update(activations_kept=acts.kept, activations_transient=acts.transient,
                 attention_masks=acts.masks, heads_rough=head_allowance(info, setup))
    return MemoryPlan(setup, parts, acts.kernel)


def _apply(setup: Setup, switch: str) -> Optional[Setup]:
    """``setup`` with one switch on, or None where it is on already."""
    s = copy.deepcopy(setup)
    if switch == 'with_cp':
        if all(s.with_cp):
            return None
        s.with_cp = [True] * len(s.with_cp)
    elif switch == 'fsdp':
        if s.sharding == 'fsdp' or s.gpus < 2:
            return None
        s.sharding = 'fsdp'
    elif switch == 'bf16':
        if s.precision != 'fp32':
            return None
        s.precision = 'bf16'
    elif switch == 'attn_chunk':
        smaller = [4 if c == 0 or c > 4 else 1 for c in s.chunks]
        if smaller == s.chunks:
            return None
        s.chunks = smaller
    elif switch == 'batch1':
        if s.batch == 1:
            return None
        s.batch = 1
    return s


def suggest(info: ModelInfo, setup: Setup) -> Optional[Tuple[List[str], MemoryPlan]]:
    """The first combination of switches that fits, fewest switches first, each size tried in
    the order checkpointing, FSDP, bf16, a smaller attention chunk, batch 1; None if none."""
    import itertools
    for k in range(1, len(SWITCH_ORDER) + 1):
        for combo in itertools.combinations(SWITCH_ORDER, k):
            s = setup
            for switch in combo:
                s = _apply(s, switch) if s is not None else None
            if s is None:
                continue
            p = plan(info, s)
            if p.fits:
                return list(combo), p
    return None


SWITCH_FLAGS = {'with_cp': lambda s: '--with-cp ' + ' '.join(str(int(c)) for c in s.with_cp),
                'fsdp': lambda s: '--sharding fsdp', 'bf16': lambda s: '--precision bf16',
                'attn_chunk': lambda s: '--attn-chunk ' + ' '.join(map(str, s.chunks)),
                'batch1': lambda s: '--batch 1'}
