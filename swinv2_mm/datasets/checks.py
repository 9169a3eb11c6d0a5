"""Format checks for the annotation files and folders a config points at, run by the tools
before any model is built, so a wrong file is named with what is wrong instead of failing
deep inside a toolbox's loader. No toolbox is imported here."""
import inspect
import json
import os.path as osp
from typing import Dict, Iterable, List, Optional, Sequence, Set

from mmengine.fileio import list_dir_or_file


class AnnotationFormatError(ValueError):
    """An annotation file or folder that exists but is not in the format its dataset reads."""


COCO_FIELDS = {'images': ('id', 'file_name', 'height', 'width'),
               'annotations': ('id', 'image_id', 'category_id', 'bbox'),
               'categories': ('id', 'name')}


EMPTY_COCO_FAILURE = ("mmdet would otherwise stop later, after building the model, with "
                      "'need at least one array to concatenate'")


def check_coco_file(path: str) -> Set[str]:
    """A COCO instances file: JSON with ``images``, ``annotations`` and ``categories`` lists
    whose entries carry the fields mmdet reads; boxes are four numbers; at least one image and
    one annotation (mmdet drops images without objects, an empty list fails deep inside it).
    Returns the names of the categories that have annotations."""
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise AnnotationFormatError(f'annotation file {path!r} is not valid JSON ({err}); a COCO '
                                    f'instances file was expected') from None
    if not isinstance(data, dict):
        raise AnnotationFormatError(f'annotation file {path!r} holds a JSON {type(data).__name__}; '
                                    f'COCO format is an object with {sorted(COCO_FIELDS)}')
    for key, fields in COCO_FIELDS.items():
        entries = data.get(key)
        if not isinstance(entries, list):
            raise AnnotationFormatError(
                f'annotation file {path!r} is not COCO format: {key!r} is '
                f'{"missing" if entries is None else type(entries).__name__}, a list was expected')
        for i, entry in enumerate(entries):
            missing = [f for f in fields if not isinstance(entry, dict) or f not in entry]
            if missing:
                raise AnnotationFormatError(f'annotation file {path!r} is not COCO format: '
                                            f'{key}[{i}] lacks {missing}')
    for i, ann in enumerate(data['annotations']):
        box = ann['bbox']
        if not (isinstance(box, list) and len(box) == 4
                and all(isinstance(v, (int, float)) for v in box)):
            raise AnnotationFormatError(f'annotation file {path!r} is not COCO format: '
                                        f'annotations[{i}].bbox is {box!r}, [x, y, w, h] expected')
    if not data['images'] or not data['annotations']:
        raise AnnotationFormatError(
            f"annotation file {path!r} is empty: {len(data['images'])} images, "
            f"{len(data['annotations'])} annotations; {EMPTY_COCO_FAILURE}. Point ann_file at an "
            f"instances file with images and their annotations (--cfg-options "
            f"train_dataloader.dataset.ann_file=...)")
    names = {category['id']: category['name'] for category in data['categories']}
    return {names[ann['category_id']] for ann in data['annotations']
            if ann['category_id'] in names}


def check_coco_classes(path: str, annotated: Set[str], classes: Sequence[str]) -> None:
    """mmdet keeps only the annotations of the dataset's ``classes`` (matched by name): a file
    with none of them is an empty dataset."""
    if classes and not annotated & set(classes):
        shown = sorted(annotated)[:5]
        raise AnnotationFormatError(
            f'annotation file {path!r} has no annotation of the dataset\'s classes: it annotates '
            f'{shown}{" ..." if len(annotated) > 5 else ""}, the dataset reads '
            f'{list(classes)[:5]}{" ..." if len(classes) > 5 else ""}; mmdet drops annotations '
            f'of other classes, and {EMPTY_COCO_FAILURE}. Name the classes of the file in the '
            f'dataset config: --cfg-options "train_dataloader.dataset.metainfo.classes=[...]"')


def _files_with_suffix(folder: str, suffix: str) -> List[str]:
    """Paths below ``folder`` (recursively) ending in ``suffix``, relative, without it."""
    return sorted(path[:-len(suffix)] for path in
                  list_dir_or_file(folder, list_dir=False, suffix=suffix, recursive=True))


def check_segmentation_folders(img_dir: str, seg_dir: str, img_suffix: str, seg_suffix: str,
                               names: Optional[Iterable[str]] = None) -> None:
    """ADE20K layout (mmseg): every image ``NAME{img_suffix}`` has its label map
    ``NAME{seg_suffix}``, a one-channel image of class indices."""
    names = list(names) if names is not None else _files_with_suffix(img_dir, img_suffix)
    if not names:
        raise AnnotationFormatError(
            f'image folder {img_dir!r} holds no {img_suffix} images: an empty dataset. Point '
            f'data_prefix.img_path at the folder of the images, or set img_suffix to their suffix')
    missing = [n for n in names if not osp.isfile(osp.join(seg_dir, n + seg_suffix))]
    if missing:
        raise AnnotationFormatError(
            f'{len(missing)} of {len(names)} images have no label map in {seg_dir!r}, e.g. '
            f'{missing[0] + img_suffix} needs {osp.join(seg_dir, missing[0] + seg_suffix)}')
    from PIL import Image
    first = osp.join(seg_dir, names[0] + seg_suffix)
    try:
        with Image.open(first) as label_map:
            mode = label_map.mode
    except OSError as err:
        raise AnnotationFormatError(f'label map {first!r} cannot be read ({err})') from None
    if mode not in ('L', 'P', 'I', 'I;16'):
        raise AnnotationFormatError(
            f'label map {first!r} is a {mode} image; ADE20K-format label maps hold one channel of '
            f'class indices (mode L or P)')


