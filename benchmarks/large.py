"""Large images through the app: three mosaics of an annotated dataset, served by
``fewclick serve`` and used through its API.

The mosaics are built from the dataset's own images, placed side by side at full resolution
on shelves (a shelf as high as the tallest image, in whole tiles; a taller image is cut), so
that every object's truth is known in the mosaic:

- ``geotiff``: 16000 x 16000, deflate, 512 px tiles, no overviews, EPSG:32633 at 0.5 m;
- ``slide``: 40000 x 30000, a pyramidal TIFF with its levels as SubIFDs (JPEG tiles);
- ``jpeg``: 20000 x 20000, a plain JPEG.

Each is imported as a project of its own through the API; then, per image:

- ``first_tile_s`` / ``first_full_tile_s``: seconds from the project's creation (the image
  listed) to the first tile of the coarsest level and of full resolution being served;
- ``tile_ms``: p50 / p95 of full-resolution tiles not yet made, in random places;
- ``peak_rss_mb``: the server's and its workers' resident memory, summed, sampled every 0.1 s
  (its peak over the whole run of the image);
- ``mask_mIoU`` and ``mask_mIoU_source``: box-to-mask from each object's own box, on the
  mosaic and on its source image (a second project of the source images), against the
  object's mask (datasets with masks);
- ``click_p95_ms`` (and ``click_ms``: p50, p95, the first): click-to-detect of one click on an
  object, each in a window not yet encoded (the encoder's time included), timed by the client;
- ``preannotate_s``: whole-image pre-annotation of the image by ``fewclick predict`` with a
  trained detector (``--model``, else one trained here for ``--model-steps`` steps on the
  dataset), in this process and on Ray with 2 workers (``--ray``), and whether both gave
  identical boxes (``preannotate_identical``);
- ``geojson``: the GeoJSON export read back (the georeferenced image's CRS and where a box lands);
- ``sweep`` (``--sweep`` mosaics, default the GeoTIFF): the sweep of the rest of the image
  after one click (:mod:`fewclick.server.worker_sweep`, the training-free start): its
  seconds, windows and boxes, within the same peak RSS.

Nothing is trained, so the whole dataset is used (no split). ``--work`` holds the mosaics and
the server's data; a mosaic already there is used again.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from _common import add_work, run_record, work_folder, write_report
from _server import ServerProcess, descendants, dies_with_parent, stop_on_signals
from tqdm import tqdm

from fewclick.io import read_dataset
from fewclick.io.images import load_image
from fewclick.io.rle import rle_window, segmentation_to_mask

TILE = 512
#: name -> (width, height, kind)
MOSAICS = {
    "geotiff": (16000, 16000, "geotiff"),
    "slide": (40000, 30000, "slide"),
    "jpeg": (20000, 20000, "jpeg"),
}
EPSG = 32633
METRES_PER_PIXEL = 0.5
ORIGIN = (500000.0, 4100000.0)  # the GeoTIFF's top-left corner in EPSG:32633
MASK_OBJECTS = 50
TILE_SAMPLES = 40
CLICKS = 20


@dataclass
class Piece:
    """Part ``crop`` (x0, y0, x1, y1) of source image ``record`` placed at ``at`` (x, y)."""

    record: int
    crop: tuple[int, int, int, int]
    at: tuple[int, int]


@dataclass
class Truth:
    """One object of a mosaic: its box there, its source record and its box there."""

    box: list[float]
    record: int
    index: int
    source_box: list[float]


@dataclass
class Mosaic:
    name: str
    path: Path
    width: int
    height: int
    pieces: list[Piece] = field(default_factory=list)


def layout(records, width: int, height: int) -> tuple[list[Piece], int]:
    """Pieces of the sources, in turn, on shelves of whole tiles until the mosaic is full."""
    shelf = min(4 * TILE, TILE * math.ceil(max(r.height for r in records) / TILE))
    cuts = []  # every source cut into parts at most a shelf high and the mosaic wide
    for i, r in enumerate(records):
        for y in range(0, r.height, shelf):
            for x in range(0, r.width, width):
                cuts.append(Piece(i, (x, y, min(r.width, x + width), min(r.height, y + shelf)), (0, 0)))
    pieces, k, y = [], 0, 0
    while y + shelf <= height or (y < height and not pieces):
        x = 0
        while True:
            c = cuts[k % len(cuts)]
            w = c.crop[2] - c.crop[0]
            if x + w > width:
                break
            pieces.append(Piece(c.record, c.crop, (x, y)))
            x, k = x + w, k + 1
        y += shelf
    return pieces, shelf


def truth(mosaic: Mosaic, records) -> list[Truth]:
    """Every object wholly inside a piece, where it lies in the mosaic."""
    out = []
    for p in mosaic.pieces:
        boxes = records[p.record].objects.boxes
        x0, y0, x1, y1 = p.crop
        dx, dy = p.at[0] - x0, p.at[1] - y0
        for j, b in enumerate(boxes):
            if (
                b[0] >= x0
                and b[1] >= y0
                and b[2] <= x1
                and b[3] <= y1
                and b[2] - b[0] >= 2
                and b[3] - b[1] >= 2
            ):
                moved = [float(b[0] + dx), float(b[1] + dy), float(b[2] + dx), float(b[3] + dy)]
                out.append(Truth(moved, p.record, j, [float(v) for v in b]))
    return out


class Painter:
    """The mosaic's pixels a tile at a time, its sources decoded once."""

    def __init__(self, mosaic: Mosaic, records, shelf: int) -> None:
        self.mosaic, self.records, self.shelf = mosaic, records, shelf
        self.by_shelf: dict[int, list[Piece]] = {}
        for p in mosaic.pieces:
            self.by_shelf.setdefault(p.at[1] // shelf, []).append(p)
        self.sources: dict[int, np.ndarray] = {}

    def source(self, i: int) -> np.ndarray:
        if i not in self.sources:
            self.sources[i] = load_image(self.records[i].path)
        return self.sources[i]

    def tile(self, tx: int, ty: int, size: int = TILE) -> np.ndarray:
        out = np.zeros((size, size, 3), np.uint8)
        x0, y0 = tx * size, ty * size
        for p in self.by_shelf.get(y0 // self.shelf, []):
            cx0, cy0, cx1, cy1 = p.crop
            ax0, ay0 = p.at
            ax1, ay1 = ax0 + cx1 - cx0, ay0 + cy1 - cy0
            ix0, iy0, ix1, iy1 = max(x0, ax0), max(y0, ay0), min(x0 + size, ax1), min(y0 + size, ay1)
            if ix1 > ix0 and iy1 > iy0:
                src = self.source(p.record)
                sx, sy = cx0 + ix0 - ax0, cy0 + iy0 - ay0
                out[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0] = src[sy : sy + iy1 - iy0, sx : sx + ix1 - ix0]
        return out

    def tiles(self):
        cols, rows = math.ceil(self.mosaic.width / TILE), math.ceil(self.mosaic.height / TILE)
        for ty in tqdm(range(rows), desc=f"writing {self.mosaic.name}", unit="tile row"):
            for tx in range(cols):
                yield self.tile(tx, ty)


def build(name: str, records, folder: Path) -> tuple[Mosaic, int]:
    """The mosaic ``name`` of MOSAICS in ``folder/name/`` (written unless there)."""
    import tifffile

    width, height, kind = MOSAICS[name]
    suffix = ".jpg" if kind == "jpeg" else ".tif"
    path = folder / name / f"{name}{suffix}"
    pieces, shelf = layout(records, width, height)
    mosaic = Mosaic(name, path, width, height, pieces)
    if path.is_file():
        return mosaic, shelf
    path.parent.mkdir(parents=True, exist_ok=True)
    painter = Painter(mosaic, records, shelf)
    flat = folder / f"{name}.level0.tif"
    geo = kind == "geotiff"
    tifffile.imwrite(
        path if geo else flat,
        painter.tiles(),
        shape=(height, width, 3),
        dtype=np.uint8,
        tile=(TILE, TILE),
        compression="deflate" if geo else "lzw",
        photometric="rgb",
        bigtiff=True,
        extratags=_geotiff_tags() if geo else (),
    )
    if not geo:
        import pyvips

        level0 = pyvips.Image.new_from_file(str(flat), access="sequential")
        tmp = path.with_name(f"{path.stem}.tmp{suffix}")
        if kind == "slide":
            level0.tiffsave(
                str(tmp),
                tile=True,
                tile_width=TILE,
                tile_height=TILE,
                pyramid=True,
                subifd=True,
                compression="jpeg",
                Q=90,
                bigtiff=True,
            )
        else:
            level0.jpegsave(str(tmp), Q=90)
        tmp.replace(path)
        flat.unlink()
    print(f"wrote {path} ({path.stat().st_size / 1e6:.0f} MB)", flush=True)
    return mosaic, shelf


def _geotiff_tags() -> list:
    """GeoKeyDirectory (projected, pixel is area, EPSG:32633), pixel scale and tie point."""
    keys = [1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, EPSG]
    return [
        (34735, "H", len(keys), keys, True),
        (33550, "d", 3, (METRES_PER_PIXEL, METRES_PER_PIXEL, 0.0), True),
        (33922, "d", 6, (0.0, 0.0, 0.0, *ORIGIN, 0.0), True),
    ]


class Memory:
    """The summed resident memory of a process and its descendants, sampled every 0.1 s."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_mb, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Memory:
        self.peak_mb = 0.0
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self.now_mb())
            time.sleep(0.1)

    def now_mb(self) -> float:
        total = 0
        for pid in {self.pid, *descendants(self.pid)}:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except (FileNotFoundError, ProcessLookupError):
                pass
        return total / 1024


def project(api: httpx.Client, name: str, folder: Path, classes: list[str]) -> tuple[dict, float]:
    """A new project of the images in ``folder``, and when it was made."""
    r = api.post("/api/projects", json={"name": name, "folder": str(folder), "classes": classes})
    made = time.perf_counter()
    if r.status_code >= 400:
        raise SystemExit(f"creating project {name!r} failed: {r.status_code} {r.text}")
    p = r.json()["project"]
    api.patch(f"/api/projects/{p['id']}", json={"auto_train_every": 0}).raise_for_status()
    return p, made


def wait_tile(api: httpx.Client, image_id: int, level: int, col: int, row: int, timeout: float) -> float:
    """When the tile was first served (perf_counter), polling."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        r = api.get(f"/api/images/{image_id}/tiles/{level}/{col}/{row}")
        if r.status_code == 200:
            return time.perf_counter()
        if r.status_code not in (404, 409, 503):
            raise SystemExit(f"tile {level}/{col}/{row}: {r.status_code} {r.text}")
        time.sleep(0.05)
    raise SystemExit(f"tile {level}/{col}/{row} of image {image_id} not served within {timeout:.0f} s")


def tile_times(api: httpx.Client, image: dict, rng: random.Random) -> dict:
    cols, rows = math.ceil(image["width"] / TILE), math.ceil(image["height"] / TILE)
    ms = []
    for _ in range(TILE_SAMPLES):
        col, row = rng.randrange(cols), rng.randrange(rows)
        t = time.perf_counter()
        api.get(f"/api/images/{image['id']}/tiles/0/{col}/{row}").raise_for_status()
        ms.append((time.perf_counter() - t) * 1000)
    return {"p50": round(float(np.percentile(ms, 50)), 1), "p95": round(float(np.percentile(ms, 95)), 1)}


def masks(
    api: httpx.Client, image_id: int, boxes: list[list[float]], size: tuple[int, int]
) -> list[np.ndarray]:
    """Box-to-mask of each box (the mask's window of the box's, plus a margin, is kept)."""
    out = []
    for box in tqdm(boxes, desc="box-to-mask", unit="box"):
        r = api.post(f"/api/images/{image_id}/segment", json={"box": box, "clicks": []})
        if r.status_code != 200:
            raise SystemExit(f"segment {box} on image {image_id}: {r.status_code} {r.text}")
        out.append(rle_window(r.json()["mask"], _around(box, size)))
    return out


def _around(box, size: tuple[int, int], margin: int = 16) -> tuple[int, int, int, int]:
    h, w = size
    return (
        max(0, int(box[0]) - margin),
        max(0, int(box[1]) - margin),
        min(w, math.ceil(box[2]) + margin),
        min(h, math.ceil(box[3]) + margin),
    )


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def mask_scores(api, mosaic: Mosaic, image: dict, objects: list[Truth], records, source_ids: dict) -> tuple:
    """(mask_mIoU on the mosaic, mask_mIoU on the sources) of ``objects`` against their masks."""
    segs = [records[o.record].objects.segmentations for o in objects]
    if any(s is None or s[o.index] is None for s, o in zip(segs, objects)):
        return None, None
    on_mosaic = masks(api, image["id"], [o.box for o in objects], (mosaic.height, mosaic.width))
    mosaic_ious, source_ious = [], []
    for o, got in zip(objects, on_mosaic):
        r = records[o.record]
        full = segmentation_to_mask(r.objects.segmentations[o.index], r.height, r.width)
        mosaic_ious.append(iou(got, truth_window(o, full, _around(o.box, (mosaic.height, mosaic.width)))))
        src = source_ids[Path(r.file_name).name]
        got_src = masks(api, src, [o.source_box], (r.height, r.width))[0]
        source_ious.append(iou(got_src, full[_slices(_around(o.source_box, (r.height, r.width)))]))
    return round(float(np.mean(mosaic_ious)), 4), round(float(np.mean(source_ious)), 4)


def truth_window(o: Truth, full: np.ndarray, window) -> np.ndarray:
    """The object's mask ``full`` (in its source image) as the mosaic's ``window`` (x0, y0,
    x1, y1) holds it: zeros where the window reaches past the source image."""
    x0, y0, x1, y1 = window
    sx0, sy0 = int(round(x0 - (o.box[0] - o.source_box[0]))), int(round(y0 - (o.box[1] - o.source_box[1])))
    want = np.zeros((y1 - y0, x1 - x0), bool)
    part = full[max(sy0, 0) : sy0 + y1 - y0, max(sx0, 0) : sx0 + x1 - x0]
    want[max(-sy0, 0) : max(-sy0, 0) + part.shape[0], max(-sx0, 0) : max(-sx0, 0) + part.shape[1]] = part
    return want


def _slices(box) -> tuple[slice, slice]:
    return slice(box[1], box[3]), slice(box[0], box[2])


def geojson_round_trip(api, project_id: int, image: dict, box: list[float]) -> dict:
    """Save ``box``, export the project as GeoJSON, read it back: its CRS and the box's
    corner in map units against the GeoTIFF's transform."""
    classes = api.get(f"/api/projects/{project_id}").json()["classes"]
    body = {"class_id": classes[0]["id"], "kind": "box", "geometry": {"box": box}}
    revision = api.get(f"/api/images/{image['id']}").json()["revision"]
    r = api.post(f"/api/images/{image['id']}/annotations", json=body, params={"revision": revision})
    if r.status_code >= 400:
        raise SystemExit(f"saving box {box}: {r.status_code} {r.text}")
    r = api.get(f"/api/projects/{project_id}/export", params={"format": "geojson"})
    r.raise_for_status()
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".geojson"))
        collection = json.loads(zf.read(name))
    crs = collection.get("crs", {}).get("properties", {}).get("name")
    ring = np.asarray(collection["features"][0]["geometry"]["coordinates"][0], np.float64)
    want_x = ORIGIN[0] + box[0] * METRES_PER_PIXEL
    want_y = ORIGIN[1] - box[1] * METRES_PER_PIXEL
    error = float(np.min(np.hypot(ring[:, 0] - want_x, ring[:, 1] - want_y)))
    return {
        "crs": crs,
        "corner_error_m": round(error, 6),
        "ok": crs == f"urn:ogc:def:crs:EPSG::{EPSG}" and error < 1e-3,
    }


