"""Every writable format round-trips: write, detect, read back, and get the same objects
(boxes to 1e-3 px, masks exactly) as far as the format holds them; what it cannot hold is
counted in the writer's messages. Where a well-kept library reads the format
(pycocotools, supervision, rasterio, geojson, Pillow), it reads our files too."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fewclick.io import WRITERS, Dataset, ImageRecord, detect_format, read_dataset, write_dataset
from fewclick.io.labelstudio import brush_decode, brush_encode
from fewclick.io.rle import mask_to_rle, rle_boxes, segmentation_to_mask
from fewclick.types import Objects, rboxes_to_boxes, rboxes_to_polygons

W, H = 96, 64
RBOX = np.array([30, 30, 20, 10, 0.4], np.float32)
POLYGON = np.array([[5, 5], [25, 8], [15, 30]], np.float32)
NAN4, NAN5, NAN2 = [np.nan] * 4, [np.nan] * 5, [np.nan] * 2


def _mask() -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[20:40, 50:70] = True
    mask[25:30, 55:60] = False  # a hole
    return mask


def rich_objects() -> Objects:
    """A box, an oriented box, a polygon, a mask with a hole and a point, some scored."""
    rle = mask_to_rle(_mask())
    return Objects(
        labels=[0, 1, 0, 1, 0],
        boxes=np.array(
            [[2.5, 3.25, 20, 18], rboxes_to_boxes(RBOX[None])[0], [5, 5, 25, 30], rle_boxes([rle])[0], NAN4]
        ),
        rboxes=np.array([NAN5, RBOX, NAN5, NAN5, NAN5]),
        points=np.array([NAN2] * 4 + [[40.5, 50.25]]),
        segmentations=[None, None, [POLYGON], rle, None],
        extra={"scores": np.array([0.9, np.nan, 0.5, 0.7, np.nan], np.float32)},
    )


def rich_dataset(folder: Path, geotiff: bool = False) -> Dataset:
    """One image with :func:`rich_objects` and one without objects, on disk in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    names = ["a.tif", "b.tif"] if geotiff else ["a.png", "b.png"]
    for k, name in enumerate(names):
        if geotiff:
            _geotiff(folder / name, east=500000.0 + 100 * k)
        else:
            Image.fromarray(np.full((H, W, 3), 40 * k, np.uint8)).save(folder / name)
    records = [
        ImageRecord(names[0], W, H, rich_objects(), folder / names[0], 1),
        ImageRecord(names[1], W, H, Objects.empty(), folder / names[1], 2),
    ]
    return Dataset(["car", "tree"], records)


def _geotiff(path: Path, east: float) -> None:
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import Affine

    transform = Affine(0.5, 0.1, east, 0.05, -0.5, 4100000.0)  # sheared, to catch a swapped term
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=W,
        height=H,
        count=3,
        dtype="uint8",
        crs="EPSG:32633",
        transform=transform,
    ) as dst:
        dst.write(np.zeros((3, H, W), np.uint8))


#: What each format holds of :func:`rich_objects`: the objects read back (indices into
#: it), which of them keep their oriented box / polygon / exact mask / point, whether
#: scores survive, and the reasons the writer's messages must give. Where a format holds
#: an object as other geometry (a polygon as pixels, a mask as an oriented box), its box
#: changes ("box_changes").
HOLDS = {
    "coco": dict(objects=[0, 1, 2, 3, 4], rbox=[1], polygon=[2], mask=[3], point=[4], scores=True, says=[]),
    "coco_panoptic": dict(objects=[2, 3], mask=[3], box_changes=[2], says=["without a mask not written"]),
    "yolo": dict(objects=[0, 1, 2, 3], scores=True, says=["left out: points only"]),
    "yolo_seg": dict(
        objects=[0, 1, 2, 3], polygon=[2], scores=True, says=["masks written as the outline", "points only"]
    ),
    "yolo_obb": dict(
        objects=[0, 1, 2, 3],
        rbox=[1],
        box_changes=[2, 3],
        scores=True,
        says=["polygons written as their min-area", "masks written as their min-area", "points only"],
    ),
    "voc": dict(
        objects=[0, 1, 2, 3],
        rbox=[1],
        whole_pixels=True,  # boxes rounded outward to whole pixels
        scores=True,
        says=["polygons written as their boxes", "masks written", "points only"],
    ),
    "dota": dict(
        objects=[0, 1, 2, 3],
        rbox=[1],
        says=["polygons written as their box", "masks written as their box", "without a box or polygon"],
    ),
    "cvat": dict(objects=[0, 1, 2, 3, 4], rbox=[1], polygon=[2], mask=[3], point=[4], scores=True, says=[]),
    "labelstudio": dict(
        objects=[0, 1, 2, 3, 4], rbox=[1], polygon=[2], mask=[3], point=[4], scores=True, says=[]
    ),
    "masks": dict(objects=[2, 3], mask=[3], box_changes=[2], says=["without a mask not written"]),
    "geojson": dict(
        objects=[0, 1, 2, 3, 4], rbox=[1], polygon=[2], point=[4], scores=True, says=["holes not kept"]
    ),
    "points": dict(
        objects=[0, 1, 2, 3, 4],
        point=[4],
        scores=True,
        says=["box objects written as their box centre", "rbox objects", "polygon objects", "mask objects"],
    ),
}
HOLDS["qupath"] = HOLDS["geojson"]  # the same GeoJSON, in pixels, with QuPath's classification
READER = {"yolo_seg": "yolo", "yolo_obb": "yolo", "qupath": "geojson"}


