"""Pascal VOC XML (and roLabelImg oriented boxes): tiny folders and the shared HIT-UAV and BCCD."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import shared_dataset
from fewclick.io import voc
from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.errors import FormatError
from fewclick.io.images import load_array
from fewclick.io.parsing import FormatWarning
from fewclick.types import Objects, rboxes_to_polygons


def voc_xml(objects: str, size: str = "<width>40</width><height>30</height>", name: str = "a.jpg") -> str:
    return f"<annotation><filename>{name}</filename><size>{size}<depth>3</depth></size>{objects}</annotation>"


def box(name: str, x0, y0, x1, y1, difficult: int = 0) -> str:
    coords = f"<xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax>"
    return f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox>{coords}</bndbox></object>"


def rbox(name: str, cx, cy, w, h, angle) -> str:
    values = f"<cx>{cx}</cx><cy>{cy}</cy><w>{w}</w><h>{h}</h><angle>{angle}</angle>"
    return f"<object><type>robndbox</type><name>{name}</name><robndbox>{values}</robndbox></object>"


def voc_folder(root: Path, xml: str, base: str = "", rotated: str | None = None) -> Path:
    folder = root / base if base else root
    (folder / "Annotations").mkdir(parents=True)
    (folder / "JPEGImages").mkdir()
    (folder / "Annotations" / "a.xml").write_text(xml)
    Image.new("L", (40, 30)).save(folder / "JPEGImages" / "a.jpg")
    if rotated is not None:
        (root / "rotate_xml" / "Annotations").mkdir(parents=True)
        (root / "rotate_xml" / "Annotations" / "a.xml").write_text(rotated)
    return root


def test_tiny_voc_is_read_field_by_field(tmp_path):
    xml = voc_xml(
        box("dog", 1, 2, 10, 12) + box("DontCare", 5, 5, 8, 8) + box("cat", 0, 0, 4, 4, difficult=1)
    )
    ds = voc.read(voc_folder(tmp_path, xml))
    rec = ds.images[0]
    assert ds.classes == ["DontCare", "cat", "dog"]
    assert (rec.file_name, rec.width, rec.height, rec.path) == (
        "a.jpg",
        40,
        30,
        tmp_path / "JPEGImages" / "a.jpg",
    )
    assert rec.objects.labels.tolist() == [2, 0, 1]
    assert rec.objects.ignore.tolist() == [False, True, False]
    assert rec.objects.difficult.tolist() == [0, 0, 1]
    np.testing.assert_array_equal(rec.objects.boxes[0], [0, 1, 10, 12])  # VOC's xmin, ymin are 1-based
    assert rec.objects.rboxes is None


def test_classes_option_sets_the_order_and_rejects_unknown_names(tmp_path):
    folder = voc_folder(tmp_path, voc_xml(box("dog", 1, 2, 10, 12)))
    assert voc.read(folder, classes=["cat", "dog"]).images[0].objects.labels.tolist() == [1]
    with pytest.raises(
        FormatError, match=r"a.xml: object 0 \(dog\): expected a class among \['cat'\], got 'dog'"
    ):
        voc.read(folder, classes=["cat"])


def test_zero_size_falls_back_to_the_image_header(tmp_path):
    xml = voc_xml(box("dog", 1, 2, 10, 12), size="<width>0</width><height>0</height>")
    rec = voc.read(voc_folder(tmp_path, xml)).images[0]
    assert (rec.width, rec.height) == (40, 30)


def test_nested_single_subfolder_is_found(tmp_path):
    folder = voc_folder(tmp_path, voc_xml(box("dog", 1, 2, 10, 12)), base="BCCD")
    assert voc.sniff(folder) and not voc.sniff(tmp_path / "BCCD" / "JPEGImages")
    assert len(voc.read(folder).images[0].objects) == 1


def test_rolabelimg_angle_turns_clockwise_on_screen():
    # OpenCV's RotatedRect angle turns clockwise on screen (y down), like roLabelImg's.
    ours = voc.rolabelimg_to_rbox(20, 10, 16, 4, 0.5)
    expected = cv2.boxPoints(((20, 10), (16, 4), np.rad2deg(0.5)))
    np.testing.assert_allclose(
        sorted(rboxes_to_polygons(ours[None])[0].tolist()), sorted(expected.tolist()), atol=1e-4
    )


def test_oriented_boxes_are_attached_in_order(tmp_path):
    xml = voc_xml(box("car", 13, 9, 28, 12) + box("person", 1, 1, 4, 6))
    rotated = voc_xml(rbox("car", 20, 10, 16, 4, 0) + rbox("person", 2, 3, 4, 6, np.pi / 2))
    objs = voc.read(voc_folder(tmp_path, xml, base="normal_xml", rotated=rotated)).images[0].objects
    np.testing.assert_array_equal(objs.boxes, [[12, 8, 28, 12], [0, 0, 4, 6]])
    np.testing.assert_allclose(objs.rboxes, [[20, 10, 16, 4, 0], [2, 3, 4, 6, np.pi / 2]], atol=1e-6)


def test_oriented_boxes_that_do_not_match_are_dropped_with_a_warning(tmp_path):
    xml = voc_xml(box("car", 12, 8, 28, 12) + box("person", 0, 0, 4, 6))
    rotated = voc_xml(rbox("person", 2, 3, 4, 6, 0) + rbox("car", 20, 10, 16, 4, 0))
    with pytest.warns(FormatWarning, match="do not match .* one to one by class"):
        ds = voc.read(voc_folder(tmp_path, xml, base="normal_xml", rotated=rotated))
    assert ds.images[0].objects.rboxes is None


def test_box_outside_the_image_is_clipped_with_a_warning(tmp_path):
    folder = voc_folder(tmp_path, voc_xml(box("dog", -3, 3, 50, 12) + box("dog", 2, 2, 2, 2)))
    with pytest.warns(FormatWarning, match=r"a.xml: clipped 1 box\(es\) .*40 x 30 image.*object 0 \(dog\)"):
        ds = voc.read(folder)
    np.testing.assert_array_equal(ds.images[0].objects.boxes, [[0, 2, 40, 12], [1, 1, 2, 2]])


@pytest.mark.parametrize(
    ("bndbox", "box"),
    [((1, 1, 40, 30), (0, 0, 40, 30)), ((0, 0, 5, 5), (0, 0, 5, 5)), ((2.5, 3, 7, 8), (1.5, 2, 7, 8))],
)
def test_voc_pixels_are_1_based_and_a_0_based_writers_0_reads_as_0(tmp_path, bndbox, box):
    rec = voc.read(voc_folder(tmp_path, voc_xml(globals()["box"]("dog", *bndbox)))).images[0]
    np.testing.assert_array_equal(rec.objects.boxes, [box])


@pytest.mark.parametrize(
    ("xml", "error"),
    [
        ("<annotation><object><name>dog</name>", r"a.xml: expected well-formed XML, got an error at line 1"),
        (
            voc_xml("<object><name>dog</name></object>"),
            r"a.xml: object 0 \(dog\): expected a <bndbox> or <robndbox>",
        ),
        (
            voc_xml(box("dog", 1, "x", 3, 4)),
            r"object 0 \(dog\): expected a number in <bndbox><ymin>, got 'x'",
        ),
        (voc_xml(box("dog", 5, 1, 3, 4)), r"object 0 \(dog\): expected xmin <= xmax and ymin <= ymax"),
        (voc_xml(box("", 1, 1, 3, 4)), r"object 0 \(no name\): expected a <name>"),
    ],
)
def test_malformed_xml_names_the_file_and_object(tmp_path, xml, error):
    with pytest.raises(FormatError, match=error):
        voc.read(voc_folder(tmp_path, xml))


# --------------------------------------------------------------------------- shared data
@pytest.mark.shared_data
def test_hit_uav_counts_match_source_md():
    ds = voc.read(shared_dataset("hit_uav"))
    objs = [r.objects for r in ds.images if len(r.objects)]
    counts = Counter(ds.classes[label] for o in objs for label in o.labels)
    assert len(ds) == 218
    assert counts == {"Person": 1025, "Car": 489, "Bicycle": 297, "OtherVehicle": 8, "DontCare": 9}
    assert sum(int(o.ignore.sum()) for o in objs) == 9
    assert all(o.rboxes is not None and np.isfinite(o.rboxes).all() for o in objs)
    assert {(r.width, r.height) for r in ds.images} == {(640, 512)}


@pytest.mark.shared_data
def test_hit_uav_oriented_boxes_sit_on_the_objects():
    """Our reading of roLabelImg's angle covers more image gradient than the mirrored one."""
    ds = voc.read(shared_dataset("hit_uav"))
    wins = losses = 0
    for rec in ds.images[:80]:
        image = load_array(rec.path).astype(np.float32)
        grad = np.hypot(cv2.Sobel(image, cv2.CV_32F, 1, 0), cv2.Sobel(image, cv2.CV_32F, 0, 1))
        for cx, cy, w, h, angle in rec.objects.rboxes if len(rec.objects) else []:
            if max(w, h) < 1.5 * min(w, h) or min(w, h) < 6 or not 0.3 < angle % (np.pi / 2) < 1.27:
                continue
            energy = [_inside(grad, np.array([[cx, cy, w, h, a]])) for a in (angle, np.pi - angle)]
            wins, losses = wins + (energy[0] > energy[1]), losses + (energy[0] < energy[1])
    assert wins > 3 * losses and wins > 50