def click_times(api, image: dict, mosaic: Mosaic, objects: list[Truth], records, class_ids: dict) -> dict:
    """One click on each of :data:`CLICKS` objects in windows no click encoded before: the
    seconds to the answer, and how many answers box the clicked object (IoU >= 0.5)."""
    from fewclick.predict.windows import detect_window

    seen, ms, boxed = set(), [], 0
    for o in random.Random(2).sample(objects, len(objects)):
        x, y = (o.box[0] + o.box[2]) / 2, (o.box[1] + o.box[3]) / 2
        window = detect_window(x, y, mosaic.width, mosaic.height)
        if any(abs(window[0] - w[0]) < 1024 and abs(window[1] - w[1]) < 1024 for w in seen):
            continue  # overlapping a window already encoded
        seen.add(window)
        label = int(records[o.record].objects.labels[o.index])
        t = time.perf_counter()
        r = api.post(f"/api/images/{image['id']}/detect", json={"clicks": [[x, y, class_ids[label]]]})
        ms.append((time.perf_counter() - t) * 1000)
        if r.status_code != 200:
            raise SystemExit(f"detect at ({x:.0f}, {y:.0f}): {r.status_code} {r.text}")
        boxes = np.asarray(r.json()["boxes"], np.float64).reshape(-1, 4)
        boxed += int(len(boxes) > 0 and _ious(boxes, o.box).max() >= 0.5)
        if len(ms) == CLICKS:
            break
    return {
        "p50": round(float(np.percentile(ms, 50)), 1),
        "p95": round(float(np.percentile(ms, 95)), 1),
        "first": round(ms[0], 1),
        "clicks": len(ms),
        "clicked_object_boxed": boxed,
    }


