"""A backbone smoke run: build from a toolbox config, load weights across windows, run."""
import os
import tempfile
import time
from typing import Dict, List, Sequence

import torch

from .checkpoint import convert_file
from .models import SwinTransformerV2


def run_backbone_smoke(arch: str = 'tiny', sizes: Sequence[Sequence[int]] = ((256, 256), (333, 517)),
                       scope: str = 'mmdet') -> List[Dict]:
    """Saves window-8 weights in the official layout, converts them, builds the backbone at
    window 16 through ``scope``'s registry with ``init_cfg=Pretrained`` and runs it on
    several input sizes. Returns one record per size."""
    from mmengine.registry import init_default_scope
    init_default_scope(scope)
    from mmengine.registry import MODELS
    with tempfile.TemporaryDirectory() as tmp:
        src = SwinTransformerV2(arch, window_size=8)
        # the official release's layout: layers.i.*, a final 'norm', no per-stage norms
        official = {'model': {k.replace('stages.', 'layers.').replace('norm3.', 'norm.'): v
                              for k, v in src.state_dict().items()
                              if k.split('.')[0] not in ('norm0', 'norm1', 'norm2')}}
        torch.save(official, os.path.join(tmp, 'official_w8.pth'))
        convert_file(os.path.join(tmp, 'official_w8.pth'), os.path.join(tmp, 'swinv2_w8.safetensors'))
        model = MODELS.build(dict(type='SwinTransformerV2', arch=arch, window_size=16,
                                  pretrained_window_sizes=8,
                                  init_cfg=dict(type='Pretrained',
                                                checkpoint=os.path.join(tmp, 'swinv2_w8.safetensors'))))
        model.init_weights()
    model.eval()
    records = []
    for size in sizes:
        x = torch.randn(1, 3, *size)
        start = time.perf_counter()
        with torch.no_grad():
            outs = model(x)
        records.append(dict(size=tuple(size), seconds=time.perf_counter() - start,
                            shapes=[tuple(o.shape) for o in outs],
                            finite=all(bool(torch.isfinite(o).all()) for o in outs)))
    return records
