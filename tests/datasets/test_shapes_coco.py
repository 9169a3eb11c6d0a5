"""The generated shapes dataset: determinism, COCO validity, rendering, caching, mmdet."""
import collections
import filecmp
import json
import multiprocessing
import os

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from swinv2_mm.datasets.shapes_coco import CLASSES, ShapesCocoDataset, generate_shapes_coco
from swinv2_mm.datasets import shapes_coco
from swinv2_mm.datasets.generation import STAMP_NAME
from swinv2_mm.datasets.shapes_coco import image_rng, render_image

SMALL = dict(num_train=12, num_val=4, image_size=128)


@pytest.fixture(scope='module')
def dataset_root(tmp_path_factory):
    """A 40 + 4 image dataset shared by the read-only tests."""
    root = str(tmp_path_factory.mktemp('shapes') / 'data')
    return generate_shapes_coco(root, num_train=40, num_val=4, image_size=128)


def ann_file(root, split):
    return os.path.join(root, 'annotations', f'instances_{split}.json')


def image_file(root, split, coco, image_id):
    return os.path.join(root, split, coco.imgs[image_id]['file_name'])


def rasterize(ann, height, width):
    """The annotation's polygon as a binary mask, the way COCO tools see it."""
    rle = mask_utils.merge(mask_utils.frPyObjects(ann['segmentation'], height, width))
    return mask_utils.decode(rle).astype(bool)


def siblings(root):
    """Entries next to ``root`` that share its name: temporary or discarded copies."""
    parent, name = os.path.split(root)
    return sorted(n for n in os.listdir(parent) if n.startswith(name) and n != name)


def test_generation_is_deterministic_and_splits_differ(tmp_path):
    a = generate_shapes_coco(str(tmp_path / 'a'), **SMALL)
    b = generate_shapes_coco(str(tmp_path / 'b'), **SMALL)
    for split in ('train', 'val'):
        with open(ann_file(a, split)) as fa, open(ann_file(b, split)) as fb:
            assert fa.read() == fb.read()
        names = sorted(os.listdir(os.path.join(a, split)))
        assert names == sorted(os.listdir(os.path.join(b, split)))
        match, mismatch, errors = filecmp.cmpfiles(
            os.path.join(a, split), os.path.join(b, split), names, shallow=False)
        assert len(match) == SMALL[f'num_{split}'] and not mismatch and not errors
    assert not filecmp.cmp(os.path.join(a, 'train', '000000.png'),
                           os.path.join(a, 'val', '000000.png'), shallow=False)


@pytest.mark.parametrize('split', ['train', 'val'])
def test_annotations_match_their_masks(dataset_root, split):
    coco = COCO(ann_file(dataset_root, split))
    assert len(coco.imgs) == {'train': 40, 'val': 4}[split]
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(CLASSES)
    for image_id, image in coco.imgs.items():
        anns = coco.imgToAnns[image_id]
        assert 1 <= len(anns) <= 4
        coverage = np.zeros((image['height'], image['width']), dtype=int)
        for ann in anns:
            mask = rasterize(ann, image['height'], image['width'])
            ys, xs = np.nonzero(mask)
            x, y, w, h = ann['bbox']
            tight = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            # 1.5 px, plus a little for star tips narrower than a pixel past the last
            # pixel centre they cover (up to 1.7 px seen over 700 images).
            assert np.allclose(tight, [x, y, x + w, y + h], atol=1.8), (tight, ann['bbox'])
            assert abs(mask.sum() - ann['area']) <= 0.1 * ann['area']
            assert ann['iscrowd'] == 0
            coverage += mask
        assert coverage.max() == 1, 'objects overlap'


def test_every_class_occurs(dataset_root):
    coco = COCO(ann_file(dataset_root, 'train'))
    counts = collections.Counter(a['category_id'] for a in coco.dataset['annotations'])
    assert sorted(counts) == [1, 2, 3, 4]
    assert len({a['id'] for a in coco.dataset['annotations']}) == len(coco.dataset['annotations'])


