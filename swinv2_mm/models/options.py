"""The backbone's architecture presets and the checks of its arguments.

Every check raises :class:`ConfigError` naming the argument, the value given and what is
accepted, before any layer is built; the tools print it without a traceback.
"""
import math
from numbers import Real
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union


class ConfigError(ValueError):
    """A backbone argument that is invalid; the message names it and the fix."""


ARCH_ZOO: Dict[str, dict] = {
    'tiny': dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
    'small': dict(embed_dims=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
    'base': dict(embed_dims=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
    'large': dict(embed_dims=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48)),
    'huge': dict(embed_dims=352, depths=(2, 2, 18, 2), num_heads=(8, 16, 32, 64),
                 extra_norm_every_n_blocks=6),
    'giant': dict(embed_dims=512, depths=(2, 2, 42, 4), num_heads=(16, 32, 64, 128),
                  extra_norm_every_n_blocks=6),
}
ARCH_ALIASES = {'t': 'tiny', 's': 'small', 'b': 'base', 'l': 'large', 'h': 'huge', 'g': 'giant'}
ARCH_KEYS = ('embed_dims', 'depths', 'num_heads')
AUTO_ARCH = 'auto'  # read the architecture from the init_cfg checkpoint


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(name: str, value, minimum: int) -> int:
    """An int (not a bool or float) of at least ``minimum``."""
    if not _is_int(value) or value < minimum:
        raise ConfigError(f'{name}: expected an int >= {minimum}, got {value!r}')
    return value


def check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f'{name}: expected True or False, got {value!r}')
    return value


def check_rate(name: str, value) -> float:
    """A probability in [0, 1): 1 would drop everything (and divide by zero in drop path)."""
    if not isinstance(value, Real) or isinstance(value, bool) or not 0 <= value < 1:
        raise ConfigError(f'{name}: expected a probability in [0, 1), got {value!r}')
    return float(value)


def check_positive(name: str, value) -> float:
    if not isinstance(value, Real) or isinstance(value, bool) or not 0 < value < math.inf:
        raise ConfigError(f'{name}: expected a finite number > 0, got {value!r}')
    return float(value)


def resolve_arch(arch: Union[str, dict]) -> dict:
    """Arch name (or alias) or dict -> dict with embed_dims, depths, num_heads, extra norm."""
    if isinstance(arch, str):
        name = ARCH_ALIASES.get(arch.lower(), arch.lower())
        if name == AUTO_ARCH:
            raise ConfigError("arch: 'auto' is read from init_cfg's checkpoint by the backbone "
                              "(arch='auto', init_cfg=dict(type='Pretrained', checkpoint=PATH)); "
                              "alone it names no architecture")
        if name not in ARCH_ZOO:
            raise ConfigError(f'arch: unknown name {arch!r}; choose one of {sorted(ARCH_ZOO)}, '
                              f'{AUTO_ARCH!r} or pass a dict with keys {ARCH_KEYS}')
        return dict(ARCH_ZOO[name])
    if not isinstance(arch, dict) or not set(ARCH_KEYS) <= set(arch):
        raise ConfigError(f'arch: a custom arch must be a dict with keys {ARCH_KEYS}, got {arch!r}')
    extra = set(arch) - set(ARCH_KEYS) - {'extra_norm_every_n_blocks'}
    if extra:
        raise ConfigError(f'arch: unknown keys {sorted(extra)}; allowed {ARCH_KEYS} and '
                          f'extra_norm_every_n_blocks')
    arch = dict(arch)
    check_int('arch.embed_dims', arch['embed_dims'], 1)
    for key in ('depths', 'num_heads'):
        values = arch[key]
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values \
                or not all(_is_int(v) and v >= 1 for v in values):
            raise ConfigError(f'arch.{key}: expected a list of ints >= 1, one per stage, '
                              f'got {values!r}')
    if len(arch['depths']) != len(arch['num_heads']):
        raise ConfigError(f'arch: depths {arch["depths"]} and num_heads {arch["num_heads"]} '
                          f'must have one value per stage')
    if 'extra_norm_every_n_blocks' in arch:
        check_int('arch.extra_norm_every_n_blocks', arch['extra_norm_every_n_blocks'], 0)
    return arch


def _one_or_each(value, count: int) -> list:
    """A list or tuple as it is, anything else repeated ``count`` times (mmengine's
    ``to_ntuple`` would also unpack strings, dicts and sets)."""
    return list(value) if isinstance(value, (list, tuple)) else [value] * count


AXIS_NAMES = {1: '(w,)', 2: '(h, w)', 3: '(t, h, w)'}


def per_axis(name: str, value, num_axes: int, minimum: int = 1,
             noun: str = 'entry') -> Tuple[int, ...]:
    """An int (the same along every axis) or one int per axis -> a tuple of ``num_axes``."""
    values = tuple(_one_or_each(value, num_axes))
    if len(values) != num_axes or not all(_is_int(v) for v in values):
        raise ConfigError(f'{name}: expected {AXIS_NAMES.get(num_axes, num_axes)} ints or one '
                          f'int for every axis, got {value!r}')
    if any(v < minimum for v in values):
        raise ConfigError(f'{name}: every {noun} must be >= {minimum}, got {value!r}')
    return values


