"""Exporting a project as COCO panoptic and as instance mask PNGs (zip archives), and
importing both back: the same masks and classes, overlaps and box-only objects named in
the archive's warnings.txt, bad archives refused naming the problem with nothing saved.
Classes are things or stuff: set through the API or by a COCO panoptic import, written
to the panoptic categories, a stuff class's regions in one image written as one segment."""

import io
import json
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pytest
from clients import client_for
from PIL import Image as PILImage

from conftest import shared_data_root
from fewclick.io import coco_panoptic, read_dataset
from fewclick.io.rle import mask_to_rle, objects_masks, rle_to_mask
from fewclick.server.app import create_app
from fewclick.server.db import Image

PANOPTIC_SAMPLE = shared_data_root() / "coco_panoptic_sample"
FORMATS = ("coco_panoptic", "masks")


@pytest.fixture(scope="module")
def client(tmp_path_factory, db_url):
    home = tmp_path_factory.mktemp("server")
    roots = [tmp_path_factory.getbasetemp()]  # the test images and every test's tmp_path
    if PANOPTIC_SAMPLE.is_dir():
        roots.append(PANOPTIC_SAMPLE)
    app = create_app(db_url, home / "data", data_roots=roots)
    with client_for(app) as c:
        yield c


@pytest.fixture(scope="module")
def street(tmp_path_factory):
    """A folder of two 40 x 30 images."""
    folder = tmp_path_factory.mktemp("street")
    for name in ("a.png", "b.jpg"):
        PILImage.fromarray(np.full((30, 40, 3), 100, np.uint8)).save(folder / name)
    return folder


def _project(client, **body):
    r = client.post("/api/projects", json={"name": f"p-{uuid.uuid4().hex[:8]}", **body})
    assert r.status_code == 201, r.text
    return r.json()["project"]


def _images(client, project):
    return {im["file_name"]: im for im in client.get(f"/api/projects/{project['id']}/images").json()}


