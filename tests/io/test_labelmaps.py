"""The label-map readers: BSDS500's human segmentations (``.mat``) and Coelho 2009's
nucleus label PNGs, on small files made here and on the shared datasets."""

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from scipy.io import loadmat, savemat

from conftest import shared_dataset
from fewclick.io import FormatError, bsds, coelho, detect_format, read_dataset
from fewclick.io.labelmap import paint
from fewclick.io.rle import mask_to_rle


def _segmentation_cells(segmentations):
    cells = np.empty((1, len(segmentations)), dtype=object)
    for k, seg in enumerate(segmentations):
        cells[0, k] = {"Segmentation": seg.astype(np.uint16), "Boundaries": np.zeros_like(seg, np.uint8)}
    return cells


def _bsds(root, segmentations, name="12003"):
    data = root / "BSDS500" / "data"
    (data / "images" / "val").mkdir(parents=True)
    (data / "groundTruth" / "val").mkdir(parents=True)
    h, w = segmentations[0].shape
    Image.new("RGB", (w, h), (120, 90, 60)).save(data / "images" / "val" / f"{name}.jpg")
    savemat(data / "groundTruth" / "val" / f"{name}.mat", {"groundTruth": _segmentation_cells(segmentations)})
    return root


def test_bsds_keeps_the_segmentation_of_median_region_count_and_its_regions_tile_the_image(tmp_path):
    two = np.ones((6, 8), np.uint16)
    two[:, 4:] = 2
    four = two.copy()
    four[3:, :4], four[3:, 4:] = 3, 4
    three = two.copy()
    three[3:, :] = 3
    root = _bsds(tmp_path, [two, four, three, four])  # counts 2, 4, 3, 4: lower median 3
    assert detect_format(root) == "bsds500" and bsds.sniff(root / "BSDS500")
    record = read_dataset(root).images[0]
    assert record.extra == {"segmentation": 2, "segmentations": 4}
    masks = mask_utils.decode(record.objects.segmentations)
    assert masks.shape == (6, 8, 3) and (masks.sum(axis=2) == 1).all(), "every pixel in exactly one region"
    assert record.objects.boxes.tolist()[0] == [0, 0, 4, 3]


def test_bsds_names_a_mat_without_segmentations(tmp_path):
    root = _bsds(tmp_path, [np.ones((4, 4), np.uint16)])
    savemat(root / "BSDS500/data/groundTruth/val/12003.mat", {"other": np.zeros(3)})
    with pytest.raises(FormatError, match="12003.mat"):
        read_dataset(root)


def test_coelho_objects_are_the_nucleus_ids_and_the_background_is_none(tmp_path):
    labels = np.zeros((10, 12), np.uint8)
    labels[1:4, 1:5], labels[6:9, 7:11] = 1, 2
    for folder in ("data/images/dna-images/gnf", "data/preprocessed-data/gnf"):
        (tmp_path / folder).mkdir(parents=True)
    Image.fromarray(np.stack([labels * 50] * 3, axis=2)).save(
        tmp_path / "data/images/dna-images/gnf/dna-1.png"
    )
    Image.fromarray(labels).save(tmp_path / "data/preprocessed-data/gnf/dna-1.png")
    assert detect_format(tmp_path) == "coelho2009"
    record = read_dataset(tmp_path).images[0]
    assert record.file_name == "data/images/dna-images/gnf/dna-1.png"
    assert record.objects.boxes.tolist() == [[1, 1, 5, 4], [7, 6, 11, 9]]
    (tmp_path / "data/images/dna-images/gnf/dna-1.png").unlink()
    with pytest.raises(FormatError, match="dna-1.png"):
        coelho.read(tmp_path)


@pytest.mark.shared_data
def test_bsds500_shared_counts_and_the_median_rule():
    root = shared_dataset("bsds500")
    data = read_dataset(root)
    assert len(data.images) == 225  # SOURCE.md: 159 landscape 481 x 321, 66 portrait
    assert sum(1 for r in data.images if (r.width, r.height) == (481, 321)) == 159
    for record in data.images[::25]:  # the kept segmentation, checked against scipy's own reading
        mat = root / "BSDS500/data/groundTruth" / record.path.parent.name / f"{record.path.stem}.mat"
        cells = loadmat(mat)["groundTruth"]
        counts = sorted(len(np.unique(cells[0, k]["Segmentation"][0, 0])) for k in range(cells.shape[1]))
        assert len(record.objects) == counts[(len(counts) - 1) // 2]
        assert 2 <= len(record.objects) <= 208  # SOURCE.md's range of regions per segmentation


def _art(art: str) -> dict[str, np.ndarray]:
    grid = np.array([list(row.strip()) for row in art.strip().splitlines()])
    return {c: grid == c for c in sorted(set(grid.ravel()) - {"."})}


@pytest.mark.parametrize(
    "drawn, order, expected, lost",
    [
        ("AAA\nAAA", "A", "111\n111", 0),
        ("BBB\nBBB|.A.\n.A.", "BA", "121\n121", 2),  # the smaller on top, whatever the order
        (".A.\n.A.|BBB\nBBB", "AB", "212\n212", 2),
        ("AA.\n...|.BB\n...", "AB", "112\n000", 1),  # equal areas: the earlier on top
        ("AA.\n...|BB.\n...", "AB", "110\n000", 2),  # the later one loses every pixel
    ],
)
def test_paint_gives_each_pixel_to_the_smallest_mask(drawn, order, expected, lost):
    masks = [_art(layer)[name] for layer, name in zip(drawn.split("|"), order, strict=True)]
    owner, lost_pixels = paint([mask_to_rle(m) for m in masks] + [None], *masks[0].shape)
    np.testing.assert_array_equal(owner, np.array([list(map(int, r)) for r in expected.splitlines()]))
    assert lost_pixels == lost
