"""Annotation format checks: real layouts pass, each kind of damage is named with its file."""
import json
import os

import pytest
from PIL import Image

from swinv2_mm.datasets.checks import (AnnotationFormatError, check_coco_file,
                                       check_dataset_format, check_segmentation_folders,
                                       check_video_list)
from swinv2_mm.datasets.shapes_ade import generate_shapes_ade
from swinv2_mm.datasets.shapes_coco import generate_shapes_coco
from swinv2_mm.datasets.shapes_motion import generate_shapes_motion


@pytest.fixture(scope='module')
def coco(tmp_path_factory):
    root = generate_shapes_coco(str(tmp_path_factory.mktemp('coco') / 'data'), 6, 2, 64)
    return os.path.join(root, 'annotations', 'instances_train.json')


def test_generated_coco_passes(coco):
    check_coco_file(coco)


@pytest.mark.parametrize('damage, message', [
    (lambda d: 'not json {', 'is not valid JSON'),
    (lambda d: [d], 'holds a JSON list'),
    (lambda d: {k: v for k, v in d.items() if k != 'categories'}, "'categories' is missing"),
    (lambda d: dict(d, images={'0': d['images'][0]}), "'images' is dict"),
    (lambda d: dict(d, images=[{'id': 1}] + d['images']), "images[0] lacks ['file_name'"),
    (lambda d: dict(d, annotations=d['annotations'][:1] + [dict(d['annotations'][1], bbox=[1, 2])]),
     'annotations[1].bbox is [1, 2]'),
])
def test_damaged_coco_is_named(coco, tmp_path, damage, message):
    with open(coco) as f:
        data = json.load(f)
    bad = tmp_path / 'instances.json'
    damaged = damage(data)
    bad.write_text(damaged if isinstance(damaged, str) else json.dumps(damaged))
    with pytest.raises(AnnotationFormatError) as err:
        check_coco_file(str(bad))
    assert message in str(err.value) and str(bad) in str(err.value)


@pytest.fixture()
def ade(tmp_path):
    root = generate_shapes_ade(str(tmp_path / 'data'), 4, 1, 64)
    return (os.path.join(root, 'images', 'training'), os.path.join(root, 'annotations', 'training'))


def test_ade_layout_passes_and_a_missing_label_map_is_named(ade):
    images, labels = ade
    check_segmentation_folders(images, labels, '.jpg', '.png')
    name = sorted(os.listdir(labels))[2]
    os.remove(os.path.join(labels, name))
    with pytest.raises(AnnotationFormatError, match=f'1 of 4 images have no label map.*{name}'):
        check_segmentation_folders(images, labels, '.jpg', '.png')
    with pytest.raises(AnnotationFormatError, match='holds no .jpeg images'):
        check_segmentation_folders(images, labels, '.jpeg', '.png')


def test_colour_label_maps_are_refused(ade):
    images, labels = ade
    for name in os.listdir(labels):
        Image.new('RGB', (64, 64)).save(os.path.join(labels, name))
    with pytest.raises(AnnotationFormatError, match='is a RGB image.*one channel'):
        check_segmentation_folders(images, labels, '.jpg', '.png')


def test_generated_rawframe_list_passes(tmp_path):
    root = generate_shapes_motion(str(tmp_path / 'data'), 3, 1, num_frames=4, image_size=32)
    check_video_list(os.path.join(root, 'train_list_rawframes.txt'), rawframes=True)


@pytest.mark.parametrize('line, message', [
    ('clip_0 0 3', 'video has no frames (TOTAL_FRAMES is 0)'),
    ('clip_0 16 walking', 'expected integer frame counts and labels'),
    ('clip_0', 'a rawframe list line is FRAME_DIR TOTAL_FRAMES LABEL'),
])
def test_bad_rawframe_lines_are_named(tmp_path, line, message):
    path = tmp_path / 'list.txt'
    path.write_text(f'clip_1 16 2\n{line}\n')
    with pytest.raises(AnnotationFormatError) as err:
        check_video_list(str(path), rawframes=True)
    assert f'{path}:2' in str(err.value) and message in str(err.value)


