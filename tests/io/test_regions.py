"""Large TIFFs read by regions (fewclick.io.regions): the pixels of every read, the stored
level a coarse read takes, and the files refused with a reason."""

import numpy as np
import pytest
import tifffile

from fewclick.io.images import ImageError
from fewclick.io.regions import BLOCK, open_regions

RNG = np.random.default_rng(0)
IMAGE = RNG.integers(0, 256, (1200, 1600, 3), dtype=np.uint8)


def _pyramid(path, levels, tile=(256, 256), **kw):
    """A tiled TIFF with ``levels`` (arrays) as level 0 and its SubIFD reductions."""
    with tifffile.TiffWriter(path) as tw:
        tw.write(levels[0], tile=tile, subifds=len(levels) - 1, compression="deflate", **kw)
        for level in levels[1:]:
            tw.write(level, tile=tile, subfiletype=1, compression="deflate", **kw)
    return path


@pytest.fixture(scope="module")
def pyramid(tmp_path_factory):
    path = tmp_path_factory.mktemp("regions") / "pyramid.tif"
    return _pyramid(path, [IMAGE, IMAGE[::2, ::2], IMAGE[::4, ::4]], photometric="rgb")


def test_a_region_at_full_resolution_is_the_stored_pixels(pyramid):
    image = open_regions(pyramid)
    assert image.sizes == [(1600, 1200), (800, 600), (400, 300)]
    np.testing.assert_array_equal(image.read((300, 100, 700, 450)), IMAGE[100:450, 300:700])
    # clipped to the image; outside it is an error naming the box
    assert image.read((1500, 1100, 1700, 1300)).shape == (100, 100, 3)
    with pytest.raises(ValueError, match="outside the 1600 x 1200 image"):
        image.read((1700, 0, 1800, 100))


def test_a_coarse_read_takes_the_stored_level_at_or_above_its_scale(pyramid):
    image = open_regions(pyramid)
    assert [image.level_for(s) for s in (1, 0.6, 0.5, 0.3, 0.25, 0.01)] == [0, 0, 1, 1, 2, 2]
    np.testing.assert_array_equal(image.read((0, 0, 1600, 1200), 0.25), IMAGE[::4, ::4])
    np.testing.assert_array_equal(image.read((400, 200, 800, 600), 0.5), IMAGE[::2, ::2][100:300, 200:400])


def test_a_region_larger_than_a_block_is_read_a_block_at_a_time(tmp_path, monkeypatch):
    import fewclick.io.regions as regions

    path = _pyramid(tmp_path / "flat.tif", [IMAGE], photometric="rgb")
    monkeypatch.setattr(regions, "BLOCK", 500)
    whole = open_regions(path).read((0, 0, 1600, 1200))
    np.testing.assert_array_equal(whole, IMAGE)
    assert BLOCK >= 1024, "the real block size"


def test_samples_first_and_16_bit_grey_are_read_as_rgb_with_one_stretch(tmp_path):
    planar = _pyramid(
        tmp_path / "planar.tif", [np.moveaxis(IMAGE, -1, 0)], photometric="rgb", planarconfig="separate"
    )
    np.testing.assert_array_equal(open_regions(planar).read((10, 20, 90, 60)), IMAGE[20:60, 10:90])
    grey = (np.arange(1200 * 1600).reshape(1200, 1600) % 4000 + 1000).astype(np.uint16)
    path = _pyramid(tmp_path / "grey16.tif", [grey, grey[::2, ::2]], photometric="minisblack")
    image = open_regions(path)
    assert image.value_range == (1000.0, float(grey[::2, ::2].max()))
    a, b = image.read((0, 0, 100, 1)), image.read((0, 1, 100, 2))
    # one stretch for every read: the same stored value is the same grey in both
    assert a.shape == (1, 100, 3) and a[0, 0, 0] == 0 and (a[..., 0] == a[..., 2]).all()
    same = grey[0, :100] == grey[1, 0]
    assert (a[0, same, 0] == b[0, 0, 0]).all()


def test_a_file_cut_short_is_refused_naming_it(tmp_path, pyramid):
    cut = tmp_path / "cut.tif"
    data = pyramid.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.9)])
    with pytest.raises(ImageError, match="cut.tif: the file is cut short"):
        open_regions(cut)


def test_a_tiff_of_no_image_data_is_refused_naming_it(tmp_path):
    tifffile.imwrite(tmp_path / "empty.tif", np.zeros((0, 0), np.uint8))
    with pytest.raises(ImageError, match="empty.tif: the TIFF holds no image data"):
        open_regions(tmp_path / "empty.tif")


def test_pyramid_levels_that_disagree_with_level_0_are_refused(tmp_path):
    path = _pyramid(tmp_path / "skew.tif", [IMAGE, IMAGE[::2, ::3]], photometric="rgb")
    with pytest.raises(ImageError, match=r"level 1 \(534 x 600\) disagrees with level 0 \(1600 x 1200\)"):
        open_regions(path)


def test_files_not_read_by_regions_are_left_to_the_whole_image_reader(tmp_path):
    one_strip = tmp_path / "strip.tif"
    tifffile.imwrite(one_strip, IMAGE, rowsperstrip=1200, photometric="rgb")
    png = tmp_path / "a.png"
    png.write_bytes(b"not read")
    assert open_regions(one_strip) is None and open_regions(png) is None
    strips = tmp_path / "strips.tif"
    tifffile.imwrite(strips, IMAGE, rowsperstrip=64, photometric="rgb")
    np.testing.assert_array_equal(open_regions(strips).read((5, 70, 50, 200)), IMAGE[70:200, 5:50])


def test_a_file_changed_on_disk_is_read_again(tmp_path):
    path = _pyramid(tmp_path / "changing.tif", [IMAGE], photometric="rgb")
    assert (open_regions(path).read((0, 0, 8, 8)) == IMAGE[:8, :8]).all()
    _pyramid(path, [255 - IMAGE], photometric="rgb")
    assert (open_regions(path).read((0, 0, 8, 8)) == 255 - IMAGE[:8, :8]).all()


def test_a_large_png_is_converted_streaming_into_a_pyramid_read_by_regions(tmp_path):
    from PIL import Image

    from fewclick.io.regions import convert_to_pyramid

    smooth = np.kron(RNG.integers(0, 255, (12, 16, 3), np.uint8), np.ones((100, 100, 1), np.uint8))
    Image.fromarray(smooth).save(tmp_path / "big.png")
    said = []
    out = convert_to_pyramid(tmp_path / "big.png", tmp_path / "cache" / "big.tif", said.append)
    image = open_regions(out)
    assert image.sizes[0] == (1600, 1200) and len(image.sizes) >= 3
    assert said and said[-1] == 100 and said == sorted(said)
    assert np.abs(image.read((0, 0, 1600, 1200)).astype(float) - smooth).mean() < 2
    grey16 = (np.arange(1200 * 1600).reshape(1200, 1600) % 3000 + 500).astype(np.uint16)
    Image.fromarray(grey16).save(tmp_path / "grey16.png")
    grey = open_regions(convert_to_pyramid(tmp_path / "grey16.png", tmp_path / "grey16.tif"))
    expected = np.round((grey16 - 500) * (255 / 2999))
    assert np.abs(grey.read((0, 0, 1600, 1200))[..., 1] - expected).mean() < 3, "stretched from its own range"
    (tmp_path / "bad.png").write_bytes(b"\x89PNG nothing")
    with pytest.raises(ImageError, match="bad.png: cannot"):
        convert_to_pyramid(tmp_path / "bad.png", tmp_path / "bad.tif")
    assert not (tmp_path / "bad.tif").exists()
