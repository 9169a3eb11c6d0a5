"""What tools/train.py and tools/test.py do, for detection, segmentation and video configs."""
import os
import os.path as osp
from typing import Iterator, Optional, Tuple

import torch
from mmengine.config import Config, ConfigDict, DictAction

# what each tool reads: training also validates
PHASE_DATALOADERS = {'train': ('train_dataloader', 'val_dataloader'), 'test': ('test_dataloader',)}
PHASE_EVALUATORS = {'train': ('val_evaluator',), 'test': ('test_evaluator',)}


class DataNotFoundError(FileNotFoundError):
    """A dataset, annotation file or image folder a config names does not exist."""


def load_config(path: str, cfg_options: Optional[dict] = None, work_dir: Optional[str] = None,
                launcher: str = 'none') -> Config:
    """Reads a config (importing its ``custom_imports``), applies overrides and a work dir."""
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
    if launcher != 'none' and not torch.cuda.is_available():
        prepare_cpu_distributed(cfg)
    return cfg


def _retype(node, old: str, new: str, **fields) -> int:
    """Gives every ``type=old`` dict in a config tree ``type=new`` (and ``fields``); returns
    how many it changed."""
    count = 0
    if isinstance(node, dict):
        if node.get('type') == old:
            node.update(fields, type=new)
            count += 1
        for value in node.values():
            count += _retype(value, old, new, **fields)
    elif isinstance(node, (list, tuple)):
        for value in node:
            count += _retype(value, old, new, **fields)
    return count


def prepare_cpu_distributed(cfg: Config) -> None:
    """Makes a multi-process run work without GPUs through mmengine's own code paths.

    mmengine 0.10.7 assumes CUDA in three places: its pytorch launcher calls
    ``torch.cuda.set_device`` (so the gloo process group is created here first, and
    mmengine, finding it, skips its own), its DDP wrapper passes ``device_ids=[LOCAL_RANK]``
    (rejected for CPU modules: ``model_wrapper_cfg`` passes None) and SyncBN needs CUDA
    (SyncBN layers become BN: statistics are per process). GPU runs are untouched.
    """
    cfg.setdefault('env_cfg', ConfigDict()).setdefault('dist_cfg', ConfigDict())
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None,
                                     broadcast_buffers=False,
                                     find_unused_parameters=cfg.get('find_unused_parameters',
                                                                    False))
    if _retype(cfg.model, 'SyncBN', 'BN'):
        print('swinv2_mm: CPU data parallel: SyncBN layers run as BN (per-process statistics); '
              'SyncBN needs CUDA')
    import torch.distributed as dist
    if not dist.is_initialized() and 'RANK' in os.environ:
        dist.init_process_group('gloo')


def finish_distributed() -> None:
    """Leaves the process group at the end of a tool, so that a torchrun process exits
    cleanly (gloo aborts a process that exits with its group still up)."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


SKIPPED_IMAGES_FILE = 'skipped_images.txt'


def use_checked_image_loading(cfg: Config, skip_corrupt: bool = False) -> None:
    """Loads images with ``CheckedLoadImageFromFile``: a corrupt or truncated image stops the
    run with its path, or, with ``skip_corrupt``, training skips it, logs it and lists it
    in ``WORK_DIR/skipped_images.txt`` (validation and test images always stop the run)."""
    from .datasets import image_loading  # noqa: F401  (registers the transform)
    skipped_log = osp.join(cfg.work_dir, SKIPPED_IMAGES_FILE)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        skip = skip_corrupt and key == 'train_dataloader'
        fields = dict(skip_corrupt=True, skipped_log=skipped_log) if skip else {}
        if cfg.get(key):
            _retype(cfg[key], 'LoadImageFromFile', 'CheckedLoadImageFromFile', **fields)
    if skip_corrupt:
        cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [
            dict(type='SkippedImagesHook', skipped_log=skipped_log)]


def enable_amp(cfg: Config) -> str:
    """Mixed precision: bfloat16 where the GPU supports it, else float16 with loss scaling.

    fp16 overflow in attention is the known Swin failure, hence bf16 first. On a machine
    without a GPU this refuses: mmengine's AmpOptimWrapper runs only on accelerators and
    mmcv's CPU RoI ops have no bfloat16 kernels.
    """
    if not torch.cuda.is_available():
        raise RuntimeError('--amp needs a GPU: mmengine\'s AmpOptimWrapper runs only on '
                           'accelerators, and mmcv\'s CPU RoIAlign/NMS have no bfloat16 kernels. '
                           'Train in fp32 on the CPU (drop --amp).')
    dtype = 'bfloat16' if torch.cuda.is_bf16_supported() else 'float16'
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.dtype = dtype
    cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    return dtype


def set_resume(cfg: Config, resume: Optional[str]) -> None:
    """``--resume`` alone resumes from the work dir's last checkpoint, or from the path given."""
    if resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif resume is not None:
        cfg.resume, cfg.load_from = True, resume


