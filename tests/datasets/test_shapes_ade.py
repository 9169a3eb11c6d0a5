"""The generated shapes in ADE20K form: determinism, layout, labels, caching, mmseg."""
import filecmp
import os

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from swinv2_mm.datasets import shapes_ade, shapes_coco
from swinv2_mm.datasets.shapes_ade import (CLASSES_ADE, ShapesADEDataset, generate_shapes_ade,
                                           image_rng, render_image)

SMALL = dict(num_train=8, num_val=4, image_size=128)
FOLDERS = {'train': 'training', 'val': 'validation'}


@pytest.fixture(scope='module')
def dataset_root(tmp_path_factory):
    """A 24 + 4 image dataset shared by the read-only tests."""
    root = str(tmp_path_factory.mktemp('shapes_ade') / 'data')
    return generate_shapes_ade(root, num_train=24, num_val=4, image_size=128)


def files(root, kind, split):
    """Sorted paths of ``root/<kind>/<ADE split folder>/*``."""
    folder = os.path.join(root, kind, FOLDERS[split])
    return [os.path.join(folder, name) for name in sorted(os.listdir(folder))]


def read_labels(path):
    with Image.open(path) as label:
        assert label.mode == 'L'
        return np.asarray(label)


def coco_mask(obj, size):
    """The object's polygon as a binary mask, the way COCO tools rasterise it."""
    polygon = [obj.polygon.reshape(-1).tolist()]
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygon, size, size))) > 0


def near_box(obj, size, margin=2):
    """Pixels within ``margin`` of the object's box."""
    x0, y0 = np.floor(obj.polygon.min(axis=0)).astype(int) - margin
    x1, y1 = np.ceil(obj.polygon.max(axis=0)).astype(int) + margin + 1
    region = np.zeros((size, size), dtype=bool)
    region[max(y0, 0):y1, max(x0, 0):x1] = True
    return region


def siblings(root):
    """Entries next to ``root`` that share its name: temporary or discarded copies."""
    parent, name = os.path.split(root)
    return sorted(n for n in os.listdir(parent) if n.startswith(name) and n != name)


def test_generation_is_deterministic_and_differs_from_coco(tmp_path):
    a = generate_shapes_ade(str(tmp_path / 'a'), **SMALL)
    b = generate_shapes_ade(str(tmp_path / 'b'), **SMALL)
    for kind in ('images', 'annotations'):
        for split in ('train', 'val'):
            names = [os.path.basename(p) for p in files(a, kind, split)]
            assert names == [os.path.basename(p) for p in files(b, kind, split)]
            match, mismatch, errors = filecmp.cmpfiles(
                os.path.join(a, kind, FOLDERS[split]), os.path.join(b, kind, FOLDERS[split]),
                names, shallow=False)
            assert len(match) == SMALL[f'num_{split}'] and not mismatch and not errors
    train, val = files(a, 'images', 'train')[0], files(a, 'images', 'val')[0]
    assert not filecmp.cmp(train, val, shallow=False)
    coco_scene, _, _ = render_image(shapes_coco.image_rng(0, 'train', 0), 128)
    ade_scene, _, _ = render_image(image_rng(0, 'train', 0), 128)
    assert not np.array_equal(coco_scene, ade_scene)


@pytest.mark.parametrize('split', ['train', 'val'])
def test_layout_follows_ade20k(dataset_root, split):
    images = files(dataset_root, 'images', split)
    labels = files(dataset_root, 'annotations', split)
    count = {'train': 24, 'val': 4}[split]
    assert [os.path.basename(p) for p in images] == [f'{i:06d}.jpg' for i in range(count)]
    assert [os.path.basename(p) for p in labels] == [f'{i:06d}.png' for i in range(count)]
    for image_path, label_path in zip(images, labels):
        with Image.open(image_path) as image:
            assert image.format == 'JPEG' and image.mode == 'RGB' and image.size == (128, 128)
        assert read_labels(label_path).shape == (128, 128)


def test_labels_follow_the_ade_convention(dataset_root):
    seen = set()
    for path in files(dataset_root, 'annotations', 'train'):
        values = set(np.unique(read_labels(path)).tolist())
        assert values <= {0, 1, 2, 3, 4, 5}
        assert {0, 1} <= values, 'no background or no outline band'
        seen |= values
    assert seen == {0, 1, 2, 3, 4, 5}, 'some shape never occurs'