def test_objects_are_drawn_where_annotated_and_nowhere_else(dataset_root):
    """The files equal ``render_image``, whose object-free twin differs only under objects."""
    coco = COCO(ann_file(dataset_root, 'val'))
    for index, (image_id, meta) in enumerate(sorted(coco.imgs.items())):
        image, background, objects = render_image(image_rng(0, 'val', index), meta['width'])
        on_disk = np.asarray(Image.open(image_file(dataset_root, 'val', coco, image_id)))
        np.testing.assert_array_equal(on_disk, image)
        anns = coco.imgToAnns[image_id]
        assert [a['segmentation'][0] for a in anns] == [o.polygon.reshape(-1).tolist()
                                                       for o in objects]
        diff = np.abs(image.astype(int) - background.astype(int)).mean(axis=2)
        outside = np.ones(diff.shape, dtype=bool)
        for ann in anns:
            mask = rasterize(ann, meta['height'], meta['width'])
            assert diff[mask].mean() > 30, 'object hardly visible'
            x, y, w, h = ann['bbox']
            outside[int(y) - 1:int(np.ceil(y + h)) + 1, int(x) - 1:int(np.ceil(x + w)) + 1] = 0
        assert outside.any() and not diff[outside].any(), 'drawn outside the boxes'


def test_same_parameters_do_not_rewrite_new_ones_regenerate(tmp_path, monkeypatch):
    root = generate_shapes_coco(str(tmp_path / 'data'), **SMALL)
    watched = [ann_file(root, 'val'), os.path.join(root, 'train', '000003.png')]
    mtimes = [os.stat(p).st_mtime_ns for p in watched]
    with monkeypatch.context() as patch:
        patch.setattr(shapes_coco, 'render_image', None)  # rendering anything would fail
        assert generate_shapes_coco(root, **SMALL) == root
    assert [os.stat(p).st_mtime_ns for p in watched] == mtimes

    generate_shapes_coco(root, **dict(SMALL, num_val=3))
    assert len(os.listdir(os.path.join(root, 'val'))) == 3
    with open(ann_file(root, 'val')) as f:
        assert len(json.load(f)['images']) == 3
    assert siblings(root) == []


def stamp_as_an_older_copy(root):
    """Makes ``root`` look like a copy of the dataset made by an older format version."""
    with open(os.path.join(root, STAMP_NAME), 'w') as f:
        json.dump(dict(format='shapes_coco/0'), f)


def test_an_older_copy_is_replaced(tmp_path):
    root = tmp_path / 'data'
    (root / 'train').mkdir(parents=True)
    (root / 'train' / 'partial.png').write_bytes(b'not an image')
    stamp_as_an_older_copy(str(root))
    generate_shapes_coco(str(root), **SMALL)
    assert not (root / 'train' / 'partial.png').exists()
    assert len(os.listdir(root / 'train')) == SMALL['num_train']
    assert (root / '.complete').exists()
    assert siblings(str(root)) == []


