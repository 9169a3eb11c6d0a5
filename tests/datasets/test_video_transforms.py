"""FiveCrop: the four corners and the centre of every frame, counted as views by FormatShape."""
import numpy as np
import pytest

from swinv2_mm.datasets.video_transforms import FiveCrop


def test_five_crops_are_the_corners_and_the_centre_as_views():
    from mmaction.datasets.transforms import FormatShape
    rng = np.random.default_rng(0)
    clips, frames_per_clip = 2, 3
    frames = [rng.integers(0, 255, (9, 14, 3), dtype=np.uint8)
              for _ in range(clips * frames_per_clip)]
    out = FiveCrop(crop_size=(6, 5))(dict(imgs=list(frames)))  # (w, h)
    assert len(out['imgs']) == 5 * len(frames) and out['img_shape'] == (5, 6)
    # top-left, top-right, bottom-left, bottom-right, centre: (x, y) of the top-left pixel
    for view, (x, y) in enumerate([(0, 0), (8, 0), (0, 4), (8, 4), (4, 2)]):
        for i, frame in enumerate(frames):
            assert np.array_equal(out['imgs'][view * len(frames) + i], frame[y:y + 5, x:x + 6])
    out.update(num_clips=clips, clip_len=frames_per_clip)
    packed = FormatShape(input_format='NCTHW')(out)
    assert packed['imgs'].shape == (5 * clips, 3, frames_per_clip, 5, 6)


@pytest.mark.parametrize('crop_size, message', [(0, 'positive int'), ((4, 4, 4), 'positive int'),
                                                (20, 'larger than the frames')])
def test_bad_crops_are_refused(crop_size, message):
    with pytest.raises(ValueError, match=message):
        FiveCrop(crop_size)(dict(imgs=[np.zeros((9, 14, 3), np.uint8)]))