def check_video_list(path: str, rawframes: bool, video_dir: Optional[str] = None,
                     with_offset: bool = False, delimiter: Optional[str] = None) -> None:
    """An mmaction2 list file: ``VIDEO LABEL...`` per line (VideoDataset), or
    ``FRAME_DIR [OFFSET] TOTAL_FRAMES LABEL...`` (RawframeDataset). Labels are integers; a
    video with no frames (a count of 0, an empty video file) is an error, as is a listed
    video file that does not exist under ``video_dir``."""
    with open(path, encoding='utf-8') as f:
        lines = f.read().splitlines()
    counted = 2 if with_offset else 1
    entries = 0
    for number, line in enumerate(lines, 1):
        fields = line.strip().split(delimiter if not rawframes else None)
        if not fields or fields == ['']:
            continue
        entries += 1
        where = f'{path}:{number} ({line.strip()!r})'
        numbers = fields[1:]
        if rawframes and len(numbers) < counted:
            raise AnnotationFormatError(
                f'{where}: a rawframe list line is FRAME_DIR {"OFFSET " if with_offset else ""}'
                f'TOTAL_FRAMES LABEL')
        if not all(v.lstrip('-').isdigit() for v in numbers):
            raise AnnotationFormatError(
                f'{where}: expected integer '
                f'{"frame counts and " if rawframes else ""}labels after the '
                f'{"frame folder" if rawframes else "video file"}')
        if rawframes and int(numbers[counted - 1]) <= 0:
            raise AnnotationFormatError(f'{where}: video has no frames (TOTAL_FRAMES is '
                                        f'{numbers[counted - 1]})')
        if not rawframes and video_dir is not None:
            video = osp.join(video_dir, fields[0])
            if not osp.isfile(video):
                raise AnnotationFormatError(f'{where}: video file {video!r} does not exist')
            if osp.getsize(video) == 0:
                raise AnnotationFormatError(f'{where}: video has no frames (empty file {video!r})')
    if not entries:
        line = 'FRAME_DIR TOTAL_FRAMES LABEL' if rawframes else 'VIDEO LABEL'
        raise AnnotationFormatError(f'video list {path!r} lists no videos: an empty dataset. '
                                    f'Point ann_file at a list of one video per line ({line})')


def _init_default(cls, name: str, fallback):
    """The default a dataset class gives an argument (e.g. ADE20K's ``img_suffix``)."""
    param = inspect.signature(cls).parameters.get(name)
    return fallback if param is None or param.default is param.empty else param.default


def check_coco_file_once(path: str, checked: Dict[str, Set[str]]) -> Set[str]:
    """COCO files are large: the val set and its evaluator name the same one; parse it once.
    ``checked`` maps the files checked so far to what ``check_coco_file`` returned."""
    key = osp.abspath(path)
    if key not in checked:
        checked[key] = check_coco_file(path)
    return checked[key]


def _dataset_classes(ds: dict, cls) -> Sequence[str]:
    """The class names a dataset config reads: its ``metainfo`` or its class's METAINFO."""
    classes = (ds.get('metainfo') or {}).get('classes')
    return classes or (getattr(cls, 'METAINFO', None) or {}).get('classes') or ()


def check_dataset_format(ds: dict, cls, root: str, coco_checked: Dict[str, Set[str]]) -> None:
    """Checks the annotation format of a COCO, segmentation (ADE20K layout) or mmaction2
    video/rawframe dataset config whose files exist, and that it is not empty."""
    kinds = {klass.__name__ for klass in getattr(cls, '__mro__', ())}
    ann = osp.join(root, ds['ann_file']) if is_local(ds.get('ann_file')) else None
    prefix = {k: osp.join(root, v) for k, v in (ds.get('data_prefix') or {}).items()
              if is_local(v)}
    if 'CocoDataset' in kinds and ann and ann.endswith('.json'):
        check_coco_classes(ann, check_coco_file_once(ann, coco_checked),
                           _dataset_classes(ds, cls))
    elif 'BaseSegDataset' in kinds and 'img_path' in prefix and 'seg_map_path' in prefix:
        names = None
        if ann:
            with open(ann) as f:
                names = [line.strip() for line in f if line.strip()]
            if not names:
                raise AnnotationFormatError(
                    f'split file {ann!r} lists no images: an empty dataset. Point ann_file at a '
                    f'file with one image name (without suffix) per line, or leave it out to '
                    f'read every image of data_prefix.img_path')
        check_segmentation_folders(
            prefix['img_path'], prefix['seg_map_path'],
            ds.get('img_suffix', _init_default(cls, 'img_suffix', '.jpg')),
            ds.get('seg_map_suffix', _init_default(cls, 'seg_map_suffix', '.png')), names)
    elif 'RawframeDataset' in kinds and ann:
        check_video_list(ann, rawframes=True, with_offset=ds.get('with_offset', False))
    elif 'VideoDataset' in kinds and ann:
        check_video_list(ann, rawframes=False, video_dir=prefix.get('video', root),
                         delimiter=ds.get('delimiter', ' '))


def is_local(path) -> bool:
    """A local file name (not empty, not a URL)."""
    return isinstance(path, str) and bool(path) and '://' not in path
