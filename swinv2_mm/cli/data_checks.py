"""The data a config names, checked before any model is built: missing paths are named with
the layout expected and the ``--cfg-options`` that point elsewhere; files that exist are
checked for their dataset's format (:func:`swinv2_mm.datasets.checks.check_dataset_format`);
the folders of generated datasets are checked with the publisher's own rule
(:func:`swinv2_mm.datasets.generation.check_publishable`), so a folder generation would refuse
stops the tool before any model is built, untouched."""
import os
import os.path as osp
from typing import Iterator, Optional, Tuple

from mmengine.config import Config

from ..datasets.checks import check_coco_file_once, check_dataset_format, is_local
from ..datasets.generation import DataRootError

# what each tool reads: training also validates
PHASE_DATALOADERS = {'train': ('train_dataloader', 'val_dataloader'), 'test': ('test_dataloader',)}
PHASE_EVALUATORS = {'train': ('val_evaluator',), 'test': ('test_evaluator',)}


class DataNotFoundError(FileNotFoundError):
    """A dataset, annotation file or image folder a config names does not exist."""


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


def _registered_class(registry_name: str, type_name, scope: Optional[str]):
    """The class a config's ``type`` names in mmengine's ``registry_name`` registry (e.g.
    'DATASETS') as ``scope`` sees it."""
    if not isinstance(type_name, str):
        return type_name
    import mmengine.registry
    root_registry = getattr(mmengine.registry, registry_name)
    with mmengine.registry.DefaultScope.overwrite_default_scope(scope):
        with root_registry.switch_scope_and_registry(scope) as registry:
            return registry.get(type_name)


def _check_generated(cls, key: str, cfg: dict) -> None:
    """A generated dataset's folder and parameters, as its publisher would check them; the
    message names the config key."""
    try:
        cls.check_generated_root(cfg.get('data_root'), cfg.get('generate'))
    except DataRootError as err:
        raise DataRootError(f'{key}.data_root: {err}') from None
    except TypeError as err:  # an unknown or surplus generate argument
        raise ValueError(f'{key}.generate: {err}') from None
    except ValueError as err:  # a bad count: the message starts with 'generate.<name>'
        raise ValueError(f'{key}.{err}') from None


def check_data_paths(cfg: Config, phase: str) -> None:
    """Raises DataNotFoundError, before any model is built, for a data root, annotation file,
    image/video folder or evaluator annotation file of ``phase`` that does not exist,
    AnnotationFormatError for annotations that exist but are not in their dataset's format or
    are empty, and DataRootError for the folder of a generated dataset (or metric) that is
    not absent, empty or an older copy of that dataset."""
    scope = cfg.get('default_scope')
    coco_checked: dict = {}
    for key in PHASE_DATALOADERS[phase]:
        loader = cfg.get(key)
        if not loader or 'dataset' not in loader:
            continue
        for name, ds in _dataset_cfgs(loader['dataset'], key):
            cls = _registered_class('DATASETS', ds.get('type'), scope)
            if getattr(cls, 'GENERATES_DATA', False):  # the embedded demos create their files
                _check_generated(cls, name, ds)
                continue
            root = ds.get('data_root') or ''
            if is_local(root) and not osp.isdir(root):
                raise DataNotFoundError(_missing_message(f'{name}.data_root', root, cfg))
            ann = ds.get('ann_file')
            if is_local(ann) and not osp.isfile(osp.join(root, ann)):
                raise DataNotFoundError(
                    _missing_message(f'{name}.ann_file', osp.join(root, ann), cfg))
            for field, prefix in (ds.get('data_prefix') or {}).items():
                path = osp.join(root, prefix) if is_local(prefix) else None
                if path and not osp.exists(path):
                    raise DataNotFoundError(
                        _missing_message(f'{name}.data_prefix.{field}', path, cfg))
            check_dataset_format(ds, cls, root, coco_checked)
    for key in PHASE_EVALUATORS[phase]:
        evaluators = cfg.get(key) or []
        for i, ev in enumerate(evaluators if isinstance(evaluators, list) else [evaluators]):
            if not isinstance(ev, dict):
                continue
            where = f'{key}[{i}]' if isinstance(evaluators, list) else key
            if 'data_root' in ev or 'generate' in ev:  # a metric over generated data
                cls = _registered_class('METRICS', ev.get('type'), scope)
                if getattr(cls, 'GENERATES_DATA', False):
                    _check_generated(cls, where, ev)
            ann = ev.get('ann_file')
            if is_local(ann) and not osp.isfile(ann):
                raise DataNotFoundError(_missing_message(f'{key}.ann_file', ann, cfg))
            if is_local(ann) and ann.endswith('.json') and 'Coco' in str(ev.get('type')):
                check_coco_file_once(ann, coco_checked)


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