def per_stage_window(name: str, value, num_stages: int, num_axes: int, minimum: int = 1,
                     int_window: Optional[Callable[[int], Tuple[int, ...]]] = None
                     ) -> List[Tuple[int, ...]]:
    """The one window rule: an int is every stage's window (``int_window(w)``, by default w
    along every axis); a list or tuple (the two mean the same) of ``num_axes`` ints is one
    per-axis window for every stage; one of ``num_stages`` entries gives each stage its own,
    an int or a per-axis list/tuple. Where both readings fit and differ, nothing is guessed."""
    int_window = int_window or (lambda w: (w,) * num_axes)

    def one(label, v):
        if _is_int(v):
            if v < minimum:
                raise ConfigError(f'{label}: every window must be >= {minimum}, got {v!r}')
            return tuple(int_window(v))
        return per_axis(label, v, num_axes, minimum, 'window')

    if _is_int(value):
        return [one(name, value)] * num_stages
    sequence = isinstance(value, (list, tuple))
    shared = sequence and len(value) == num_axes and all(_is_int(v) for v in value)
    each = sequence and len(value) == num_stages
    if not (shared or each):
        raise ConfigError(f'{name}: expected an int, {num_axes} ints (one window '
                          f'{AXIS_NAMES[num_axes]} for every stage) or a list of {num_stages} '
                          f'values (one per stage 0..{num_stages - 1}), got {value!r}')
    if shared:
        shared = [per_axis(name, value, num_axes, minimum, 'window')] * num_stages
    if each:
        each = [one(f'{name}[{i}]', v) for i, v in enumerate(value)]
    if shared and each and shared != each:
        raise ConfigError(
            f'{name}: {value!r} is ambiguous with {num_stages} stages of {num_axes} axes: one '
            f'window {shared[0]} for every stage, or per stage {each}; write '
            f'{[list(w) for w in shared]} for the first or {[list(w) for w in each]} for the '
            f'second')
    return shared or each


def per_stage(name: str, value, num_stages: int, check, kind: str) -> list:
    """A single value for every stage, or a list of one per stage (e.g. ``with_cp``), each
    passed through ``check(name, value)``; ``kind`` names the single value in the message."""
    values = _one_or_each(value, num_stages)
    if len(values) != num_stages:
        raise ConfigError(f'{name}: expected {kind} or a list of {num_stages} (one per stage '
                          f'0..{num_stages - 1}), got {value!r}')
    return [check(name, v) for v in values]


def check_chunk_size(name: str, value) -> int:
    if not _is_int(value) or value < 0:
        raise ConfigError(f'{name}: expected 0 (off) or a positive number of windows, '
                          f'got {value!r}')
    return value


def pretrained_init_cfg(init_cfg):
    """The ``type='Pretrained'`` entry of an mmengine ``init_cfg`` (a dict or a list of
    dicts), None when there is none; a malformed one is refused here, not at load time."""
    cfgs = init_cfg if isinstance(init_cfg, list) else [] if init_cfg is None else [init_cfg]
    if not all(isinstance(c, dict) and 'type' in c for c in cfgs):
        raise ConfigError(f'init_cfg: expected None, a dict with a type, or a list of such '
                          f'dicts, got {init_cfg!r}')
    pretrained = [c for c in cfgs if c['type'] == 'Pretrained']
    if len(pretrained) > 1 or (pretrained and not isinstance(pretrained[0].get('checkpoint'), str)):
        raise ConfigError(f'init_cfg: expected one dict(type=\'Pretrained\', checkpoint=PATH or '
                          f'URL), got {init_cfg!r}')
    return pretrained[0] if pretrained else None


def is_auto_arch(arch) -> bool:
    return isinstance(arch, str) and arch.lower() == AUTO_ARCH


def auto_arch_checkpoint(init_cfg) -> dict:
    """The ``type='Pretrained'`` init_cfg that ``arch='auto'`` reads its architecture from."""
    pretrained = pretrained_init_cfg(init_cfg)
    if pretrained is None:
        raise ConfigError("arch: 'auto' reads the architecture from the checkpoint of init_cfg, "
                          "but there is none; add init_cfg=dict(type='Pretrained', "
                          "checkpoint=PATH), or name the arch ('tiny', ..., 'giant', or a dict "
                          f"with keys {ARCH_KEYS})")
    return pretrained


def check_out_indices(value, num_stages: int) -> Tuple[int, ...]:
    indices = tuple(_one_or_each(value, 1))
    for i in indices:
        if not _is_int(i) or not 0 <= i < num_stages:
            raise ConfigError(f'out_indices: {i!r} is out of range; stages are numbered '
                              f'0..{num_stages - 1}')
    if len(set(indices)) != len(indices) or not indices:
        raise ConfigError(f'out_indices: expected distinct stage numbers, got {value!r}')
    return indices
