import numpy as np
import pytest
from PIL import Image

from fewclick.io.images import ImageError, image_size, load_array, load_image


def _gradient(h=20, w=30) -> np.ndarray:
    return (np.arange(h * w).reshape(h, w) % 256).astype(np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".jpg"])
def test_rgb_files_of_each_format_load_as_uint8_rgb(tmp_path, suffix):
    rgb = np.stack([_gradient(), _gradient()[::-1], np.full((20, 30), 7, np.uint8)], axis=2)
    path = tmp_path / f"img{suffix}"
    Image.fromarray(rgb).save(path)
    out = load_image(path)
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    if suffix != ".jpg":  # lossless formats give back the pixels exactly
        np.testing.assert_array_equal(out, rgb)


def test_grayscale_is_repeated_to_three_channels(tmp_path):
    Image.fromarray(_gradient()).save(tmp_path / "g.png")
    out = load_image(tmp_path / "g.png")
    np.testing.assert_array_equal(out[..., 0], _gradient())
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_sixteen_bit_is_stretched_to_its_own_range(tmp_path):
    raw = np.array([[1000, 2000], [3000, 4000]], np.uint16)
    Image.fromarray(raw).save(tmp_path / "d.png")
    assert load_array(tmp_path / "d.png").dtype == np.uint16
    np.testing.assert_array_equal(load_image(tmp_path / "d.png")[..., 0], [[0, 85], [170, 255]])


def test_palette_expands_through_its_palette_and_raw_keeps_indices(tmp_path):
    img = Image.fromarray(np.array([[0, 1], [2, 1]], np.uint8), mode="P")
    img.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * 759)
    img.save(tmp_path / "p.png")
    np.testing.assert_array_equal(load_array(tmp_path / "p.png"), [[0, 1], [2, 1]])
    np.testing.assert_array_equal(load_image(tmp_path / "p.png")[0, 1], [255, 0, 0])


def test_rgba_drops_alpha(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    Image.fromarray(rgba).save(tmp_path / "a.png")
    assert load_image(tmp_path / "a.png").shape == (4, 4, 3)


def test_corrupt_and_truncated_files_name_the_file(tmp_path):
    bad = tmp_path / "not_an_image.png"
    bad.write_bytes(b"hello, I am text")
    with pytest.raises(ImageError, match="not_an_image.png"):
        load_image(bad)
    good = tmp_path / "cut.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(good)
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="cut.png"):
        load_image(good)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        load_image(tmp_path / "nope.png")


def test_pixel_limit_rejects_before_decoding(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((100, 100), np.uint8)).save(tmp_path / "big.png")
    with pytest.raises(ImageError, match="big.png: 100 x 100 = 10,000 pixels exceeds the limit of 9,999"):
        load_image(tmp_path / "big.png", max_pixels=9_999)
    monkeypatch.setenv("FEWCLICK_MAX_PIXELS", "500")
    with pytest.raises(ImageError, match="exceeds the limit of 500"):
        image_size(tmp_path / "big.png")
    assert load_image(tmp_path / "big.png", max_pixels=10_000).shape == (100, 100, 3)