def sweep_times(api, image: dict, mosaic: Mosaic, objects: list[Truth], records, class_ids: dict) -> dict:
    """The sweep of the rest of the image after one click on an object (the page's view, a
    1400 x 900 px screen at full zoom, around it): its seconds, windows and boxes, and how
    many of the boxes lie on an object of the mosaic (IoU >= 0.5, any class)."""
    o = random.Random(3).choice(objects)
    x, y = (o.box[0] + o.box[2]) / 2, (o.box[1] + o.box[3]) / 2
    click = [x, y, class_ids[int(records[o.record].objects.labels[o.index])]]
    view = [x - 700, y - 450, x + 700, y + 450]
    url = f"/api/images/{image['id']}/lookalikes"
    r = api.post(url, json={"clicks": [click], "view": view})
    if r.status_code != 202:
        raise SystemExit(f"the sweep after a click at ({x:.0f}, {y:.0f}): {r.status_code} {r.text}")
    found = r.json()
    with tqdm(total=found["windows"], desc=f"sweep of {mosaic.name}", unit="window") as bar:
        while found["status"] == "running":
            time.sleep(2)
            found = api.get(url).raise_for_status().json()
            bar.update(found["windows_done"] - bar.n)
    boxes = np.asarray(found["boxes"], np.float64).reshape(-1, 4)
    truths = np.asarray([t.box for t in objects], np.float64).reshape(-1, 4)
    on_object = sum(int(_ious(truths, b).max() >= 0.5) for b in boxes)
    return {
        "status": found["status"],
        "message": found["message"],
        "seconds": found["seconds"],
        "windows": found["windows"],
        "windows_done": found["windows_done"],
        "seconds_per_window": round(found["seconds"] / max(found["windows_done"], 1), 3),
        "boxes": len(boxes),
        "boxes_on_an_object": on_object,
    }