def check_checkpoint_paths(cfg: Config) -> None:
    """Opens the checkpoint a run will load (``load_from``, or the work dir's latest for
    ``--resume``) before any model is built, so a missing, truncated, foreign or untrusted
    file is reported at once, by name."""
    from mmengine.runner import find_latest_checkpoint
    from .engine.safe_load import check_checkpoint_file
    path = cfg.get('load_from')
    if path is None and cfg.get('resume'):
        path = find_latest_checkpoint(cfg.work_dir) if osp.isdir(cfg.work_dir) else None
        if path is None:
            print(f'swinv2_mm: --resume: no checkpoint in {cfg.work_dir} yet, training starts '
                  f'from the beginning')
    if path is not None and _is_local(path):
        check_checkpoint_file(path)


def _dataset_cfgs(cfg: dict, key: str) -> Iterator[Tuple[str, dict]]:
    """Every leaf dataset config under a dataloader, unwrapping dataset wrappers."""
    stack = [(f'{key}.dataset', cfg)]
    while stack:
        name, ds = stack.pop()
        if 'datasets' in ds:
            stack += [(f'{name}.datasets[{i}]', d) for i, d in enumerate(ds['datasets'])]
        elif 'dataset' in ds:
            stack.append((f'{name}.dataset', ds['dataset']))
        else:
            yield name, ds


def _dataset_class(dataset_type, scope: Optional[str]):
    if not isinstance(dataset_type, str):
        return dataset_type
    from mmengine.registry import DATASETS, DefaultScope
    with DefaultScope.overwrite_default_scope(scope):
        with DATASETS.switch_scope_and_registry(scope) as registry:
            return registry.get(dataset_type)


def _init_default(cls, name: str, fallback):
    """The default a dataset class gives an argument (e.g. ADE20K's ``img_suffix``)."""
    import inspect
    param = inspect.signature(cls).parameters.get(name)
    return fallback if param is None or param.default is param.empty else param.default


def _check_coco_once(path: str, checked: set) -> None:
    """COCO files are large: the val set and its evaluator name the same one; parse it once."""
    from .datasets.checks import check_coco_file
    key = osp.abspath(path)
    if key not in checked:
        check_coco_file(path)
        checked.add(key)


def _check_format(ds: dict, cls, root: str, coco_checked: set) -> None:
    """Checks the annotation format of a COCO, segmentation (ADE20K layout) or mmaction2
    video/rawframe dataset config whose files exist."""
    from .datasets.checks import check_segmentation_folders, check_video_list
    kinds = {klass.__name__ for klass in getattr(cls, '__mro__', ())}
    ann = osp.join(root, ds['ann_file']) if _is_local(ds.get('ann_file')) else None
    prefix = {k: osp.join(root, v) for k, v in (ds.get('data_prefix') or {}).items()
              if _is_local(v)}
    if 'CocoDataset' in kinds and ann and ann.endswith('.json'):
        _check_coco_once(ann, coco_checked)
    elif 'BaseSegDataset' in kinds and 'img_path' in prefix and 'seg_map_path' in prefix:
        names = None
        if ann:
            with open(ann) as f:
                names = [line.strip() for line in f if line.strip()]
        check_segmentation_folders(
            prefix['img_path'], prefix['seg_map_path'],
            ds.get('img_suffix', _init_default(cls, 'img_suffix', '.jpg')),
            ds.get('seg_map_suffix', _init_default(cls, 'seg_map_suffix', '.png')), names)
    elif 'RawframeDataset' in kinds and ann:
        check_video_list(ann, rawframes=True, with_offset=ds.get('with_offset', False))
    elif 'VideoDataset' in kinds and ann:
        check_video_list(ann, rawframes=False, video_dir=prefix.get('video', root),
                         delimiter=ds.get('delimiter', ' '))


