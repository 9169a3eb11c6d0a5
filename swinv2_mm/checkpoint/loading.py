"""Reading checkpoint files and loading them into a swinv2_mm backbone."""
import os
import re
import zipfile
from typing import Dict, Mapping, Optional, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log

from .files import CheckpointFileError, load_any_checkpoint, load_checkpoint_file
from .convert import convert_state_dict, unwrap_state_dict
from .inflate import inflate_2d_to_3d, needs_inflation

_OUT_NORM = re.compile(r'^norm\d+\.')


class CheckpointFitError(ValueError):
    """A checkpoint whose weights do not fit the model they are loaded into."""


def read_checkpoint(path: str, mmap: bool = False) -> Mapping:
    """Reads a local ``.pth``/``.pt``/``.bin``/``.safetensors`` file or a URL, tensors only.

    Pickles, local or remote, are read with torch's weights-only unpickler and their contents
    checked: loading weights never runs code (see ``swinv2_mm.checkpoint.files``). ``mmap``
    maps a local zip-format file instead of reading it, so only the tensors used are paged
    in (for inspection).
    """
    if '://' in path:
        return load_any_checkpoint(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint: {path!r} does not exist; check init_cfg.checkpoint '
                                f'(or the path given on the command line)')
    if not path.endswith('.safetensors'):
        return load_checkpoint_file(path, mmap=mmap and zipfile.is_zipfile(path))
    from safetensors.torch import load_file
    try:
        return load_file(path, device='cpu')
    except Exception as err:  # safetensors raises several types for a bad file
        raise CheckpointFileError(f'checkpoint: {path!r} is truncated or not a safetensors file: '
                                  f'{type(err).__name__}: {err}') from None


def _shape(t: Optional[torch.Tensor]) -> str:
    return 'absent' if t is None else str(tuple(t.shape))


def check_fits(model_sd: Mapping[str, torch.Tensor], sd: Mapping[str, torch.Tensor]) -> None:
    """Raises CheckpointFitError naming the first key whose presence or shape differs.

    Output norms ``norm{i}`` may be absent on either side: ImageNet checkpoints hold only
    the last one, and a model need not output every stage.
    """
    # model order first (patch embedding, stages, norms), then keys only the checkpoint has
    for key in list(model_sd) + sorted(set(sd) - set(model_sd), key=_natural_key):
        a, b = sd.get(key), model_sd.get(key)
        if (a is None or b is None) and _OUT_NORM.match(key):
            continue
        if a is None or b is None or a.shape != b.shape:
            raise CheckpointFitError(
                f'checkpoint does not fit this architecture: {key} is {_shape(a)} in the '
                f'checkpoint but {_shape(b)} in the model (check arch, depths, num_heads, '
                f'in_channels and patch_size)')


def revise_keys(state: Mapping, revisions) -> dict:
    """``state`` with each key rewritten by every ``(pattern, replacement)`` in turn
    (mmengine's ``revise_keys``)."""
    out = {}
    for key, value in state.items():
        for pattern, replacement in revisions:
            key = re.sub(pattern, replacement, key)
        out[key] = value
    return out


def check_model_fits(model: nn.Module, state: Mapping, source: str, ignore=()) -> None:
    """Raises CheckpointFitError naming the first weight whose shape differs between
    ``state`` and ``model``, unless it matches a regular expression of ``ignore`` (kept
    initialised), and when ``state`` holds none of the model's weights at all."""
    model_sd = model.state_dict()
    common = [key for key in model_sd if key in state]
    if model_sd and not common:
        raise CheckpointFitError(
            f"{source} holds none of this model's weights (its first keys: "
            f"{list(state)[:3]}, the model's: {list(model_sd)[:3]}); a backbone-only file "
            f"goes in model.backbone.init_cfg=dict(type='Pretrained', checkpoint=...)")
    for key in common:
        theirs, ours = state[key], model_sd[key]
        if getattr(theirs, 'shape', ours.shape) != ours.shape and \
                not any(re.search(pattern, key) for pattern in ignore):
            raise CheckpointFitError(
                f'{source} does not fit this model: {key} is {tuple(theirs.shape)} in the '
                f'checkpoint but {tuple(ours.shape)} in the model (another architecture, or '
                f'another number of classes). To fine-tune from it with a new head on purpose, '
                f'list the weights to leave initialised in the config: '
                f'load_from_ignore=[{key.rsplit(".", 1)[0]!r}] (regular expressions)')


def _natural_key(key: str):
    return [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', key)]


def source_name(checkpoint: Union[str, Mapping]) -> str:
    """How messages name a checkpoint: by its path, or as a dict given loaded."""
    return f'checkpoint {checkpoint!r}' if isinstance(checkpoint, str) else 'checkpoint (a dict)'


def select_prefix(checkpoint: Mapping, prefix: Optional[str], source: str) -> Mapping:
    """The tensors under ``prefix`` (init_cfg's ``prefix``), with it removed; all of
    ``checkpoint`` when no prefix is given."""
    if not prefix:
        return checkpoint
    sd = {k[len(prefix):]: v for k, v in unwrap_state_dict(checkpoint).items()
          if k.startswith(prefix)}
    if not sd:
        raise ValueError(f'{source}: no key starts with prefix {prefix!r}; check '
                         f'init_cfg.prefix (or leave it out for a backbone-only file)')
    return sd


def load_pretrained(model: nn.Module, checkpoint: Union[str, Mapping],
                    prefix: Optional[str] = None) -> Dict[str, list]:
    """Loads SwinV2 weights of any known layout into ``model`` at its own window sizes.

    2D weights given to a 3D model are inflated first.

    Returns the keys that were not loaded (``missing``) and ignored (``unexpected``).
    """
    source = source_name(checkpoint)
    ckpt = read_checkpoint(checkpoint) if isinstance(checkpoint, str) else checkpoint
    sd = convert_state_dict(select_prefix(ckpt, prefix, source), source=source)
    model_sd = model.state_dict()
    if needs_inflation(sd, model_sd):
        sd = inflate_2d_to_3d(sd, model_sd)
        print_log(f'swinv2_mm: {source} holds 2D weights; inflated to the 3D model (patch kernel '
                  f'spread over time, zero dt input in every CPB meta network)', logger='current')
    check_fits(model_sd, sd)
    missing = sorted(k for k in model_sd if k not in sd)
    unexpected = sorted(k for k in sd if k not in model_sd)
    model.load_state_dict({k: v for k, v in sd.items() if k in model_sd}, strict=False)

    def names(keys):
        return sorted({k.rsplit('.', 1)[0] for k in keys}) or 'none'

    print_log(f'swinv2_mm: loaded {len(sd) - len(unexpected)} tensors from {source}; '
              f'kept initialised (not in checkpoint): {names(missing)}; '
              f'ignored (not in model): {names(unexpected)}', logger='current')
    return dict(missing=missing, unexpected=unexpected)


def convert_file(src: str, dst: str) -> Dict[str, torch.Tensor]:
    """Converts a checkpoint file offline; writes ``.safetensors`` or a ``.pth`` state dict."""
    sd = convert_state_dict(read_checkpoint(src), source=source_name(src))
    sd = {k: v.contiguous() for k, v in sd.items()}
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    tmp = dst + '.tmp'
    if dst.endswith('.safetensors'):
        from safetensors.torch import save_file
        save_file(sd, tmp, metadata={'format': 'pt', 'layout': 'swinv2_mm'})
    else:
        torch.save({'state_dict': sd, 'meta': {'layout': 'swinv2_mm'}}, tmp)
    os.replace(tmp, dst)
    return sd