def _inside(values: np.ndarray, rboxes: np.ndarray) -> float:
    mask = np.zeros(values.shape, np.uint8)
    cv2.fillPoly(mask, [rboxes_to_polygons(rboxes)[0].round().astype(np.int32)], 1)
    return float(values[mask > 0].sum())


@pytest.mark.shared_data
@pytest.mark.parametrize("sub", ["", "BCCD"])
def test_bccd_counts_match_source_md(sub):
    ds = voc.read(shared_dataset("bccd") / sub)
    counts = Counter(ds.classes[label] for r in ds.images for label in r.objects.labels)
    assert len(ds) == 273 and counts == {"RBC": 3124, "WBC": 281, "Platelets": 275}
    assert all(r.path is not None for r in ds.images)


# --------------------------------------------------------------------------- writing
def _written(tmp_path, boxes, mode: str = "RGB") -> ET.Element:
    """Write one image of ``mode`` with ``boxes`` as VOC; the XML written."""
    Image.new(mode, (40, 30)).save(tmp_path / "a.png")
    objs = Objects(labels=[0] * len(boxes), boxes=np.array(boxes, np.float32).reshape(-1, 4))
    voc.write(Dataset(["dog"], [ImageRecord("a.png", 40, 30, objs, tmp_path / "a.png", 1)]), tmp_path / "out")
    return ET.parse(tmp_path / "out" / "Annotations" / "a.xml").getroot()


