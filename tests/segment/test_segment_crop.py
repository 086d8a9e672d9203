import numpy as np
import pytest

from fewclick import crops as sc
from fewclick.metrics.segmentation import mask_iou


def test_the_box_fills_inner_pixels_at_the_crop_centre():
    frame = sc.crop_frame([10, 20, 42, 36], inner=64, size=128)  # 32 x 16 box
    assert frame.scale == 2.0
    np.testing.assert_allclose(frame.box_to_crop([10, 20, 42, 36]), [32, 48, 96, 80])
    assert sc.box_channel(frame.box_to_crop([10, 20, 42, 36]), 128).sum() == 64 * 32


def test_to_crop_follows_the_pixels_of_the_warp():
    image = np.zeros((80, 100, 3), np.uint8)
    image[40, 30] = 255  # pixel (x 30, y 40)
    frame = sc.crop_frame([10, 20, 74, 52], inner=64, size=128)  # scale 1: a pure shift
    x, y = frame.to_crop([[30, 40]])[0]
    assert (x, y) == (52.0, 68.0)
    crop = sc.crop_image(image, frame)
    assert crop.shape == (128, 128, 3) and crop[68, 52, 0] == 255 and crop[..., 0].sum() == 255


def test_the_crop_is_black_outside_the_image():
    image = np.full((50, 50, 3), 200, np.uint8)
    crop = sc.crop_image(image, sc.crop_frame([0, 0, 20, 20], inner=32, size=64))
    assert crop[0, 0].tolist() == [0, 0, 0] and crop[40, 40].tolist() == [200, 200, 200]


@pytest.mark.parametrize("box", [(30, 40, 40, 46), (5, 8, 205, 158), (60, 70, 61.5, 77), (0, 0, 37, 12)])
def test_a_box_aligned_object_survives_crop_and_paste(box):
    h, w = 240, 260
    x0, y0, x1, y1 = box
    mask = np.zeros((h, w), bool)
    mask[int(np.ceil(y0)) : int(y1), int(np.ceil(x0)) : int(x1)] = True
    frame = sc.crop_frame(box, inner=64, size=128)
    soft = sc.crop_mask(mask, frame)
    assert soft.dtype == np.float32 and 0 <= soft.min() and soft.max() <= 1
    back = sc.paste_probability(soft, frame, h, w)
    assert back.shape == (h, w) and back.dtype == bool
    assert mask_iou(back, mask) > 0.95


def test_a_mask_patch_crops_like_the_full_mask():
    full = np.zeros((60, 60), bool)
    full[20:35, 25:31] = True
    frame = sc.crop_frame([22, 18, 34, 38], inner=40, size=80)
    np.testing.assert_allclose(
        sc.crop_mask(full[20:35, 25:31], frame, origin=(25, 20)), sc.crop_mask(full, frame)
    )


def test_paste_writes_only_inside_the_crop_footprint():
    frame = sc.crop_frame([40, 40, 50, 50], inner=8, size=16)  # covers x, y 35..55
    back = sc.paste_probability(np.ones((16, 16), np.float32), frame, 100, 100)
    ys, xs = np.nonzero(back)
    assert xs.min() >= 35 and xs.max() < 55 and ys.min() >= 35 and ys.max() < 55
    far = sc.crop_frame([0, 0, 2, 2], inner=2, size=4)
    assert not sc.paste_probability(np.ones((4, 4), np.float32), far, 10, 10)[5:].any()


@pytest.mark.parametrize("encoding", sc.ENCODINGS)
def test_encodings_put_each_click_in_its_channel_at_its_place(encoding):
    enc = sc.encode_clicks([[15, 20], [40, 45]], [True, False], 64, encoding, radius=3)
    assert enc.shape == (2, 64, 64) and enc.dtype == np.float32
    for channel, (x, y) in ((0, (15, 20)), (1, (40, 45))):
        if encoding == "distance":
            assert np.unravel_index(np.argmin(enc[channel]), (64, 64)) == (y, x)  # (row y, column x)
        else:
            ys, xs = np.mgrid[:64, :64]
            weight = enc[channel] / enc[channel].sum()
            np.testing.assert_allclose([(xs * weight).sum(), (ys * weight).sum()], [x, y], atol=1e-3)
    assert 0 <= enc.min() and enc.max() <= 1


def test_disks_have_the_radius_and_no_clicks_mean_empty_channels():
    enc = sc.encode_clicks([[32, 32]], [True], 64, "disks", radius=5)
    assert enc[0].sum() == np.sum((np.arange(-5, 6)[:, None] ** 2 + np.arange(-5, 6)[None] ** 2) <= 25)
    assert enc[1].sum() == 0
    none = sc.encode_clicks(np.zeros((0, 2)), np.zeros(0, bool), 16, "distance")
    assert (none == 1).all()
    assert (sc.encode_clicks(np.zeros((0, 2)), np.zeros(0, bool), 16, "gaussians") == 0).all()


def test_an_unknown_encoding_and_a_degenerate_box_are_refused():
    with pytest.raises(ValueError, match="click encoding"):
        sc.encode_clicks([[1, 1]], [True], 8, "circles")
    with pytest.raises(ValueError, match="x1 > x0"):
        sc.crop_frame([5, 5, 5, 9])
    with pytest.raises(ValueError, match="inner <= size"):
        sc.crop_frame([0, 0, 4, 4], inner=32, size=16)


def test_the_later_of_two_contradicting_clicks_on_one_pixel_wins():
    xy, positive = sc.latest_clicks([[3.2, 4.0], [9, 9], [3.0, 4.1]], [True, True, False])
    np.testing.assert_allclose(xy, [[9, 9], [3.0, 4.1]])
    assert positive.tolist() == [True, False]
