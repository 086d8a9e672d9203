"""Which files the app reads and serves, and its limits: data roots, file names that stay
inside a dataset, only images registered and served, the upload size limit, tile and
folder limits, export names, and image files gone from disk."""

import asyncio
import email.message
import json
import threading
import time
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
from clients import client_for
from fastapi import HTTPException
from PIL import Image as PILImage
from sqlalchemy.exc import SAWarning
from werkzeug.http import parse_options_header

from fewclick.server import deps, imports, names, tiles
from fewclick.server.app import create_app
from fewclick.server.db import Image, Project, sqlite_url
from fewclick.server.limits import limited_receive


def _png(path, width=40, height=30, value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(np.full((height, width, 3), value, np.uint8)).save(path)
    return path


def _coco(path, file_names, size=(40, 30)):
    """A COCO file of one category with one box on each named image."""
    images = [
        {"id": i + 1, "file_name": n, "width": size[0], "height": size[1]} for i, n in enumerate(file_names)
    ]
    annotations = [
        {"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [2, 2, 10, 10], "area": 100, "iscrowd": 0}
        for i in range(len(file_names))
    ]
    categories = [{"id": 1, "name": "thing"}]
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    """``root``: the app's one data root; ``outside``: a folder beside it, not a root."""
    root, outside = tmp_path_factory.mktemp("root"), tmp_path_factory.mktemp("outside")
    _png(root / "photos" / "a.png")
    _png(outside / "secret.png")
    return SimpleNamespace(root=root, outside=outside)


@pytest.fixture(scope="module")
def app(places, tmp_path_factory):
    home = tmp_path_factory.mktemp("app")
    return create_app(
        sqlite_url(home / "app.db"), home / "data", start_worker=False, data_roots=[places.root]
    )


@pytest.fixture(scope="module")
def client(app):
    with client_for(app) as c:
        yield c


def _names(client):
    return {p["name"] for p in client.get("/api/projects").json()}


def test_folders_and_datasets_outside_the_data_roots_are_403_naming_the_path_and_roots(client, places):
    dataset = _coco(places.outside / "outside.json", ["secret.png"])
    for body in ({"folder": str(places.outside)}, {"folder": "/etc"}, {"dataset": str(dataset)}):
        r = client.post("/api/projects", json={"name": "out", **body})
        assert r.status_code == 403, r.text
        detail = r.json()["detail"]
        assert next(iter(body.values())) in detail and str(places.root) in detail, detail
    link = places.root / "link-out"
    link.symlink_to(places.outside, target_is_directory=True)
    r = client.post("/api/projects", json={"name": "out", "folder": str(link)})
    assert r.status_code == 403 and "link-out" in r.json()["detail"], "a link is followed before the check"
    project = client.post("/api/projects", json={"name": "in", "folder": str(places.root / "photos")}).json()
    r = client.post(f"/api/projects/{project['project']['id']}/import", json={"dataset": str(dataset)})
    assert r.status_code == 403 and "outside.json" in r.json()["detail"]
    assert "out" not in _names(client)


def test_a_home_folder_of_an_unknown_user_is_a_400_naming_it(client):
    r = client.post("/api/projects", json={"name": "tilde", "folder": "~nosuchuser/images"})
    assert r.status_code == 400 and "~nosuchuser/images" in r.json()["detail"]


def test_a_link_in_a_folder_to_a_file_outside_it_is_not_an_image_of_the_project(client, places):
    folder = places.root / "mixed"
    _png(folder / "own.png")
    (folder / "stolen.png").symlink_to(places.outside / "secret.png")
    r = client.post("/api/projects", json={"name": "mixed", "folder": str(folder)})
    assert r.status_code == 201, r.text
    images = client.get(f"/api/projects/{r.json()['project']['id']}/images").json()
    assert [im["file_name"] for im in images] == ["own.png"]


@pytest.mark.parametrize(
    "case, name",
    list(enumerate(["{outside}/secret.png", "{root}/photos/a.png", "../photos/a.png", "x/../../a.png"])),
)
def test_coco_file_names_that_leave_the_dataset_are_refused_naming_the_entry(client, places, case, name):
    name = name.format(root=places.root, outside=places.outside)
    folder = places.root / f"coco{case}"
    _png(folder / "fine.png")
    dataset = _coco(folder / "annotations.json", ["fine.png", name])
    r = client.post("/api/projects", json={"name": f"escape{case}", "dataset": str(dataset)})
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert "image entry 1 (id 2" in detail and repr(name) in detail, detail
    assert f"escape{case}" not in _names(client)
    project = client.post("/api/projects", json={"name": f"import{case}", "folder": str(folder)}).json()
    r = client.post(f"/api/projects/{project['project']['id']}/import", json={"dataset": str(dataset)})
    assert r.status_code == 400 and repr(name) in r.json()["detail"]


def test_a_text_file_named_jpg_is_never_registered_nor_served(client, places):
    folder = places.root / "fake"
    folder.mkdir()
    (folder / "notes.jpg").write_text("user:x:0:0:root:/root:/bin/bash\n")
    dataset = _coco(folder / "annotations.json", ["notes.jpg"])
    r = client.post("/api/projects", json={"name": "fake", "dataset": str(dataset)})
    assert r.status_code == 400 and "notes.jpg" in r.json()["detail"], r.text
    _png(folder / "real.jpg")
    r = client.post("/api/projects", json={"name": "fake-folder", "folder": str(folder)})
    assert r.status_code == 201, r.text
    assert any("notes.jpg" in w for w in r.json()["warnings"]), "a folder scan skips it and says so"
    project = r.json()["project"]
    url = f"/api/projects/{project['id']}/images"
    assert [im["file_name"] for im in client.get(url).json()] == ["real.jpg"]
    r = client.post(url, files={"file": ("upload.jpg", b"not an image at all", "image/jpeg")})
    assert r.status_code == 400 and "upload.jpg" in r.json()["detail"]
    # a registered image whose file was replaced by text since is not served
    image = client.get(url).json()[0]
    (folder / "real.jpg").write_text("secret text")
    r = client.get(f"/api/images/{image['id']}/file")
    assert r.status_code == 409 and "real.jpg" in r.json()["detail"] and b"secret" not in r.content


def test_an_upload_over_the_limit_is_a_413_naming_the_limit(tmp_path):
    app = create_app(sqlite_url(tmp_path / "app.db"), tmp_path / "data", start_worker=False, max_upload_mb=1)
    _png(tmp_path / "images" / "a.png")
    with client_for(app) as client:
        project = client.post("/api/projects", json={"name": "p", "folder": str(tmp_path / "images")})
        assert project.status_code == 403, "the default data root is the data folder alone"
        _png(tmp_path / "data" / "images" / "a.png")
        project = client.post(
            "/api/projects", json={"name": "p", "folder": str(tmp_path / "data" / "images")}
        )
        url = f"/api/projects/{project.json()['project']['id']}/images"
        r = client.post(url, files={"file": ("big.png", b"\0" * (3 * 2**20), "image/png")})
        assert r.status_code == 413 and "1 MB" in r.json()["detail"], r.text
        small = (tmp_path / "images" / "a.png").read_bytes()
        assert client.post(url, files={"file": ("small.png", small, "image/png")}).status_code == 201


def test_a_body_sent_without_its_length_is_read_only_up_to_the_limit():
    pulled = []

    async def receive():
        pulled.append(1)
        return {"type": "http.request", "body": b"\0" * 2**16, "more_body": True}  # never ends

    limited = limited_receive(receive, 2**20, None)

    async def read_all():
        while True:
            await limited()

    with pytest.raises(HTTPException) as caught:
        asyncio.run(read_all())
    assert caught.value.status_code == 413 and len(pulled) == 2**20 // 2**16 + 1
    pulled.clear()
    with pytest.raises(HTTPException):
        asyncio.run(limited_receive(receive, 2**20, 200 * 2**20)())
    assert pulled == [], "a declared length over the limit is refused before reading"


def test_an_upload_is_decoded_off_the_event_loop(client, places, monkeypatch):
    project = client.post(
        "/api/projects", json={"name": "slow", "folder": str(places.root / "photos")}
    ).json()
    url = f"/api/projects/{project['project']['id']}/images"
    decode = imports.load_image

    def slow_decode(path):
        time.sleep(1.5)
        return decode(path)

    monkeypatch.setattr(imports, "load_image", slow_decode)
    content = _png(places.root / "upload" / "b.png").read_bytes()
    upload = threading.Thread(
        target=lambda: client.post(url, files={"file": ("b.png", content, "image/png")})
    )
    upload.start()
    time.sleep(0.3)
    t0 = time.perf_counter()
    assert client.get("/api/projects").status_code == 200
    waited = time.perf_counter() - t0
    upload.join()
    assert waited < 0.8, f"a request waited {waited:.2f} s for an upload being decoded"


def test_a_long_thin_image_is_refused_before_any_tile_is_made(client, places, app):
    folder = places.root / "thin"
    _png(folder / "ok.png")
    thin = folder / "line.png"
    PILImage.new("L", (2_000_000, 1)).save(thin)
    assert thin.stat().st_size < 4000
    cache = app.state.settings.tile_cache
    before = _files(cache)  # other tests of the module's app may have made tiles
    r = client.post("/api/projects", json={"name": "thin", "folder": str(folder)})
    assert r.status_code == 201
    assert any("line.png" in w and "2000000 x 1" in w for w in r.json()["warnings"]), r.json()["warnings"]
    url = f"/api/projects/{r.json()['project']['id']}/images"
    r = client.post(url, files={"file": ("line2.png", thin.read_bytes(), "image/png")})
    assert r.status_code == 400, r.text
    assert "2000000 x 1" in r.json()["detail"] and f"{tiles.MAX_ASPECT_RATIO}:1" in r.json()["detail"]
    assert [im["file_name"] for im in client.get(url).json()] == ["ok.png"]
    assert _files(cache) == before


def _files(folder) -> set:
    return set(folder.rglob("*")) if folder.exists() else set()


def test_the_tile_limit_is_stated_and_holds_for_large_square_images():
    tiles.check_size(20_000, 20_000)  # 2,139 tiles: allowed
    with pytest.raises(ValueError, match="40000 x 40000 image makes 8,380 tiles, over the limit of 8,192"):
        tiles.check_size(40_000, 40_000)


def _download_name(header: str) -> str:
    """The file name a client that follows RFC 6266 takes from ``header`` (``filename*``
    over ``filename``), after checking that the header holds one of each and nothing else."""
    message = email.message.Message()
    message["content-disposition"] = header
    params = message.get_params(header="content-disposition")
    assert [key for key, _ in params] == ["attachment", "filename", "filename"], params
    assert params[1][1].isascii() and '"' not in params[1][1], "the fallback is plain ASCII"
    return parse_options_header(header)[1]["filename"]


@pytest.mark.parametrize("name", ["数据", 'a"; filename="evil.sh', "back\\slash"])
def test_export_names_are_encoded_per_rfc_6266(client, places, name):
    r = client.post("/api/projects", json={"name": name, "folder": str(places.root / "photos")})
    project = r.json()["project"]
    r = client.get(f"/api/projects/{project['id']}/export", params={"format": "coco"})
    assert r.status_code == 200 and _download_name(r.headers["content-disposition"]) == f"{name}.coco.json"
    r = client.get(f"/api/projects/{project['id']}/export", params={"format": "dota"})
    assert r.status_code == 200 and _download_name(r.headers["content-disposition"]) == f"{name}.dota.zip"


def test_an_image_file_gone_from_disk_is_a_404_naming_it_on_every_route(client, places):
    folder = places.root / "gone"
    _png(folder / "big.png", width=2100, height=64)
    _png(folder / "small.png")
    project = client.post("/api/projects", json={"name": "gone", "folder": str(folder)}).json()["project"]
    images = client.get(f"/api/projects/{project['id']}/images").json()
    for p in folder.iterdir():
        p.unlink()
    for im in images:
        routes = [
            ("get", f"/api/images/{im['id']}/file", None),
            ("post", f"/api/images/{im['id']}/prepare", None),
            ("post", f"/api/images/{im['id']}/detect", {"clicks": [[5, 5, project["classes"][0]["id"]]]}),
            ("post", f"/api/images/{im['id']}/segment", {"box": [2, 2, 20, 20]}),
        ]
        if im["width"] > tiles.LARGE:
            routes.append(("get", f"/api/images/{im['id']}/tiles/0/0/0", None))
        for method, url, body in routes:
            r = client.request(method, url, json=body)
            assert r.status_code == 404 and im["file_name"] in r.json()["detail"], (url, r.text)
    r = client.get(f"/api/projects/{project['id']}/export", params={"format": "coco"})
    assert r.status_code == 200 and len(json.loads(r.content)["images"]) == 2, "names only: no file read"


def test_a_folder_over_the_image_limit_is_refused_before_any_file_is_read(client, places, monkeypatch):
    folder = places.root / "many"
    folder.mkdir()
    for i in range(imports.MAX_FOLDER_IMAGES + 1):
        (folder / f"{i}.png").touch()
    opened = []
    monkeypatch.setattr(imports, "image_size", lambda path: opened.append(path))
    r = client.post("/api/projects", json={"name": "many", "folder": str(folder)})
    assert r.status_code == 400 and f"{imports.MAX_FOLDER_IMAGES:,}" in r.json()["detail"], r.text
    assert opened == [] and "many" not in _names(client)


def test_tile_pyramids_are_made_one_at_a_time(tmp_path, monkeypatch):
    running, most, done = [0], [0], []
    guard = threading.Lock()

    def prepare(cache, image_id, path, width, height):
        with guard:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with guard:
            running[0] -= 1
            done.append(image_id)

    monkeypatch.setattr(tiles, "prepare", prepare)
    for i in range(6):  # six uploads of a large image, one request each
        deps.prepare_tiles(tmp_path, [SimpleNamespace(id=i, path="x", width=4000, height=3000)])
    for _ in range(200):
        if len(done) == 6:
            break
        time.sleep(0.02)
    assert sorted(done) == list(range(6)) and most[0] == 1


def test_serve_takes_data_roots_and_the_upload_limit():
    from fewclick.cli import _parser

    args = _parser().parse_args(["serve", "--data-root", "a", "--data-root", "b", "--max-upload-mb", "5"])
    assert [str(p) for p in args.data_roots] == ["a", "b"] and args.max_upload_mb == 5


def test_a_pyramid_that_fails_does_not_stop_the_ones_after_it(tmp_path, monkeypatch):
    done = []

    def prepare(cache, image_id, path, width, height):
        if image_id == "broken":
            raise RuntimeError("a decoder failed")  # not an OSError or ValueError
        done.append(image_id)

    monkeypatch.setattr(tiles, "prepare", prepare)
    for image_id in ("broken", "next"):
        deps.prepare_tiles(tmp_path, [SimpleNamespace(id=image_id, path="x", width=4000, height=3000)])
    for _ in range(200):
        if done:
            break
        time.sleep(0.02)
    assert done == ["next"]


@pytest.mark.parametrize(
    "sent, stored",
    [
        ("a.png", "a.png"),
        ("..\\..\\pwn4.jpg", "pwn4.jpg"),
        ("../../pwn5.jpg", "pwn5.jpg"),
        ("C:\\Users\\ann\\photo.png", "photo.png"),
        ("C:photo2.png", "photo2.png"),
        ("/etc/abs.png", "abs.png"),
        ("sub/dir\\mixed.png", "mixed.png"),
        (".hidden.png", "hidden.png"),
        ("  spaced.png  ", "spaced.png"),
        ("ab:c.png", "ab_c.png"),
        ("wild*?.png", "wild__.png"),
    ],
)
def test_an_upload_is_stored_under_its_own_base_name(sent, stored):
    assert names.upload_name(sent) == stored


@pytest.mark.parametrize(
    "sent, problem",
    [
        ("", "no file name"),
        ("..", "no file name"),
        ("dir\\", "no file name"),
        ("C:", "no file name"),
        ("a\x00b.png", "control character"),
        ("a\nb.png", "control character"),
        ("tab\t.png", "control character"),
        ("e\u202egnp.exe.png", "control character"),
        ("x" * 300 + ".png", "at most 200 characters"),
    ],
)
def test_an_upload_name_that_cannot_name_a_file_is_refused_naming_why(sent, problem):
    with pytest.raises(names.FileNameError, match=problem):
        names.upload_name(sent)


def test_an_upload_named_with_backslashes_is_stored_under_its_base_name_and_exports_work(client, places):
    project = client.post("/api/projects", json={"name": "uploads", "folder": str(places.root / "photos")})
    url = f"/api/projects/{project.json()['project']['id']}/images"
    content = (places.root / "photos" / "a.png").read_bytes()
    r = client.post(url, files={"file": ("..\\..\\pwn4.png", content, "image/png")})
    assert r.status_code == 201 and r.json()["file_name"] == "pwn4.png", r.text
    r = client.post(url, files={"file": ("..\\..", content, "image/png")})
    assert r.status_code == 400 and "no file name" in r.json()["detail"], r.text
    for format in ("masks", "coco_panoptic"):
        r = client.get(f"/api/projects/{project.json()['project']['id']}/export", params={"format": format})
        assert r.status_code == 200, r.text


def test_an_upload_whose_export_files_would_be_another_images_is_refused_naming_it(client, places):
    project = client.post("/api/projects", json={"name": "twins", "folder": str(places.root / "photos")})
    url = f"/api/projects/{project.json()['project']['id']}/images"
    content = (places.root / "photos" / "a.png").read_bytes()
    r = client.post(url, files={"file": ("a.jpg", content, "image/png")})
    assert r.status_code == 409 and "'a.png'" in r.json()["detail"] and "a.xml" in r.json()["detail"], r.text
    assert [im["file_name"] for im in client.get(url).json()] == ["a.png"]


def test_an_upload_that_lost_the_race_for_its_name_keeps_the_winners_file(app, client, places, monkeypatch):
    """Another upload of the same name is saved while this one is checked (after the name
    was found free): this one is a 409, the other's file and row stay, no .part is left."""
    project = client.post("/api/projects", json={"name": "race", "folder": str(places.root / "photos")})
    project_id = project.json()["project"]["id"]
    folder = app.state.settings.uploads(project_id)
    winner = b"the other upload's bytes"
    real_load = imports.load_image

    def meanwhile(path):
        with app.state.sessions() as other:
            p = other.get(Project, project_id)
            other.add(Image(project=p, file_name="b.png", path=str(folder / "b.png"), width=40, height=30))
            other.commit()
        (folder / "b.png").write_bytes(winner)
        return real_load(path)

    monkeypatch.setattr(imports, "load_image", meanwhile)
    content = (places.root / "photos" / "a.png").read_bytes()
    r = client.post(f"/api/projects/{project_id}/images", files={"file": ("b.png", content, "image/png")})
    assert r.status_code == 409 and "'b.png'" in r.json()["detail"], r.text
    assert (folder / "b.png").read_bytes() == winner
    assert [p.name for p in folder.iterdir()] == ["b.png"]


def test_uploads_into_a_new_project_raise_no_sqlalchemy_warning(client, places):
    """The first uploads into an empty project, one file then several (one the same file
    again, one not an image), as the page sends them: SQLAlchemy's SAWarning "Object of
    type <Image> not in session, add operation along 'Project.images' will not proceed" was
    printed in the server log (issue 67), though every image was added."""
    project = client.post("/api/projects", json={"name": "first uploads", "classes": ["RBC"]})
    url = f"/api/projects/{project.json()['project']['id']}/images"
    content = (places.root / "photos" / "a.png").read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SAWarning)
        one = client.post(url, files={"file": ("a.png", content, "image/png")})
        many = client.post(
            url,
            files=[
                ("files", ("b.png", _png(places.root / "new" / "b.png", value=7).read_bytes(), "image/png")),
                ("files", ("a.png", content, "image/png")),
                ("files", ("c.png", b"not an image", "image/png")),
            ],
        )
    assert one.status_code == 201, one.text
    assert [f["status"] for f in many.json()["files"]] == ["added", "skipped", "refused"], many.text
    assert [im["file_name"] for im in client.get(url).json()] == ["a.png", "b.png"]


def test_every_skipped_file_is_named_even_when_all_are_skipped(client, places, monkeypatch):
    folder = places.root / "all_skipped"
    _png(folder / "wide.png", width=400, height=300)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    import tifffile

    tifffile.imwrite(folder / "cut.tif", np.ones((600, 800, 3), np.uint8), tile=(256, 256), photometric="rgb")
    data = (folder / "cut.tif").read_bytes()
    (folder / "cut.tif").write_bytes(data[: len(data) // 2])
    monkeypatch.setenv("FEWCLICK_MAX_PIXELS", "1000")
    r = client.post("/api/projects", json={"name": "all skipped", "folder": str(folder)})
    detail = r.json()["detail"]
    assert r.status_code == 400 and "no readable images" in detail
    assert "skipped wide.png: " in detail and "exceeds the limit of 1,000" in detail
    assert "skipped broken.jpg: " in detail
    assert "skipped cut.tif: " in detail and "the file is cut short" in detail


def test_a_tiled_tiff_is_read_by_regions_so_the_pixel_limit_is_not_its(client, places, monkeypatch):
    import tifffile

    folder = places.root / "pyramid"
    folder.mkdir(parents=True)
    pixels = np.zeros((600, 800, 3), np.uint8)
    tifffile.imwrite(folder / "slide.tif", pixels, tile=(256, 256), photometric="rgb")
    PILImage.fromarray(pixels).save(folder / "flat.png")
    monkeypatch.setenv("FEWCLICK_MAX_PIXELS", "100000")
    r = client.post("/api/projects", json={"name": "pyramid", "folder": str(folder)})
    assert r.status_code == 201, r.text
    assert [w.split(":")[0] for w in r.json()["warnings"]] == ["skipped flat.png"]
    images = client.get(f"/api/projects/{r.json()['project']['id']}/images").json()
    assert [(im["file_name"], im["width"], im["height"]) for im in images] == [("slide.tif", 800, 600)]


def test_links_are_followed_inside_the_data_roots_and_reported_outside(client, places, tmp_path):
    folder = places.root / "links"
    _png(places.root / "elsewhere" / "inside.png")
    _png(tmp_path / "outside.png")
    _png(folder / "own.png")
    (folder / "inside.png").symlink_to(places.root / "elsewhere" / "inside.png")
    (folder / "outside.png").symlink_to(tmp_path / "outside.png")
    (folder / "dangling.png").symlink_to(tmp_path / "gone.png")
    r = client.post("/api/projects", json={"name": "links", "folder": str(folder)})
    assert r.status_code == 201, r.text
    warnings = sorted(r.json()["warnings"])
    assert len(warnings) == 2
    assert warnings[0].startswith("skipped dangling.png: a link to") and "does not exist" in warnings[0]
    assert (
        warnings[1].startswith("skipped outside.png: a link to")
        and "outside the data roots" in warnings[1]
        and "--data-root" in warnings[1]
    )
    images = client.get(f"/api/projects/{r.json()['project']['id']}/images").json()
    assert sorted(im["file_name"] for im in images) == ["inside.png", "own.png"]