def test_concurrent_generators_all_end_with_the_dataset(tmp_path):
    """Like data-parallel ranks: several processes generate over an older copy at once."""
    root = str(tmp_path / 'data')
    os.makedirs(os.path.join(root, 'train'))
    stamp_as_an_older_copy(root)
    params = dict(num_train=6, num_val=2, image_size=64)
    context = multiprocessing.get_context('fork')
    workers = [context.Process(target=generate_shapes_coco, args=(root,), kwargs=params)
               for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    assert len(os.listdir(os.path.join(root, 'train'))) == 6
    assert len(COCO(ann_file(root, 'val')).imgs) == 2
    assert siblings(root) == []


def test_losing_the_final_rename_keeps_the_winners_dataset(tmp_path, monkeypatch):
    """Another process publishes right before our rename: ours is dropped, no error."""
    winner = generate_shapes_coco(str(tmp_path / 'winner'), **SMALL)
    open(os.path.join(winner, 'from-winner'), 'w').close()
    root = str(tmp_path / 'data')
    real_rename = os.rename

    def winner_publishes_first(src, dst):
        if dst == root and '.tmp-' in src:
            real_rename(winner, root)
        real_rename(src, dst)

    monkeypatch.setattr(shapes_coco.os, 'rename', winner_publishes_first)
    assert generate_shapes_coco(root, **SMALL) == root
    assert os.path.exists(os.path.join(root, 'from-winner'))
    assert siblings(root) == []


def test_mmdet_dataset_generates_and_loads(tmp_path):
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules
    from mmengine.registry import DefaultScope

    register_all_modules(init_default_scope=False)
    cfg = dict(
        type='ShapesCocoDataset',
        data_root=str(tmp_path / 'data'),
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        generate=dict(num_train=8, num_val=4, image_size=128),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
                  dict(type='PackDetInputs')])
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = DATASETS.build(cfg)
        item = dataset[0]
    assert isinstance(dataset, ShapesCocoDataset)
    assert len(dataset) == 4
    assert dataset.metainfo['classes'] == CLASSES
    assert tuple(item['inputs'].shape) == (3, 128, 128)
    gt = item['data_samples'].gt_instances
    assert len(gt) >= 1 and gt.bboxes.shape == (len(gt), 4) and len(gt.masks) == len(gt)
    assert set(gt.labels.tolist()) <= set(range(len(CLASSES)))


def test_semantic_maps_agree_with_the_instance_masks_mmdet_loads(dataset_root):
    """Each map is 0 on background and the class id under every instance mask, as mmdet's
    LoadAnnotations reads both (the maps as HTC's semantic branch gets them)."""
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules
    from mmengine.registry import DefaultScope

    register_all_modules(init_default_scope=False)
    for split, count in (('train', 10), ('val', 4)):
        cfg = dict(type='ShapesCocoDataset', data_root=dataset_root,
                   ann_file=f'annotations/instances_{split}.json',
                   data_prefix=dict(img=f'{split}/', seg=f'stuffthingmaps/{split}/'),
                   generate=dict(num_train=40, num_val=4, image_size=128),
                   pipeline=[dict(type='LoadImageFromFile'),
                             dict(type='LoadAnnotations', with_bbox=True, with_mask=True,
                                  with_seg=True)])
        with DefaultScope.overwrite_default_scope('mmdet'):
            dataset = DATASETS.build(cfg)
        for index in range(count):
            item = dataset[index]
            expected = np.zeros((128, 128), dtype=np.uint8)
            for mask, label in zip(item['gt_masks'].to_ndarray(), item['gt_bboxes_labels']):
                assert not expected[mask.astype(bool)].any(), 'instances overlap'
                expected[mask.astype(bool)] = label + 1
            np.testing.assert_array_equal(item['gt_seg_map'], expected)


def test_dataset_generated_without_semantic_maps_gets_them_untouched(tmp_path, monkeypatch):
    """A folder generated before the maps existed (same stamp) gains them; its images and
    annotations are not rewritten."""
    root = shapes_coco.SHAPES_COCO.generate(str(tmp_path / 'data'), **SMALL)
    assert not os.path.exists(os.path.join(root, shapes_coco.SEMANTIC_DIR))
    watched = [ann_file(root, 'val'), os.path.join(root, 'train', '000003.png')]
    mtimes = [os.stat(p).st_mtime_ns for p in watched]
    monkeypatch.setattr(shapes_coco, 'render_image', None)  # rendering anything would fail
    assert generate_shapes_coco(root, **SMALL) == root
    assert [os.stat(p).st_mtime_ns for p in watched] == mtimes
    for split in ('train', 'val'):
        maps = sorted(os.listdir(os.path.join(root, shapes_coco.SEMANTIC_DIR, split)))
        assert maps == sorted([STAMP_NAME] + os.listdir(os.path.join(root, split)))
    # no temporary folder left behind
    assert sorted(os.listdir(os.path.join(root, shapes_coco.SEMANTIC_DIR))) == ['train', 'val']
