"""Tiles of a TIFF read by regions: coarse levels ahead, the rest one region a tile, never a
whole decode; tiles made before a file changed on disk are dropped."""

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage

from fewclick.server import tiles

RNG = np.random.default_rng(1)
# smooth blocks, so JPEG tiles stay close to the pixels
PIXELS = np.kron(RNG.integers(0, 255, (25, 36, 3), np.uint8), np.ones((160, 160, 1), np.uint8))  # 4000 x 5760


def _pyramid(path, pixels):
    with tifffile.TiffWriter(path) as tw:
        tw.write(pixels, tile=(512, 512), subifds=2, compression="deflate", photometric="rgb")
        tw.write(pixels[::4, ::4], tile=(512, 512), subfiletype=1, compression="deflate", photometric="rgb")
        tw.write(pixels[::16, ::16], tile=(512, 512), subfiletype=1, compression="deflate", photometric="rgb")
    return path


@pytest.fixture
def slide(tmp_path, monkeypatch):
    def whole(*_):
        raise AssertionError("a TIFF read by regions is never decoded whole")

    monkeypatch.setattr(tiles, "load_image", whole)
    return _pyramid(tmp_path / "slide.tif", PIXELS)


def _tile(cache, level, col, row):
    return np.asarray(PILImage.open(tiles.tile_path(cache, 7, level, col, row))).astype(float)


def test_coarse_levels_are_made_ahead_and_the_rest_on_request(slide, tmp_path):
    cache = tmp_path / "cache"
    h, w = PIXELS.shape[:2]
    info = tiles.info(w, h)
    tiles.prepare(cache, 7, str(slide), w, h)
    made = {int(p.parent.name) for p in (cache / "7").glob("*/*.jpg")}
    assert made == {
        lv for lv, (a, b) in enumerate(info["sizes"]) if -(-a // 512) * -(-b // 512) <= tiles.AHEAD_TILES
    }
    assert 0 not in made and info["levels"] - 1 in made
    path = tiles.get_tile(cache, 7, str(slide), w, h, 0, 11, 7)  # the last tile of level 0
    got = np.asarray(PILImage.open(path)).astype(float)
    assert got.shape == (h - 7 * 512, w - 11 * 512, 3)
    assert np.abs(got - PIXELS[7 * 512 :, 11 * 512 :]).mean() < 3
    top = _tile(cache, info["levels"] - 1, 0, 0)
    expected = np.asarray(PILImage.fromarray(PIXELS).resize(top.shape[1::-1], PILImage.BOX)).astype(float)
    assert np.abs(top - expected).mean() < 12, "the overview shows the image"


def test_tiles_made_before_the_file_changed_are_dropped(slide, tmp_path):
    cache = tmp_path / "cache"
    h, w = PIXELS.shape[:2]
    tiles.get_tile(cache, 7, str(slide), w, h, 0, 0, 0)
    assert abs(_tile(cache, 0, 0, 0).mean() - PIXELS[:512, :512].mean()) < 3
    _pyramid(slide, 255 - PIXELS)
    tiles.get_tile(cache, 7, str(slide), w, h, 0, 0, 0)
    assert abs(_tile(cache, 0, 0, 0).mean() - (255 - PIXELS[:512, :512]).mean()) < 3