def test_labels_match_the_rendered_objects(dataset_root):
    """Each object's class fills its polygon, less a 1 px band along the outline."""
    images = files(dataset_root, 'images', 'train')
    labels_on_disk = files(dataset_root, 'annotations', 'train')
    for index, (image_path, label_path) in enumerate(zip(images, labels_on_disk)):
        image, _, objects = render_image(image_rng(0, 'train', index), 128, appearance_by_class=True)
        with Image.open(image_path) as on_disk:
            assert np.abs(np.asarray(on_disk, dtype=float) - image).mean() < 5, 'not this scene'
        labels = read_labels(label_path)
        band = np.zeros(labels.shape, dtype=bool)
        for obj in objects:
            mask = coco_mask(obj, 128)
            own = (labels == obj.category_id + 1) & near_box(obj, 128)
            assert (own & mask).sum() >= 0.97 * own.sum(), 'class drawn outside the polygon'
            assert own.sum() >= 0.7 * mask.sum(), 'polygon not filled with its class'
            assert (labels[mask] == 1).sum() <= 0.03 * mask.sum(), 'background inside'
            band |= near_box(obj, 128)
        assert not (labels == 0)[~band].any(), 'unlabelled pixels away from objects'
        assert (labels == 1)[~band].all()


def test_same_parameters_do_not_rewrite_new_ones_regenerate(tmp_path, monkeypatch):
    root = generate_shapes_ade(str(tmp_path / 'data'), **SMALL)
    watched = files(root, 'images', 'train')[:2] + files(root, 'annotations', 'val')[:2]
    mtimes = [os.stat(p).st_mtime_ns for p in watched]
    with monkeypatch.context() as patch:
        patch.setattr(shapes_ade, 'render_image', None)  # rendering anything would fail
        assert generate_shapes_ade(root, **SMALL) == root
    assert [os.stat(p).st_mtime_ns for p in watched] == mtimes

    generate_shapes_ade(root, **dict(SMALL, num_val=3))
    assert len(files(root, 'images', 'val')) == len(files(root, 'annotations', 'val')) == 3
    assert os.path.exists(os.path.join(root, '.complete'))
    assert siblings(root) == []


def test_a_coco_dataset_with_the_same_parameters_is_refused_untouched(tmp_path):
    """Another dataset's folder is not an older copy of this one: generation never replaces it."""
    from swinv2_mm.datasets.generation import DataRootError
    root = shapes_coco.generate_shapes_coco(str(tmp_path / 'data'), **SMALL)
    before = sorted(os.listdir(root))
    with pytest.raises(DataRootError, match="holds the generated dataset 'shapes_coco', not "
                                            "'shapes_ade'"):
        generate_shapes_ade(root, **SMALL)
    assert sorted(os.listdir(root)) == before and siblings(root) == []


def test_default_roots_share_the_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv('SWINV2_MM_DATA', str(tmp_path))
    assert shapes_ade.default_data_root() == str(tmp_path / 'shapes_ade_v3')
    assert shapes_coco.default_data_root() == str(tmp_path / 'shapes_coco_v1')


def test_mmseg_dataset_generates_and_loads(tmp_path):
    from mmdet.registry import DATASETS as DET_DATASETS
    from mmengine.registry import DefaultScope
    from mmseg.registry import DATASETS
    from mmseg.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    cfg = dict(
        type='ShapesADEDataset',
        data_root=str(tmp_path / 'data'),
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        generate=dict(SMALL),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations', reduce_zero_label=True),
                  dict(type='PackSegInputs')])
    with DefaultScope.overwrite_default_scope('mmseg'):
        dataset = DATASETS.build(cfg)
        item = dataset[0]
    assert isinstance(dataset, ShapesADEDataset) and ShapesADEDataset.GENERATES_DATA
    assert len(dataset) == 4
    assert dataset.metainfo['classes'] == CLASSES_ADE
    assert len(dataset.metainfo['palette']) == len(CLASSES_ADE)
    assert tuple(item['inputs'].shape) == (3, 128, 128)
    values = set(item['data_samples'].gt_sem_seg.data.unique().tolist())
    assert values <= {0, 1, 2, 3, 4, 255} and {0, 255} <= values and len(values) >= 3
    assert DET_DATASETS.get('ShapesCocoDataset') is shapes_coco.ShapesCocoDataset


def test_class_textures_change_only_the_objects():
    """appearance_by_class keeps the scene (placement, background) and re-textures objects."""
    plain, plain_bg, plain_objects = render_image(image_rng(3, 'train', 1), 128)
    textured, textured_bg, textured_objects = render_image(image_rng(3, 'train', 1), 128,
                                                           appearance_by_class=True)
    assert np.array_equal(plain_bg, textured_bg)
    assert [o.category_id for o in plain_objects] == [o.category_id for o in textured_objects]
    assert all(np.array_equal(a.polygon, b.polygon) for a, b in zip(plain_objects, textured_objects))
    outside = np.all(plain == plain_bg, axis=-1) & np.all(textured == textured_bg, axis=-1)
    assert np.array_equal(plain[outside], textured[outside])