@pytest.mark.parametrize(
    ("box", "written", "read_back"),
    [
        ([0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10]),  # whole pixels: exact both ways
        ([12.4459, 5.5, 20.2, 20], [13, 6, 21, 20], [12, 5, 21, 20]),  # rounded outward
        ([3, 4, 3, 4.5], [4, 5, 4, 5], [3, 4, 4, 5]),  # narrower than a pixel keeps one
        ([39.2, 29.9, 40, 30], [40, 30, 40, 30], [39, 29, 40, 30]),  # the last pixel
    ],
)
def test_boxes_are_written_as_whole_1_based_pixels_that_read_back_holding_the_box(
    tmp_path, box, written, read_back
):
    root = _written(tmp_path, [box])
    bndbox = root.find("object/bndbox")
    assert [bndbox.findtext(t) for t in ("xmin", "ymin", "xmax", "ymax")] == [str(v) for v in written]
    np.testing.assert_array_equal(voc.read(tmp_path / "out").images[0].objects.boxes, [read_back])


@pytest.mark.parametrize(
    ("mode", "depth"), [("L", "1"), ("I;16", "1"), ("RGB", "3"), ("P", "3"), ("RGBA", "4")]
)
def test_depth_is_the_image_files_channels(tmp_path, mode, depth):
    assert _written(tmp_path, [[0, 0, 4, 4]], mode).findtext("size/depth") == depth