def _is_local(path) -> bool:
    return isinstance(path, str) and bool(path) and '://' not in path


def check_data_paths(cfg: Config, phase: str) -> None:
    """Raises DataNotFoundError, before any model is built, for a data root, annotation file,
    image/video folder or evaluator annotation file of ``phase`` that does not exist, and
    AnnotationFormatError for annotations that exist but are not in their dataset's format."""
    scope = cfg.get('default_scope')
    coco_checked: set = set()
    for key in PHASE_DATALOADERS[phase]:
        loader = cfg.get(key)
        if not loader or 'dataset' not in loader:
            continue
        for name, ds in _dataset_cfgs(loader['dataset'], key):
            cls = _dataset_class(ds.get('type'), scope)
            if getattr(cls, 'GENERATES_DATA', False):  # the embedded demos create their files
                continue
            root = ds.get('data_root') or ''
            if _is_local(root) and not osp.isdir(root):
                raise DataNotFoundError(_missing_message(f'{name}.data_root', root, cfg))
            ann = ds.get('ann_file')
            if _is_local(ann) and not osp.isfile(osp.join(root, ann)):
                raise DataNotFoundError(_missing_message(f'{name}.ann_file', osp.join(root, ann), cfg))
            for field, prefix in (ds.get('data_prefix') or {}).items():
                path = osp.join(root, prefix) if _is_local(prefix) else None
                if path and not osp.exists(path):
                    raise DataNotFoundError(_missing_message(f'{name}.data_prefix.{field}', path, cfg))
            _check_format(ds, cls, root, coco_checked)
    for key in PHASE_EVALUATORS[phase]:
        evaluators = cfg.get(key) or []
        for i, ev in enumerate(evaluators if isinstance(evaluators, list) else [evaluators]):
            ann = ev.get('ann_file') if isinstance(ev, dict) else None
            if _is_local(ann) and not osp.isfile(ann):
                raise DataNotFoundError(_missing_message(f'{key}.ann_file', ann, cfg))
            if _is_local(ann) and ann.endswith('.json') and 'Coco' in str(ev.get('type')):
                _check_coco_once(ann, coco_checked)


def _missing_message(key: str, path: str, cfg: Config) -> str:
    layout = {
        'mmdet': "COCO as mmdet lays it out: data/coco/{annotations/instances_train2017.json, "
                 "annotations/instances_val2017.json, train2017/, val2017/}",
        'mmseg': "ADE20K as mmseg lays it out: data/ade/ADEChallengeData2016/{images,annotations}/"
                 "{training,validation}/",
        'mmaction': "Kinetics-400 as mmaction2 lays it out: data/kinetics400/{videos_train, "
                    "videos_val, kinetics400_train_list_videos.txt, ...}",
    }.get(cfg.get('default_scope'), 'the dataset')
    return (f'dataset not found: {key} = {path!r} does not exist (from {os.getcwd()}). '
            f'Expected {layout}. Put the data there (a symlink works) or point the config '
            f'elsewhere: --cfg-options train_dataloader.dataset.data_root=DIR/ '
            f'val_dataloader.dataset.data_root=DIR/ test_dataloader.dataset.data_root=DIR/ '
            f'(and val_evaluator.ann_file / test_evaluator.ann_file where the config sets them)')


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


def make_runner(cfg: Config):
    """Builds the runner the config asks for (``runner_type``), by default mmengine's Runner
    with atomic checkpoints (``SafeCheckpointRunner``), with the hooks that make resume
    exact and stop on a non-finite loss."""
    from mmengine.registry import RUNNERS
    from .engine import SafeCheckpointRunner, add_protecting_hooks
    add_protecting_hooks(cfg)
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return SafeCheckpointRunner.from_cfg(cfg)


def add_common_args(parser) -> None:
    """The flags mmdet users know, shared by tools/train.py and tools/test.py."""
    parser.add_argument('--work-dir', help='folder for logs and checkpoints')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, key=value (e.g. '
                             'model.backbone.window_size=24)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher (torchrun uses pytorch)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