def test_video_lists_check_files_and_labels(tmp_path):
    (tmp_path / 'a.mp4').write_bytes(b'\x00' * 100)
    (tmp_path / 'empty.mp4').write_bytes(b'')
    path = tmp_path / 'list.txt'
    cases = {'a.mp4 3': None, 'a.mp4 jump': 'expected integer labels',
             'missing.mp4 3': 'does not exist', 'empty.mp4 3': 'video has no frames (empty file'}
    for line, message in cases.items():
        path.write_text(f'a.mp4 1\n{line}\n')
        if message is None:
            check_video_list(str(path), rawframes=False, video_dir=str(tmp_path))
            continue
        with pytest.raises(AnnotationFormatError, match=message.replace('(', r'\(')):
            check_video_list(str(path), rawframes=False, video_dir=str(tmp_path))
    path.write_text('\n\n')
    with pytest.raises(AnnotationFormatError, match='lists no videos'):
        check_video_list(str(path), rawframes=False, video_dir=str(tmp_path))


# Empty data is refused before the build, naming the file and the fix.

@pytest.mark.parametrize('damage, counts', [
    (lambda d: dict(d, annotations=[]), '6 images, 0 annotations'),
    (lambda d: dict(d, images=[], annotations=[]), '0 images, 0 annotations'),
    (lambda d: dict(d, images=[]), '0 images, '),
], ids=['no annotations', 'nothing', 'no images'])
def test_empty_coco_is_refused_naming_the_file(coco, tmp_path, damage, counts):
    with open(coco) as f:
        data = json.load(f)
    empty = tmp_path / 'instances_train2017.json'
    empty.write_text(json.dumps(damage(data)))
    with pytest.raises(AnnotationFormatError) as err:
        check_coco_file(str(empty))
    assert f"annotation file '{empty}' is empty: {counts}" in str(err.value)
    assert "'need at least one array to concatenate'" in str(err.value)
    assert '--cfg-options train_dataloader.dataset.ann_file=' in str(err.value)


def fake_dataset(kind, **attributes):
    """A class that the format checks see as the toolbox's ``kind`` (they go by class name)."""
    return type('Custom', (type(kind, (), {}),), attributes)


def test_coco_without_annotations_of_the_dataset_classes_is_refused(coco):
    from swinv2_mm.datasets.shapes import CLASSES
    check_dataset_format(dict(ann_file=coco), fake_dataset('CocoDataset', METAINFO=dict(
        classes=CLASSES)), '', {})
    for ds, cls in [(dict(ann_file=coco), fake_dataset('CocoDataset', METAINFO=dict(
                        classes=('person', 'car')))),
                    (dict(ann_file=coco, metainfo=dict(classes=['person'])),
                     fake_dataset('CocoDataset', METAINFO=dict(classes=CLASSES)))]:
        with pytest.raises(AnnotationFormatError) as err:
            check_dataset_format(ds, cls, '', {})
        assert f"annotation file '{coco}' has no annotation of the dataset's classes" in str(
            err.value) and 'metainfo.classes' in str(err.value)


def test_empty_segmentation_split_and_folder_are_refused(ade, tmp_path):
    images, labels = ade
    split = tmp_path / 'train.txt'
    split.write_text('\n')
    seg = fake_dataset('BaseSegDataset')
    ds = dict(ann_file=str(split), data_prefix=dict(img_path=images, seg_map_path=labels),
              img_suffix='.jpg', seg_map_suffix='.png')
    with pytest.raises(AnnotationFormatError, match=f"split file '{split}' lists no images"):
        check_dataset_format(ds, seg, '', {})
    empty = tmp_path / 'images'
    empty.mkdir()
    with pytest.raises(AnnotationFormatError, match=f"image folder '{empty}' holds no .jpg "
                                                    f"images: an empty dataset. Point "
                                                    f"data_prefix.img_path"):
        check_dataset_format(dict(ds, ann_file=None, data_prefix=dict(
            img_path=str(empty), seg_map_path=labels)), seg, '', {})


def test_empty_video_list_is_refused_with_the_line_format(tmp_path):
    path = tmp_path / 'train_list_rawframes.txt'
    path.write_text('')
    with pytest.raises(AnnotationFormatError, match=f"video list '{path}' lists no videos: an "
                                                    f"empty dataset.*FRAME_DIR TOTAL_FRAMES"):
        check_video_list(str(path), rawframes=True)
