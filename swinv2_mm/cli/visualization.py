"""Drawing predictions while testing (tools/test.py --show, --show-dir)."""
import os.path as osp
from typing import Optional

from mmengine.config import Config


def enable_show_dir(cfg: Config, show_dir: Optional[str], show: bool = False,
                    wait_time: float = 2.0) -> None:
    """Makes the toolbox's own visualisation hook draw predictions while testing."""
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise ValueError('--show-dir/--show: this config has no default_hooks.visualization')
    hook['draw'] = True
    hook['show'] = show
    hook['wait_time'] = wait_time
    if show_dir is None:
        return
    show_dir = osp.abspath(show_dir)
    if hook['type'] == 'DetVisualizationHook':
        hook['test_out_dir'] = show_dir
    elif hook['type'] == 'SegVisualizationHook':
        cfg.visualizer['save_dir'] = show_dir
        hook['interval'] = 1  # mmseg's hook would draw only every 50th test batch
    else:
        raise ValueError(f'--show-dir: unsupported visualization hook {hook["type"]}; '
                         f'detection and segmentation configs are supported')