def test_every_writer_has_an_expectation():
    assert set(HOLDS) == set(WRITERS)


def _target(tmp_path: Path, name: str) -> Path:
    if name == "points":
        return tmp_path / "out" / "points.csv"
    if name in ("coco", "coco_panoptic", "labelstudio"):
        return tmp_path / "out" / f"{name}.json"
    return tmp_path / "out"


def _write_and_read(tmp_path: Path, name: str) -> tuple[Dataset, Dataset, list[str]]:
    source = rich_dataset(tmp_path / "src", geotiff=name == "geojson")
    target = _target(tmp_path, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        messages = write_dataset(source, target, name.replace("_", "-"))
        assert detect_format(target) == READER.get(name, name)
        options = {"images_dir": tmp_path / "src"} if name in ("points", "labelstudio") else {}
        back = read_dataset(target, **options)
    return source, back, messages


@pytest.mark.parametrize("name", sorted(HOLDS))
def test_write_detect_read_gives_the_objects_the_format_holds(tmp_path, name):
    source, back, messages = _write_and_read(tmp_path, name)
    holds = HOLDS[name]
    assert [Path(r.file_name).name for r in back.images] == [r.file_name for r in source.images]
    assert [(r.width, r.height) for r in back.images] == [(W, H), (W, H)]
    assert len(back.images[1].objects) == 0
    got, want = back.images[0].objects, source.images[0].objects[holds["objects"]]
    assert [back.classes[k] for k in got.labels] == [source.classes[k] for k in want.labels]
    has_box = np.isfinite(want.boxes).all(1) & ~np.isin(holds["objects"], holds.get("box_changes", []))
    if holds.get("whole_pixels"):
        outward = np.concatenate([np.floor(want.boxes[:, :2]), np.ceil(want.boxes[:, 2:])], axis=1)
        np.testing.assert_array_equal(got.boxes[has_box], outward[has_box])
    elif name != "points":  # points CSV holds each object's centre
        np.testing.assert_allclose(got.boxes[has_box], want.boxes[has_box], atol=1e-3)
    for k, i in enumerate(holds["objects"]):
        if i in holds.get("rbox", []):
            corners = rboxes_to_polygons(got.rboxes[k : k + 1])[0]
            distances = np.linalg.norm(corners[:, None] - rboxes_to_polygons(RBOX[None])[0][None], axis=-1)
            assert distances.min(1).max() < 1e-3, name
        if i in holds.get("polygon", []):
            np.testing.assert_allclose(got.segmentations[k][0], POLYGON, atol=1e-3)
        if i in holds.get("mask", []):
            np.testing.assert_array_equal(segmentation_to_mask(got.segmentations[k], H, W), _mask())
        if i in holds.get("point", []):
            np.testing.assert_allclose(got.points[k], [40.5, 50.25], atol=1e-3)
    if holds.get("scores"):
        want_scores = rich_objects().extra["scores"][holds["objects"]]
        np.testing.assert_allclose(got.extra["scores"], want_scores, atol=1e-5)
    assert len(messages) == len(holds["says"]), messages
    for reason in holds["says"]:
        assert any(reason in m and ("a.png (" in m or "a.tif (" in m) for m in messages), (
            reason,
            messages,
        )


def test_masks_written_as_outlines_fill_back_to_nearly_the_same_pixels(tmp_path):
    _, back, _ = _write_and_read(tmp_path, "yolo_seg")
    outline = segmentation_to_mask(back.images[0].objects.segmentations[3], H, W)
    filled = _mask().copy()
    filled[25:30, 55:60] = True  # the hole is not kept
    assert (outline & filled).sum() / (outline | filled).sum() > 0.97


# --------------------------------------------------------------------------- library readers
def test_pycocotools_reads_our_coco_with_the_same_masks_and_scores(tmp_path):
    from pycocotools.coco import COCO

    _write_and_read(tmp_path, "coco")
    coco = COCO(str(tmp_path / "out" / "coco.json"))
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
    assert len(anns) == 5 and [a.get("score") for a in anns] == [0.9, None, 0.5, 0.7, None]
    np.testing.assert_array_equal(coco.annToMask(anns[3]).astype(bool), _mask())
    assert coco.annToMask(anns[2]).sum() > 0


@pytest.mark.parametrize("name", ["yolo", "yolo_obb", "voc", "coco"])
def test_supervision_reads_our_boxes(tmp_path, name):
    sv = pytest.importorskip("supervision")
    source = rich_dataset(tmp_path / "src")
    source.images[0].objects = source.images[0].objects[:4]  # a point-only object has no COCO bbox
    del source.images[0].objects.extra["scores"]  # supervision reads no trailing YOLO score
    out = tmp_path / "out"
    write_dataset(source, out / "coco.json" if name == "coco" else out, name)
    if name == "voc":
        data = sv.DetectionDataset.from_pascal_voc(str(out / "JPEGImages"), str(out / "Annotations"))
    elif name == "coco":
        data = sv.DetectionDataset.from_coco(str(tmp_path / "src"), str(out / "coco.json"))
    else:
        data = sv.DetectionDataset.from_yolo(
            str(out / "images"), str(out / "labels"), str(out / "data.yaml"), is_obb=name == "yolo_obb"
        )
    assert data.classes == ["car", "tree"]
    detections = {Path(path).name: det for path, _, det in data}
    det = detections["a.png"]
    want = read_dataset(out / "coco.json" if name == "coco" else out).images[0].objects.boxes
    got = det.xyxy[np.lexsort((det.xyxy[:, 1], det.xyxy[:, 0]))]
    want = want[np.lexsort((want[:, 1], want[:, 0]))]
    atol = 1.0 if name == "voc" else 0.01  # VOC's whole pixels hold the box, rounded outward
    np.testing.assert_allclose(got, want, atol=atol)
    assert len(detections["b.png"]) == 0


def test_rasterio_and_geojson_agree_with_our_map_coordinates(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    geojson = pytest.importorskip("geojson")
    from shapely.geometry import shape

    _write_and_read(tmp_path, "geojson")
    text = (tmp_path / "out" / "a.geojson").read_text()
    collection = geojson.loads(text)
    assert collection.is_valid, collection.errors()
    data = json.loads(text)
    assert data["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32633"
    with rasterio.open(tmp_path / "src" / "a.tif") as src:
        transform = src.transform
    box = shape(data["features"][0]["geometry"])
    x0, y0, x1, y1 = rich_objects().boxes[0]
    corners = [transform * (float(x), float(y)) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))]
    np.testing.assert_allclose(np.asarray(box.exterior.coords)[:4], corners, atol=1e-6)
    assert shape(data["features"][4]["geometry"]).geom_type == "Point"


def test_geojson_refuses_an_image_without_a_georeference_and_writes_nothing(tmp_path):
    from fewclick.io.errors import FormatError

    source = rich_dataset(tmp_path / "src")  # PNGs without world files
    with pytest.raises(FormatError, match=r"a.png: expected a georeferenced image"):
        write_dataset(source, tmp_path / "out", "geojson")
    assert not (tmp_path / "out").exists()


def test_a_world_file_georeferences_a_png(tmp_path):
    source = rich_dataset(tmp_path / "src")
    for rec in source.images:  # 0.5 m pixels, the top-left pixel's centre at (1000.25, 2000.75)
        Path(rec.path).with_suffix(".pgw").write_text("0.5\n0\n0\n-0.5\n1000.25\n2000.75\n")
    write_dataset(source, tmp_path / "out", "geojson")
    first = json.loads((tmp_path / "out" / "a.geojson").read_text())["features"][0]
    np.testing.assert_allclose(first["geometry"]["coordinates"][0][0], [1000 + 2.5 * 0.5, 2001 - 3.25 * 0.5])
    back = read_dataset(tmp_path / "out")
    np.testing.assert_allclose(back.images[0].objects.boxes[0], [2.5, 3.25, 20, 18], atol=1e-6)


def test_semantic_pngs_beside_instance_pngs_hold_class_indices(tmp_path):
    _write_and_read(tmp_path, "masks")
    semantic = np.asarray(Image.open(tmp_path / "out" / "semantic" / "a.png"))
    instances = np.asarray(Image.open(tmp_path / "out" / "masks" / "a.png"))
    assert semantic[_mask()].tolist() == [2] * int(_mask().sum())  # "tree" is class 1, written 1 + 1
    assert set(np.unique(semantic[instances == 0])) == {0}


def test_label_studio_brush_rle_matches_label_studios_own_encoder():
    """The fixture was written by label-studio-converter's ``brush.mask2rle``."""
    recorded = json.loads((Path(__file__).parent / "recorded" / "labelstudio_brush.json").read_text())
    mask = np.array([[c == "1" for c in row] for row in recorded["mask_rows"]])
    assert brush_encode(mask) == recorded["rle"]
    np.testing.assert_array_equal(brush_decode(recorded["rle"], recorded["height"], recorded["width"]), mask)


def test_label_studio_tasks_hold_predictions_when_every_object_is_scored(tmp_path):
    source = rich_dataset(tmp_path / "src")
    objs = source.images[0].objects
    objs.extra["scores"] = np.array([0.9, 0.8, 0.5, 0.7, 0.6], np.float32)
    write_dataset(source, tmp_path / "t.json", "labelstudio")
    task = json.loads((tmp_path / "t.json").read_text())[0]
    assert task["annotations"] == [] and task["predictions"][0]["score"] == 0.7
    assert {r["type"] for r in task["predictions"][0]["result"]} == {
        "rectanglelabels",
        "polygonlabels",
        "brushlabels",
        "keypointlabels",
    }
    config = (tmp_path / "t.label_config.xml").read_text()
    assert '<RectangleLabels name="label" toName="image"><Label value="car"/>' in config


def test_cli_convert_takes_dashed_names_and_prints_what_was_left_out(tmp_path, capsys):
    from fewclick.cli import main

    source = rich_dataset(tmp_path / "src")
    write_dataset(source, tmp_path / "in.json", "coco")
    assert (
        main(["data", "convert", str(tmp_path / "in.json"), "--to", "yolo-seg", "--out", str(tmp_path / "y")])
        == 0
    )
    out = capsys.readouterr()
    assert "as yolo-seg" in out.out and "points only (YOLO holds boxes and polygons): 1 object(s)" in out.err
    assert detect_format(tmp_path / "y") == "yolo"


def test_a_geotiff_of_no_known_crs_is_written_in_pixels_with_a_warning(tmp_path):
    import tifffile

    source = rich_dataset(tmp_path / "src")
    # GeoKeys: a projected model, pixels as areas, and no CRS key
    keys = (1, 1, 0, 2, 1024, 0, 1, 1, 1025, 0, 1, 1)
    for rec in source.images:  # a transform (tie point and pixel scale) but no CRS
        tiff = Path(rec.path).with_suffix(".tif")
        tifffile.imwrite(
            tiff,
            np.zeros((H, W, 3), np.uint8),
            photometric="rgb",
            extratags=[
                (33550, 12, 3, (0.5, 0.5, 0.0)),
                (33922, 12, 6, (0, 0, 0, 500000.0, 4100000.0, 0)),
                (34735, 3, len(keys), keys),
            ],
        )
        rec.path = tiff
        rec.file_name = tiff.name
    said = write_dataset(source, tmp_path / "out", "geojson")
    assert any(
        "written in pixel coordinates: the GeoTIFF names no known CRS" in m and "a.tif" in m for m in said
    )
    data = json.loads((tmp_path / "out" / "a.geojson").read_text())
    assert data["properties"]["coordinates"] == "pixels" and "crs" not in data
    x0, y0, x1, y1 = rich_objects().boxes[0]
    np.testing.assert_allclose(data["features"][0]["geometry"]["coordinates"][0][0], [x0, y0])
    back = read_dataset(tmp_path / "out")
    np.testing.assert_allclose(back.images[0].objects.boxes[0], rich_objects().boxes[0], atol=1e-6)
