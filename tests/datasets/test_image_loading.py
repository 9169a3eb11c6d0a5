"""Checked image loading: the same image as mmcv's loader; corrupt files named or skipped."""
import cv2
import numpy as np
import pytest
from mmcv.transforms import LoadImageFromFile

from swinv2_mm.datasets.image_loading import CheckedLoadImageFromFile, CorruptImageError


@pytest.fixture()
def images(tmp_path):
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / 'good.jpg'), picture)
    cv2.imwrite(str(tmp_path / 'good.png'), picture)
    jpg, png = (tmp_path / 'good.jpg').read_bytes(), (tmp_path / 'good.png').read_bytes()
    damaged = {'cut.jpg': jpg[:len(jpg) // 2], 'cut.png': png[:len(png) // 2], 'empty.jpg': b'',
               'noise.jpg': rng.bytes(2000)}
    for name, data in damaged.items():
        (tmp_path / name).write_bytes(data)
    return tmp_path, sorted(damaged) + ['missing.jpg']


@pytest.mark.parametrize('name', ['good.jpg', 'good.png'])
def test_same_result_as_mmcv(images, name):
    path = str(images[0] / name)
    ours = CheckedLoadImageFromFile(to_float32=True)(dict(img_path=path))
    reference = LoadImageFromFile(to_float32=True)(dict(img_path=path))
    assert np.array_equal(ours['img'], reference['img'])
    assert ours['img_shape'] == ours['ori_shape'] == (48, 64)


def test_truncated_images_are_caught(images):
    for name in ('cut.jpg', 'cut.png'):
        with pytest.raises(CorruptImageError, match='cannot be decoded'):
            CheckedLoadImageFromFile()(dict(img_path=str(images[0] / name)))


def test_every_corrupt_image_fails_fast_with_its_path(images):
    root, names = images
    for name in names:
        path = str(root / name)
        with pytest.raises(CorruptImageError) as err:
            CheckedLoadImageFromFile()(dict(img_path=path))
        assert path in str(err.value) and '--skip-corrupt-images' in str(err.value)


def test_skipping_returns_none_and_lists_each_path(images, tmp_path):
    root, names = images
    log = str(tmp_path / 'skipped.txt')
    load = CheckedLoadImageFromFile(skip_corrupt=True, skipped_log=log)
    assert all(load(dict(img_path=str(root / name))) is None for name in names)
    assert load(dict(img_path=str(root / 'good.jpg')))['img'].shape == (48, 64, 3)
    with open(log) as f:
        listed = [line.split('\t')[0] for line in f]
    assert listed == [str(root / name) for name in names]
