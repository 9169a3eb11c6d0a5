"""The config rewriting behind tools/window_search.py: windows, log-CPB normalisers, input size.

A SwinV2 stage normalises its log-CPB coordinates by ``pretrained_window_sizes`` where it is
non-zero and otherwise by the window it attends with, which shrinks to the map along an
axis where the map is not larger than the configured window (``models/windows.py``
``effective_window``, ``models/position_bias.py``). Testing at another window therefore
sets ``pretrained_window_sizes`` to what every stage normalised by in training, so that
only the window changes.
"""
import ast
import copy
from typing import Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from mmengine.config import Config

from ..models.options import ConfigError

Window = Tuple[int, ...]
RESIZE_TYPES = ('Resize',)
CROP_TYPES = ('CenterCrop', 'ThreeCrop', 'TenCrop', 'FiveCrop')
WINDOW_KEYS = ('window_size', 'pretrained_window_sizes', 'temporal_window')


class StageWindows(NamedTuple):
    """A backbone's per-stage windows, resolved by the backbone's own rules."""
    window_sizes: List[Window]
    pretrained_window_sizes: List[Window]
    num_axes: int
    attention_windows: Callable[[Sequence[int]], List[Window]]  # per stage, for an input size


def backbone_class(cfg: Config):
    """The class of ``model.backbone``; ConfigError unless it is a swinv2_mm SwinV2 backbone."""
    from mmengine.registry import MODELS  # swinv2_mm's __init__ registered the backbones

    from ..models.backbone import SwinV2Backbone
    backbone = cfg.get('model', {}).get('backbone')
    if not isinstance(backbone, Mapping) or 'type' not in backbone:
        raise ConfigError('model.backbone: the config has no backbone; window search needs a '
                          'SwinV2 backbone (SwinTransformerV2 or VideoSwinTransformerV2)')
    cls = MODELS.get(backbone['type']) if isinstance(backbone['type'], str) else backbone['type']
    if not (isinstance(cls, type) and issubclass(cls, SwinV2Backbone)):
        raise ConfigError(f"model.backbone.type={backbone['type']!r} is not a swinv2_mm SwinV2 "
                          f"backbone (SwinTransformerV2 or VideoSwinTransformerV2); the window "
                          f"search changes only those backbones' windows")
    return cls


def resolve_windows(backbone_cfg: Mapping) -> StageWindows:
    """Per-stage (window, pretrained window) of a backbone config, read from the backbone
    built on the meta device: its own parsing of ints, tuples and per-stage lists, at no
    memory cost for any size."""
    import torch
    from mmengine.registry import MODELS
    with torch.device('meta'):
        backbone = MODELS.build(copy.deepcopy(dict(backbone_cfg)))
    return StageWindows([tuple(w) for w in backbone.window_sizes],
                        [tuple(p) for p in backbone.pretrained_window_sizes],
                        backbone.num_axes, backbone.attention_windows)


def _literal_keywords(call: ast.AST) -> Dict[str, ast.AST]:
    """The keyword arguments of a ``dict(...)`` call node (empty for anything else)."""
    if isinstance(call, ast.Call) and getattr(call.func, 'id', None) == 'dict':
        return {k.arg: k.value for k in call.keywords if k.arg}
    return {}


def recorded_backbone_windows(checkpoint: Mapping) -> Dict[str, object]:
    """The window entries of ``model.backbone`` in the config a runner checkpoint records
    (``meta.cfg``), read with ``ast.literal_eval``: the text is never executed."""
    text = (checkpoint.get('meta') or {}).get('cfg') if isinstance(checkpoint, Mapping) else None
    if not isinstance(text, str):
        return {}
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, 'id', None) for t in node.targets] == \
                ['model']:
            backbone = _literal_keywords(node.value).get('backbone')
            found = {}
            for key, value in _literal_keywords(backbone).items():
                if key in WINDOW_KEYS:
                    try:
                        found[key] = ast.literal_eval(value)
                    except ValueError:
                        pass
            return found
    return {}


def training_normalisers(windows: StageWindows, input_size: Sequence[int]) -> List[Window]:
    """What each stage's log-CPB was normalised by: the non-zero pretrained window, else the
    window the stage attended with at ``input_size`` (shrunk where its map is not larger)."""
    return [tuple(p if p > 0 else w for p, w in zip(pretrained, attended))
            for pretrained, attended in zip(windows.pretrained_window_sizes,
                                            windows.attention_windows(input_size))]


def checkpoint_normalisers(checkpoint: Mapping, num_axes: int
                           ) -> Tuple[Optional[List[Window]], str]:
    """The normalisers the checkpoint's window buffers say (official and mmpretrain layouts
    keep them), lifted to ``num_axes``, or None, with what was found."""
    from ..checkpoint.inspect import inspect_checkpoint, lift_windows
    try:
        info = inspect_checkpoint(checkpoint, prefix='backbone.')
    except ValueError as err:
        return None, f'the checkpoint could not be inspected ({err})'
    if info.pretrained_window_sizes is None:
        return None, f'the checkpoint ({info.layout} layout) keeps no window buffers'
    lifted = lift_windows(info.pretrained_window_sizes, num_axes)
    if lifted is None:
        return None, (f'the checkpoint\'s window buffers have {info.num_axes} axes, the '
                      f'backbone {num_axes}')
    return lifted, (f'the checkpoint\'s window buffers: stages ran at {info.window_sizes}, '
                    f'log-CPB normalised by {info.pretrained_window_sizes}')


