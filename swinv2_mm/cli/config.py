"""Reading a config the way the tools do, and rewriting the types of its entries."""
import os.path as osp
from typing import Optional

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


def retype(node, old: str, new: str, **fields) -> int:
    """Gives every ``type=old`` dict in a config tree ``type=new`` (and ``fields``); returns
    how many it changed."""
    count = 0
    if isinstance(node, dict):
        if node.get('type') == old:
            node.update(fields, type=new)
            count += 1
        for value in node.values():
            count += retype(value, old, new, **fields)
    elif isinstance(node, (list, tuple)):
        for value in node:
            count += retype(value, old, new, **fields)
    return count
