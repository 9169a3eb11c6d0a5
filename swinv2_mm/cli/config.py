"""Reading a config the way the tools do, and rewriting the types of its entries."""
import os.path as osp
from typing import Iterator, Optional, Tuple

from mmengine.config import Config


def load_config(path: str, cfg_options: Optional[dict] = None, work_dir: Optional[str] = None,
                launcher: str = 'none') -> Config:
    """Reads a config (importing its ``custom_imports``), applies overrides, the launcher
    and a work dir."""
    import swinv2_mm  # noqa: F401  (registers the backbones before any config is built)
    if not osp.isfile(path):
        raise FileNotFoundError(f'config: {path!r} does not exist')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg


def typed_dicts(node, path: str = '') -> Iterator[Tuple[str, dict]]:
    """Every dict with a ``type`` key in a config tree, with its path (``model.x[0].y``)."""
    if isinstance(node, dict):
        if 'type' in node:
            yield path, node
        for key, value in node.items():
            yield from typed_dicts(value, f'{path}.{key}' if path else key)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from typed_dicts(value, f'{path}[{i}]')


def retype(node, old: str, new: str, **fields) -> int:
    """Gives every ``type=old`` dict in a config tree ``type=new`` (and ``fields``); returns
    how many it changed."""
    matches = [typed for _, typed in typed_dicts(node) if typed['type'] == old]
    for typed in matches:
        typed.update(fields, type=new)
    return len(matches)