def search_windows(window: int, own: List[Window]) -> List[Window]:
    """Every stage's window for a searched int: w along the spatial axes (the last two),
    the configured window along any leading (temporal) axis."""
    return [tuple(w[:-2]) + (window, window) for w in own]


def format_windows(windows: List[Window]) -> str:
    """Per-stage windows as ``--cfg-options`` takes them: as a config writes them
    (``window_config``), one int where every stage has the same square 2D window."""
    from ..checkpoint.inspect import window_config
    per_stage = window_config(windows)
    if isinstance(per_stage[0], int) and len(set(per_stage)) == 1:
        return str(per_stage[0])
    return format_option(per_stage)


def _step_type(step) -> str:
    name = step.get('type') if isinstance(step, Mapping) else None
    return name.split('.')[-1] if isinstance(name, str) else getattr(name, '__name__', '')


def size_steps(pipeline: Sequence) -> List[Tuple[int, str]]:
    """(index, key) of every step that sets the input size: a ``Resize`` scale, a centre,
    three or ten crop's crop_size."""
    found = []
    for i, step in enumerate(pipeline):
        kind = _step_type(step)
        if kind in RESIZE_TYPES and step.get('scale') is not None:
            found.append((i, 'scale'))
        elif kind in CROP_TYPES and step.get('crop_size') is not None:
            found.append((i, 'crop_size'))
    return found


def _sides(value) -> List[int]:
    """The positive sides of a scale or crop size (-1 in ``(-1, 256)`` means 'keep ratio')."""
    values = [value] if isinstance(value, (int, float)) else list(value)
    return [v for v in values if v > 0]


def own_input_size(pipeline: Sequence) -> Optional[int]:
    """The config's own input size S: the crop size where the pipeline crops (video), else the
    short side of its resize scale; None without a step that sets it."""
    steps = size_steps(pipeline)
    crops = [pipeline[i][k] for i, k in steps if k == 'crop_size']
    scales = [pipeline[i][k] for i, k in steps if k == 'scale']
    if crops:
        return min(_sides(crops[-1]))
    return min(_sides(scales[-1])) if scales else None


def _scaled(value, factor: float):
    """A scale or crop size with every positive side times ``factor``, same shape and type."""
    if isinstance(value, (int, float)):
        return int(round(value * factor))
    return type(value)(int(round(v * factor)) if v > 0 else v for v in value)


def resized_pipeline(pipeline: Sequence, size: int) -> Tuple[list, Dict[str, object]]:
    """The pipeline at input size ``size`` (every resize scale and crop size times
    size / :func:`own_input_size`, so a long-side limit stays proportionate) and the changed
    entries as ``{'INDEX.KEY': value}``. ConfigError without a step that sets the size."""
    own = own_input_size(pipeline)
    if own is None:
        kinds = [_step_type(s) for s in pipeline]
        raise ConfigError(f'--sizes: the test pipeline (test_dataloader.dataset.pipeline: '
                          f'{kinds}) has no Resize step with a scale and no '
                          f'{"/".join(CROP_TYPES)} step with a crop_size, which --sizes would '
                          f'change; leave out --sizes to search windows at the config\'s own '
                          f'input')
    pipeline = copy.deepcopy(list(pipeline))
    changed = {}
    for i, key in size_steps(pipeline):
        value = _scaled(pipeline[i][key], size / own)
        if value != pipeline[i][key]:
            changed[f'{i}.{key}'] = value
        pipeline[i][key] = value
    return pipeline, changed


def format_option(value) -> str:
    """A value as ``--cfg-options`` (mmengine's DictAction) reads it back: no spaces."""
    return repr(value).replace(' ', '')


def first_batch_input_size(cfg: Config, num_axes: int) -> Window:
    """The input size (last ``num_axes`` axes) of the first test batch as the backbone sees
    it: the test data loader through the model's data preprocessor (padding included)."""
    import torch
    from mmengine.registry import MODELS, DefaultScope
    from mmengine.runner import Runner
    loader_cfg = copy.deepcopy(cfg.test_dataloader)
    loader_cfg.update(num_workers=0, persistent_workers=False)
    preprocessor = cfg.model.get('data_preprocessor') or dict(type='BaseDataPreprocessor')
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        loader = Runner.build_dataloader(loader_cfg)
        batch = next(iter(loader))
        with torch.no_grad():
            inputs = MODELS.build(copy.deepcopy(preprocessor))(batch, False)['inputs']
    return tuple(inputs.shape[-num_axes:])


def training_input_size(cfg: Config, num_axes: int) -> Tuple[Window, str]:
    """The input size training ran at, with where it was read: the data preprocessor's
    ``size`` (mmseg pads every training batch to it), else the first test batch (the config's
    own test input, which the demo and paper recipes train at too)."""
    size = (cfg.model.get('data_preprocessor') or {}).get('size')
    if size is not None and num_axes == 2:
        return tuple(size), 'model.data_preprocessor.size, which every training batch is padded to'
    return first_batch_input_size(cfg, num_axes), 'the first test batch at the config\'s own size'