def _rect(x0, y0, x1, y1):
    mask = np.zeros((30, 40), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def _annotate(client, project, street_masks):
    """Annotations of ``street_masks``: ``{file name: [(class name, mask or box list)]}``."""
    classes = {c["name"]: c["id"] for c in project["classes"]}
    for name, items in street_masks.items():
        image = _images(client, project)[name]
        create = [
            {"class_id": classes[cls], "kind": "mask", "geometry": {"mask": mask_to_rle(shape)}}
            if isinstance(shape, np.ndarray)
            else {"class_id": classes[cls], "kind": "box", "geometry": {"box": shape}}
            for cls, shape in items
        ]
        body = {"revision": image["revision"], "create": create}
        r = client.post(f"/api/images/{image['id']}/annotations/batch", json=body)
        assert r.status_code == 200, r.text


def _masks_by_image(client, project) -> dict[str, list[tuple[str, bytes]]]:
    """Per image, the sorted (class name, mask bytes) of its mask annotations."""
    names = {c["id"]: c["name"] for c in client.get(f"/api/projects/{project['id']}").json()["classes"]}
    out = {}
    for name, image in _images(client, project).items():
        anns = client.get(f"/api/images/{image['id']}").json()["annotations"]
        masks = [a for a in anns if "mask" in a["geometry"]]
        out[name] = sorted(
            (names[a["class_id"]], rle_to_mask(a["geometry"]["mask"]).tobytes()) for a in masks
        )
    return out


def _download(client, project, format, folder: Path) -> tuple[Path, str]:
    """Export ``project`` as ``format``, unzip it into ``folder``; returns the folder and
    the Content-Disposition header."""
    r = client.get(f"/api/projects/{project['id']}/export", params={"format": format})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        zf.extractall(folder)
    return folder, r.headers["content-disposition"]


@pytest.mark.parametrize("format", FORMATS)
def test_an_export_imported_into_a_project_of_the_same_images_gives_the_same_masks(
    client, street, tmp_path, format
):
    project = _project(client, folder=str(street), classes=["road", "car"])
    road, car, other = _rect(0, 10, 40, 30), _rect(5, 5, 15, 12), _rect(20, 0, 30, 8)
    _annotate(client, project, {"a.png": [("road", road), ("car", car)], "b.jpg": [("car", other)]})
    folder, header = _download(client, project, format, tmp_path / "export")
    assert f'.{format}.zip"' in header
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    pngs = ["a.png", "b.png"]
    if format == "coco_panoptic":
        assert names == ["panoptic.json"] + [f"panoptic/{n}" for n in pngs] + ["warnings.txt"]
    else:
        pngs = [f"{kind}/{n}" for kind in ("masks", "semantic") for n in pngs]
        assert names == ["masks.json", *pngs, "warnings.txt"]
    read = read_dataset(folder)
    assert read.format == format and read.classes == ["road", "car"]
    objs = read.image("a.png").objects
    np.testing.assert_array_equal(objects_masks(objs, 30, 40), [road & ~car, car])  # the car on top

    again = _project(client, folder=str(street))
    r = client.post(f"/api/projects/{again['id']}/import", json={"dataset": str(folder)})
    assert r.status_code == 200 and r.json()["warnings"] == [], r.text
    expected = _masks_by_image(client, project)
    expected["a.png"] = sorted([("road", (road & ~car).tobytes()), ("car", car.tobytes())])
    assert _masks_by_image(client, again) == expected


@pytest.mark.parametrize("format", ["coco-panoptic", "masks"])
def test_what_an_export_could_not_keep_is_listed_in_warnings_txt(client, street, tmp_path, format):
    project = _project(client, folder=str(street), classes=["car"])
    small, large = _rect(0, 0, 4, 4), _rect(2, 2, 12, 12)
    _annotate(client, project, {"a.png": [("car", large), ("car", small), ("car", [20, 20, 30, 28])]})
    folder, header = _download(client, project, format, tmp_path)
    assert f'.{format.replace("-", "_")}.zip"' in header
    lines = (folder / "warnings.txt").read_text().splitlines()
    assert len(lines) == 2
    assert "4 mask pixel(s) lost to overlapping objects" in lines[0] and "a.png (4)" in lines[0]
    assert "1 object(s) without a mask not written" in lines[1]
    json_name = "panoptic.json" if format == "coco-panoptic" else "masks.json"
    assert all(line.startswith(f"{json_name}: ") for line in lines), "named from the archive's root"


def test_an_unknown_export_format_names_the_formats_there_are(client, street):
    project = _project(client, folder=str(street))
    r = client.get(f"/api/projects/{project['id']}/export", params={"format": "cityscapes"})
    assert r.status_code == 400
    assert r.json()["detail"] == (
        "export format must be one of coco, coco-panoptic, yolo, yolo-seg, yolo-obb, voc, dota, cvat, "
        "labelstudio, masks, geojson, qupath, points, got 'cityscapes'"
    )


def _break_panoptic(folder: Path) -> str:
    ids = np.zeros((30, 40), np.int64)
    ids[0, 0] = 99  # a segment id segments_info does not list
    PILImage.fromarray(coco_panoptic.segment_png(ids)).save(folder / "panoptic" / "b.png")
    return "b.png holds segment ids [99] that segments_info does not list"


def _break_masks(folder: Path) -> str:
    PILImage.fromarray(np.zeros((30, 40, 3), np.uint8)).save(folder / "masks" / "b.png")
    return "b.png: expected a one-channel 16-bit PNG of instance indices (0 = none), got 3 channels"


@pytest.mark.parametrize("format, damage", [("coco_panoptic", _break_panoptic), ("masks", _break_masks)])
def test_a_bad_archive_is_refused_naming_the_problem_and_nothing_saved_is_lost(
    client, street, tmp_path, format, damage
):
    project = _project(client, folder=str(street), classes=["car"])
    _annotate(client, project, {"a.png": [("car", _rect(1, 1, 9, 9))]})
    folder, _ = _download(client, project, format, tmp_path)
    message = damage(folder)
    before = _masks_by_image(client, project)
    r = client.post(f"/api/projects/{project['id']}/import", json={"dataset": str(folder)})
    assert r.status_code == 400 and message in r.json()["detail"], r.text
    assert _masks_by_image(client, project) == before


@pytest.mark.shared_data
def test_the_panopticapi_sample_becomes_a_project_with_its_stuff_classes_and_exports_the_same(
    client, tmp_path
):
    if not PANOPTIC_SAMPLE.is_dir():
        pytest.skip(f"shared dataset 'coco_panoptic_sample' not found at {PANOPTIC_SAMPLE}")
    source = read_dataset(PANOPTIC_SAMPLE)
    project = _project(client, dataset=str(PANOPTIC_SAMPLE))
    classes = [c["name"] for c in project["classes"]]
    stuff = [name for name, thing in zip(source.classes, source.extra["isthing"], strict=True) if not thing]
    assert classes == source.classes and len(stuff) == 53 and set(stuff) <= set(classes)
    for format in FORMATS:
        folder, _ = _download(client, project, format, tmp_path / format)
        back = read_dataset(folder)
        assert back.classes == source.classes
        for rec in source.images:
            keep = ~rec.objects.ignore  # crowd segments are not imported as annotations
            want = sorted(
                (source.classes[label], rle_to_mask(seg).tobytes())
                for label, seg, k in zip(rec.objects.labels, rec.objects.segmentations, keep, strict=True)
                if k
            )
            objs = back.image(rec.file_name).objects
            got = sorted(
                (back.classes[label], rle_to_mask(seg).tobytes())
                for label, seg in zip(objs.labels, objs.segmentations, strict=True)
            )
            assert got == want and any(source.classes[lab] in stuff for lab in rec.objects.labels)
    source_isthing = dict(zip(source.classes, source.extra["isthing"], strict=True))
    assert {c["name"]: c["isthing"] for c in project["classes"]} == source_isthing
    panoptic = json.loads((tmp_path / "coco_panoptic" / "panoptic.json").read_text())
    written = {c["name"]: c["isthing"] for c in panoptic["categories"]}
    used = {source.classes[label] for rec in source.images for label in rec.objects.labels}
    assert {name: written[name] for name in used} == {name: int(source_isthing[name]) for name in used}
    assert {0, 1} <= set(written.values()) and written == {n: int(t) for n, t in source_isthing.items()}


def _add_class(client, project, **body):
    r = client.post(f"/api/projects/{project['id']}/classes", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def test_a_class_is_a_thing_unless_made_stuff_and_the_project_lists_it_so(client, street):
    project = _project(client, folder=str(street), classes=["car"])
    sky = _add_class(client, project, name="sky", isthing=False)
    person = _add_class(client, project, name="person")
    assert (sky["isthing"], person["isthing"]) == (False, True)
    r = client.patch(f"/api/classes/{person['id']}", json={"isthing": False})
    assert r.status_code == 200 and r.json()["isthing"] is False, r.text
    r = client.patch(f"/api/classes/{person['id']}", json={"name": "people"})
    assert r.status_code == 200 and r.json()["isthing"] is False, "a patch without isthing keeps it"
    listed = client.get(f"/api/projects/{project['id']}").json()["classes"]
    assert {c["name"]: c["isthing"] for c in listed} == {"car": True, "sky": False, "people": False}


@pytest.mark.parametrize("value", ["no", 0, None])
def test_isthing_must_be_true_or_false(client, street, value):
    project = _project(client, folder=str(street), classes=["car"])
    r = client.post(f"/api/projects/{project['id']}/classes", json={"name": "sky", "isthing": value})
    if value is None:  # null: the default, a thing
        assert r.status_code == 201 and r.json()["isthing"] is True, r.text
    else:
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "isthing", r.text


def test_a_stuff_class_gets_one_panoptic_segment_per_image_and_things_keep_theirs(client, street, tmp_path):
    project = _project(client, folder=str(street), classes=["car"])
    _add_class(client, project, name="sky", isthing=False)
    project = client.get(f"/api/projects/{project['id']}").json()
    left, right, car1, car2 = (
        _rect(0, 0, 10, 5),
        _rect(30, 0, 40, 5),
        _rect(0, 20, 5, 25),
        _rect(10, 20, 15, 25),
    )
    _annotate(
        client,
        project,
        {"a.png": [("sky", left), ("car", car1), ("sky", right), ("car", car2)], "b.jpg": [("sky", left)]},
    )
    folder, _ = _download(client, project, "coco_panoptic", tmp_path / "panoptic")
    panoptic = json.loads((folder / "panoptic.json").read_text())
    assert [(c["name"], c["isthing"]) for c in panoptic["categories"]] == [("car", 1), ("sky", 0)]
    back = read_dataset(folder)
    got = {
        rec.file_name: sorted(zip(rec.objects.labels.tolist(), objects_masks(rec.objects, 30, 40).tolist()))
        for rec in back.images
    }
    car, sky = 0, 1
    assert got == {
        "a.png": sorted([(car, car1.tolist()), (car, car2.tolist()), (sky, (left | right).tolist())]),
        "b.jpg": [(sky, left.tolist())],
    }
    assert (folder / "warnings.txt").read_text().splitlines() == [
        "panoptic.json: 1 stuff region(s) joined to another of their class (a stuff class has at most "
        "one segment per image) in a.png (1)"
    ]
    masks, _ = _download(client, project, "masks", tmp_path / "masks")
    assert len(read_dataset(masks).image("a.png").objects) == 4, "instance masks keep every region"


# --------------------------------------------------------------------------- every format
#: Export format -> what of a mask, a box and a point each keeps: "all" objects, or the
#: objects read back and the reason warnings.txt gives for the others.
KEPT = {
    "coco": (3, None),
    "coco-panoptic": (1, "without a mask not written"),
    "yolo": (2, "left out: points only"),
    "yolo-seg": (2, "left out: points only"),
    "yolo-obb": (2, "left out: points only"),
    "voc": (2, "left out: points only"),
    "dota": (2, "left out: objects without a box or polygon"),
    "cvat": (3, None),
    "labelstudio": (3, None),
    "masks": (1, "without a mask not written"),
    "points": (3, "mask objects written as their box centre"),
}


@pytest.mark.parametrize("format", sorted(KEPT))
def test_every_export_format_reads_back_and_counts_what_it_left_out(client, street, tmp_path, format):
    project = _project(client, folder=str(street), classes=["car"])
    car = _rect(5, 5, 15, 12)
    _annotate(client, project, {"a.png": [("car", car), ("car", [20, 2, 30, 9.5])]})
    image = _images(client, project)["a.png"]
    point = {"class_id": project["classes"][0]["id"], "kind": "point", "geometry": {"point": [33, 25]}}
    r = client.post(
        f"/api/images/{image['id']}/annotations/batch",
        json={"revision": image["revision"], "create": [point]},
    )
    assert r.status_code == 200, r.text

    r = client.get(f"/api/projects/{project['id']}/export", params={"format": format})
    assert r.status_code == 200, r.text
    if format == "coco":
        (tmp_path / "a.json").write_bytes(r.content)
        folder = tmp_path / "a.json"
    else:
        with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
            zf.extractall(tmp_path / "x")
        folder = tmp_path / "x"
        if format in ("labelstudio", "points"):
            folder = next(p for p in folder.iterdir() if p.suffix in (".json", ".csv"))
        if format.startswith("yolo"):  # YOLO labels are read beside their images, which a user adds
            (folder / "images").mkdir()
            for name in ("a.png", "b.jpg"):
                (folder / "images" / name).symlink_to(street / name)
    n, reason = KEPT[format]
    back = read_dataset(folder, images_dir=street) if format == "points" else read_dataset(folder)
    objs = back.image("a.png").objects
    assert len(objs) == n
    if format not in ("points", "coco-panoptic", "masks"):
        boxes = sorted(b.tolist() for b in objs.boxes if np.isfinite(b).all())
        box = [20, 2, 30, 10] if format == "voc" else [20, 2, 30, 9.5]  # VOC: whole pixels, rounded outward
        assert box in [[round(v, 3) for v in b] for b in boxes]
    warnings_txt = tmp_path / "x" / "warnings.txt"
    if reason is None:
        assert not warnings_txt.exists()
    else:
        text = warnings_txt.read_text()
        assert reason in text and "a.png (" in text, text


def test_geojson_export_of_images_without_a_georeference_says_so(client, street):
    project = _project(client, folder=str(street), classes=["car"])
    r = client.get(f"/api/projects/{project['id']}/export", params={"format": "geojson"})
    assert r.status_code == 400
    assert "expected a georeferenced image (GeoTIFF tags or a world file)" in r.json()["detail"]


def test_imported_predictions_keep_their_scores_and_export_them_again(client, street, tmp_path):
    from fewclick.io import Dataset, ImageRecord, write_dataset
    from fewclick.types import Objects

    objects = Objects(
        labels=[0, 0],
        boxes=[[1, 1, 10, 10], [20, 5, 30, 15]],
        extra={"scores": np.array([0.25, 0.75], np.float32)},
    )
    records = [ImageRecord("a.png", 40, 30, objects, street / "a.png", 1)]
    write_dataset(Dataset(["car"], records), tmp_path / "pred.json", "labelstudio")
    project = _project(client, folder=str(street))
    r = client.post(f"/api/projects/{project['id']}/import", json={"dataset": str(tmp_path / "pred.json")})
    assert r.status_code == 200, r.text
    image = _images(client, project)["a.png"]
    saved = client.get(f"/api/images/{image['id']}").json()["annotations"]
    assert sorted(a["score"] for a in saved) == [0.25, 0.75]

    r = client.get(f"/api/projects/{project['id']}/export", params={"format": "coco"})
    anns = json.loads(r.content)["annotations"]
    assert sorted(a["score"] for a in anns) == [0.25, 0.75]


def test_crowd_regions_are_named_in_the_import_warnings_not_dropped_silently(client, street, tmp_path):
    from fewclick.io import Dataset, ImageRecord, write_dataset
    from fewclick.types import Objects

    objects = Objects(labels=[0, 0], boxes=[[1, 1, 10, 10], [20, 5, 30, 15]], ignore=[False, True])
    write_dataset(
        Dataset(["car"], [ImageRecord("a.png", 40, 30, objects, None, 1)]), tmp_path / "c.json", "coco"
    )
    project = _project(client, folder=str(street))
    r = client.post(f"/api/projects/{project['id']}/import", json={"dataset": str(tmp_path / "c.json")})
    assert r.status_code == 200, r.text
    assert r.json()["warnings"] == ["a.png: 1 crowd region(s) not imported (no crowd flag here)"]
    assert (
        len(client.get(f"/api/images/{_images(client, project)['a.png']['id']}").json()["annotations"]) == 1
    )


@pytest.mark.parametrize("format", sorted(KEPT))
def test_an_image_whose_stored_name_leaves_the_folder_is_skipped_and_named_not_a_failed_export(
    client, street, tmp_path, format
):
    """A name stored before uploads were normalised (``..\\..\\pwn4.jpg``) cannot break an
    export: the image is left out, and warnings.txt (folder formats) says so."""
    project = _project(client, folder=str(street), classes=["car"])
    _annotate(
        client, project, {"a.png": [("car", _rect(5, 5, 15, 12))], "b.jpg": [("car", _rect(1, 1, 9, 9))]}
    )
    with client.app.state.sessions() as session:
        image = session.get(Image, _images(client, project)["b.jpg"]["id"])
        image.file_name = "..\\..\\pwn4.jpg"
        session.commit()
    r = client.get(f"/api/projects/{project['id']}/export", params={"format": format})
    assert r.status_code == 200, r.text
    if format == "coco":
        assert [im["file_name"] for im in json.loads(r.content)["images"]] == ["a.png"]
        return
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        assert not any("pwn4" in n for n in zf.namelist())
        zf.extractall(tmp_path / "x")
    text = (tmp_path / "x" / "warnings.txt").read_text()
    assert "'..\\\\..\\\\pwn4.jpg'" in text and "skipped" in text, text


@pytest.mark.parametrize("format", sorted(KEPT))
def test_two_images_of_one_stem_export_the_first_and_name_the_other(client, tmp_path, format):
    """A folder holding ``a.png`` and ``a.jpg`` (the name ``a.xml``, ``labels/a.txt`` and
    ``a.png`` label PNG for both): every format exports, the second image is left out and
    named in warnings.txt, never written over the first."""
    folder = tmp_path / "twins"
    folder.mkdir()
    for name in ("a.png", "a.jpg"):
        PILImage.fromarray(np.full((30, 40, 3), 100, np.uint8)).save(folder / name)
    project = _project(client, folder=str(folder), classes=["car"])
    _annotate(
        client, project, {"a.jpg": [("car", _rect(1, 1, 9, 9))], "a.png": [("car", _rect(5, 5, 15, 12))]}
    )
    r = client.get(f"/api/projects/{project['id']}/export", params={"format": format})
    assert r.status_code == 200, r.text
    if format in ("coco", "cvat", "labelstudio", "points"):  # one file for all images: nothing to share
        return
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        zf.extractall(tmp_path / "x")
    text = (tmp_path / "x" / "warnings.txt").read_text()
    assert "image 'a.png' skipped" in text and "as image 'a.jpg'" in text, text
    if format.startswith("yolo"):  # labels/a.txt holds a.jpg's box (YOLO reads back only with images/)
        [line] = (tmp_path / "x" / "labels" / "a.txt").read_text().splitlines()
        values = [float(v) for v in line.split()[1:]]
        if format == "yolo":  # a.jpg's box 1..9: centre, size
            assert values == pytest.approx([0.125, 1 / 6, 0.2, 8 / 30]), line
        else:  # a.jpg's outline lies within 9 px (a.png's reaches 15 / 40)
            assert max(values) <= 9 / 30 + 1e-6, line
        return
    kept = read_dataset(tmp_path / "x")
    assert kept.images[0].objects.boxes.tolist() == [[1, 1, 9, 9]]
    if format != "dota":  # DOTA keeps no image names
        assert [rec.file_name for rec in kept.images] == ["a.jpg"]


def test_the_downloaded_voc_gives_a_grey_image_depth_1(client, tmp_path):
    folder = tmp_path / "grey"
    folder.mkdir()
    PILImage.fromarray(np.full((30, 40), 100, np.uint8)).save(folder / "g.png")
    PILImage.fromarray(np.full((30, 40, 3), 100, np.uint8)).save(folder / "c.png")
    project = _project(client, folder=str(folder), classes=["car"])
    _annotate(client, project, {"g.png": [("car", [1, 1, 9, 9])], "c.png": [("car", [1, 1, 9, 9])]})
    r = client.get(f"/api/projects/{project['id']}/export", params={"format": "voc"})
    assert r.status_code == 200, r.text
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        depth = {n: zf.read(n).decode().split("<depth>")[1][0] for n in zf.namelist() if n.endswith(".xml")}
    assert depth == {"Annotations/c.xml": "3", "Annotations/g.xml": "1"}