def _ious(boxes: np.ndarray, box) -> np.ndarray:
    lo, hi = np.maximum(boxes[:, :2], box[:2]), np.minimum(boxes[:, 2:], box[2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1) + (box[2] - box[0]) * (box[3] - box[1])
    return inter / np.maximum(area - inter, 1e-9)


def trained_model(args, work: Path) -> Path:
    """``--model``, or a detector trained here on the dataset for ``--model-steps`` steps."""
    import subprocess

    if args.model is not None:
        return args.model
    out = work / "model"
    if not (out / "last.pt").is_file():
        command = [sys.executable, "-m", "fewclick.cli", "train", "detect", "--data", str(args.data)]
        steps = ["--steps", str(args.model_steps)]
        subprocess.run([*command, "--out", str(out), *steps], check=True, preexec_fn=dies_with_parent())
    return out


def preannotate(mosaic: Mosaic, classes: list[str], model: Path, work: Path, ray: bool) -> dict:
    """Seconds of ``fewclick predict`` on the whole mosaic, in this process and (``ray``) on
    Ray with 2 workers, each in a process of its own, and whether their boxes are identical."""
    import subprocess

    folder = work / "predict" / mosaic.name
    folder.mkdir(parents=True, exist_ok=True)
    coco = {
        "images": [
            {"id": 1, "file_name": str(mosaic.path.resolve()), "width": mosaic.width, "height": mosaic.height}
        ],
        "annotations": [],
        "categories": [{"id": k + 1, "name": c} for k, c in enumerate(classes)],
    }
    (folder / "annotations.json").write_text(json.dumps(coco))
    command = [sys.executable, "-m", "fewclick.cli", "predict", "--model", str(model)]
    command += ["--data", str(folder / "annotations.json")]
    out, results = {}, {}
    for runner, extra in (("in_process", []), ("ray_2", ["--ray", "--workers", "2"])):
        if runner == "ray_2" and not ray:
            out[runner] = None
            continue
        target = folder / f"{runner}.json"
        t = time.perf_counter()
        quiet = {"stdout": subprocess.DEVNULL, "preexec_fn": dies_with_parent()}  # ends if this process does
        subprocess.run([*command, "--out", str(target), *extra], check=True, **quiet)
        out[runner] = round(time.perf_counter() - t, 1)
        results[runner] = json.loads(target.read_text())
    same = None
    if len(results) == 2:
        key = lambda r: (r.get("bbox"), r.get("poly"), r["category_id"], round(r["score"], 5))  # noqa: E731
        same = sorted(map(key, results["in_process"])) == sorted(map(key, results["ray_2"]))
    return {"seconds": out, "identical": same, "boxes": len(results["in_process"])}


def run_image(api, mosaic: Mosaic, records, objects, chosen, source_ids, classes, memory, pre, sweep) -> dict:
    with memory:
        p, made = project(api, f"large {mosaic.name} {time.strftime('%H%M%S')}", mosaic.path.parent, classes)
        images = api.get(f"/api/projects/{p['id']}/images").json()
        image = images[0]
        levels = math.ceil(math.log2(max(mosaic.width, mosaic.height) / TILE)) + 1
        first = wait_tile(api, image["id"], levels - 1, 0, 0, 600) - made
        full = wait_tile(api, image["id"], 0, 0, 0, 600) - made
        times = tile_times(api, image, random.Random(1))
        class_ids = [c["id"] for c in p["classes"]]
        clicks = click_times(api, image, mosaic, objects, records, class_ids)
        mask_mosaic, mask_source = mask_scores(api, mosaic, image, chosen, records, source_ids)
        geo = geojson_round_trip(api, p["id"], image, chosen[0].box) if mosaic.name == "geotiff" else None
        swept = sweep_times(api, image, mosaic, objects, records, class_ids) if sweep else None
    return {
        "width": mosaic.width,
        "height": mosaic.height,
        "file_mb": round(mosaic.path.stat().st_size / 1e6, 1),
        "objects": len(objects),
        "first_tile_s": round(first, 3),
        "first_full_tile_s": round(full, 3),
        "tile_ms": times,
        "peak_rss_mb": round(memory.peak_mb, 1),
        "mask_mIoU": mask_mosaic,
        "mask_mIoU_source": mask_source,
        "mask_objects": len(chosen) if mask_mosaic is not None else 0,
        "click_p95_ms": clicks["p95"],
        "click_ms": clicks,
        "preannotate_s": pre["seconds"] if pre else {"in_process": None, "ray_2": None},
        "preannotate_identical": pre["identical"] if pre else None,
        "preannotate_boxes": pre["boxes"] if pre else None,
        "geojson": geo,
        "sweep": swept,
    }


def sources_project(api, records, used: set[int], folder: Path, classes) -> dict:
    """A project of the source images ``used`` (indices; links in ``folder``): file name
    -> image id."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for i in sorted(used):
        link = folder / Path(records[i].file_name).name
        if not link.exists():
            link.symlink_to(Path(records[i].path).resolve())
    p, _ = project(api, f"sources {time.strftime('%H%M%S')}", folder, classes)
    return {im["file_name"]: im["id"] for im in api.get(f"/api/projects/{p['id']}/images").json()}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    data = read_dataset(args.data)
    records = [r for r in data.images if r.path is not None and len(r.objects)]
    if not records:
        raise SystemExit(f"{args.data}: no annotated images")
    work = work_folder(args.work, "large", args.data)
    mosaics_dir = work / "mosaics"
    built = {name: build(name, records, mosaics_dir)[0] for name in args.mosaics}
    classes = list(data.classes) or ["object"]
    rng = random.Random(0)
    objects = {name: truth(m, records) for name, m in built.items()}
    model = trained_model(args, work) if args.preannotate else None
    chosen = {name: rng.sample(o, min(MASK_OBJECTS, len(o))) for name, o in objects.items()}
    report = {
        "data": str(args.data),
        "images": {},
        **run_record("load_average_start"),
    }
    (work / "sources").mkdir(exist_ok=True)
    server_data = work / "server"
    shutil.rmtree(server_data, ignore_errors=True)
    server = ServerProcess(server_data, data_roots=[mosaics_dir, work / "sources", Path(args.data)])
    server.start()
    try:
        headers = server.add_user("admin", "admin", "large-benchmark")
        api = httpx.Client(base_url=server.base, headers=headers, timeout=600)
        memory = Memory(server.process.pid)
        used = {o.record for c in chosen.values() for o in c}
        source_ids = sources_project(api, records, used, work / "sources", classes)
        for name, mosaic in built.items():
            pre = preannotate(mosaic, classes, model, work, args.ray) if name in args.preannotate else None
            report["images"][name] = run_image(
                api, mosaic, records, objects[name], chosen[name], source_ids, classes, memory, pre,
                name in args.sweep,
            )  # fmt: skip
            print(name, json.dumps(report["images"][name]), flush=True)
            write_report(report, args.out)
    finally:
        server.stop()
    report["load_average_end"] = os.getloadavg()
    write_report(report, args.out)
    print(f"wrote {args.out}")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, type=Path, help="an annotated dataset the mosaics are made of")
    p.add_argument("--out", required=True, type=Path)
    add_work(p, "where the mosaics and the server's data go")
    p.add_argument("--mosaics", nargs="+", choices=list(MOSAICS), default=list(MOSAICS))
    p.add_argument("--ray", action="store_true", help="pre-annotate on Ray with 2 workers too")
    p.add_argument("--model", type=Path, help="a `fewclick train detect` folder for the pre-annotation")
    p.add_argument("--model-steps", type=int, default=100, help="without --model, train one this long")
    for flag, what in (("--preannotate", "pre-annotated whole"), ("--sweep", "swept whole after a click")):
        p.add_argument(
            flag,
            nargs="*",
            choices=list(MOSAICS),
            default=["geotiff"],
            help=f"the mosaics {what} (default: the GeoTIFF)",
        )
    return p


if __name__ == "__main__":
    with stop_on_signals():  # SIGTERM and SIGINT stop the server and its workers too
        sys.exit(main())
