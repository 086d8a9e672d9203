"""Mask mode's outline (L) edited on real images, in headless Chromium against ``fewclick
serve``: SAM's mask of a box turned into an outline, a vertex dragged, a stretch redrawn and
the outline saved as the mask.

    python benchmarks/screenshots_outline.py --data ../shared/data/coco_tiny
        ../shared/data/dsb2018_nuclei --out docs [--work DIR]

Per dataset the image is the first of our test part (every 4th by name), or, for a dataset
in ``CROWDED``, the one with the most objects among its first 10; the object is its
reference object of median mask area. A project of that image (the dataset's classes) is
made through the API; in the page, once the image is prepared (SAM's embedding), mask mode
(M) and the object's class are taken, the view zoomed onto the object and a box dragged
along its reference box; L turns SAM's mask into an outline (``outline_<dataset>_1.png``).
A vertex is dragged a few pixels towards the reference boundary and a stretch is redrawn
(Shift+click a vertex, two clicks on the reference boundary, a click on the vertex 3
further): ``outline_<dataset>_2.png``. Enter saves the outline filled
(``outline_<dataset>_3.png``). ``outline_screenshots.json`` holds per dataset the file, the
object's box, the outline's vertices as traced and as saved, the edits (taken, or refused
with the page's message), the IoU with the reference mask of SAM's mask, of the outline as
traced and of the mask saved, and the page's script errors. The server stops on SIGTERM,
SIGINT and errors (:func:`_walk.with_server`).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from _browser import chromium_page, log_in, screen, zoom_onto
from _common import part_names, run_record
from _walk import report_walk, with_server
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from shapely.geometry import LineString, MultiLineString, Point
from shapely.ops import nearest_points

from fewclick.io import read_dataset
from fewclick.io.rle import mask_outlines, objects_masks, rle_to_mask
from fewclick.metrics.segmentation import mask_iou
from fewclick.outline import fill_outline
from fewclick.simulate.annotator import required

USER, PASSWORD = "outliner", "outlines on real images"
CROWDED = {"dsb2018_nuclei"}  # datasets shown on a crowded image: many small objects side by side
VERTEX_PX = 7  # outline.js: a press this near a vertex (screen pixels) takes it
MOVED_PX = 4  # view.js: a press that goes further (screen pixels) is a drag
WAIT = 1_800_000  # ms: SAM's embedding on a shared, loaded machine can take minutes
SHOWN = "() => { const s = fewclickTest.seg; return (s.result.candidates[s.shown] || s.result).mask; }"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, nargs="+", required=True, help="datasets with masks")
    p.add_argument("--out", type=Path, required=True, help="where the screenshots and JSON go")
    p.add_argument("--work", type=Path, default=None, help="a new folder for the app (default: temporary)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="fewclick-outline-"))
    roots = [d.resolve().parent for d in args.data]
    seen = with_server(work, None, lambda server: _walk(server, args.data, args.out), roots=roots)
    report_walk({**run_record("load_average"), "datasets": seen}, args.out / "outline_screenshots.json")
    return 0


def _walk(server, datasets: list[Path], out: Path) -> dict:
    api = httpx.Client(base_url=server.base, headers=server.add_user(USER, "admin", PASSWORD), timeout=900)
    seen = {}
    with chromium_page((1400, 900)) as page:
        log_in(page, server.base, USER, PASSWORD)
        for path in datasets:
            errors = len(page.errors)
            seen[path.name] = _dataset(page, server.base, api, path, out)
            seen[path.name]["page_errors"] = page.errors[errors:]
            print(f"{path.name}: IoU {seen[path.name]['iou']}", flush=True)
    return seen


def _pick(path: Path) -> tuple[list[str], object, int, np.ndarray]:
    """The dataset's classes, the image shown, its object shown and that object's mask."""
    data = read_dataset(path)
    records = {r.file_name: r for r in data.images}
    test = [records[n] for n in part_names(list(records), "test")]
    record = max(test[:10], key=lambda r: len(r.objects.boxes)) if path.name in CROWDED else test[0]
    masks = objects_masks(record.objects, record.height, record.width)
    keep = np.flatnonzero(required(record.objects) & masks.any(axis=(1, 2)))
    if not len(keep):
        raise SystemExit(f"{record.file_name} in {path} holds no object with a mask")
    j = int(keep[np.argsort(masks[keep].sum(axis=(1, 2)), kind="stable")[(len(keep) - 1) // 2]])
    return data.classes, record, j, masks[j]


def _dataset(page, base: str, api: httpx.Client, path: Path, out: Path) -> dict:
    """The object's mask made, outlined, edited and saved in the page; what was seen."""
    classes, record, j, truth = _pick(path)
    body = {"name": f"{path.name} outline", "classes": classes}
    project = api.post("/api/projects", json=body).raise_for_status().json()["project"]
    with open(record.path, "rb") as f:
        upload = {"file": (Path(record.file_name).name, f)}
        image = api.post(f"/api/projects/{project['id']}/images", files=upload).raise_for_status().json()
    box = [float(v) for v in record.objects.boxes[j]]
    class_id = project["classes"][int(record.objects.labels[j])]["id"]
    opened = _open(page, base, image, class_id, box)
    _drag(page, box[:2], box[2:])
    page.wait_for_function("() => fewclickTest.seg && fewclickTest.seg.result", timeout=600000)
    sam = rle_to_mask(page.evaluate(SHOWN))
    page.keyboard.press("l")
    page.wait_for_function("() => fewclickTest.seg.outline", timeout=600000)
    traced = _rings(page)
    _shot(page, out / f"outline_{path.name}_1.png")
    edits = _edit_outline(page, traced, truth)
    _shot(page, out / f"outline_{path.name}_2.png")
    saved_rings = _rings(page)
    page.keyboard.press("Enter")
    page.wait_for_function("() => !fewclickTest.seg && fewclickTest.anns.size === 1", timeout=120000)
    _shot(page, out / f"outline_{path.name}_3.png")
    [ann] = api.get(f"/api/images/{image['id']}").raise_for_status().json()["annotations"]
    rings = [(np.asarray(r["points"], float), r["hole"]) for r in traced]
    ious = {
        "sam": mask_iou(sam, truth),
        "outline_traced": mask_iou(fill_outline(rings, record.height, record.width), truth),
        "saved": mask_iou(rle_to_mask(ann["geometry"]["mask"]), truth),
    }
    return {
        "file": record.file_name, "size": [record.width, record.height], "objects": len(record.objects.boxes),
        "object": j, "class": classes[int(record.objects.labels[j])], "box": [round(v, 2) for v in box],
        "area": int(truth.sum()), "open_seconds": opened, "vertices_traced": _vertices(traced),
        "edits": edits, "vertices_saved": _vertices(saved_rings),
        "iou": {k: round(float(v), 4) for k, v in ious.items()}, "saved_source": ann["source"],
    }  # fmt: skip


def _open(page, base: str, image: dict, class_id: int, box: list[float]) -> float:
    """The image in mask mode, the object's class taken, zoomed onto ``box``; seconds to prepare."""
    started = time.monotonic()
    page.goto(f"{base}/#/image/{image['id']}")
    page.wait_for_function("() => fewclickTest.ready", timeout=120000)
    page.keyboard.press("m")
    page.wait_for_function("() => fewclickTest.prep && fewclickTest.prep.ready", timeout=WAIT, polling=1000)
    prepared = round(time.monotonic() - started, 1)
    page.click(f"[data-class='{class_id}']")
    page.evaluate("() => document.activeElement.blur()")  # Enter goes to the page, not the button
    zoom_onto(page, box)
    return prepared


def _edit_outline(page, rings: list[dict], truth: np.ndarray) -> dict:
    """The vertex straying furthest outside the redrawn stretch dragged towards the reference
    boundary, then that stretch redrawn along the boundary (the redraw keeps the drag)."""
    boundary = MultiLineString([np.vstack([c, c[:1]]) for c in mask_outlines(truth)])
    scale = page.evaluate("() => fewclickTest.view.scale")
    near = 1.5 * VERTEX_PX / scale
    k = max((i for i, r in enumerate(rings) if not r["hole"]), key=lambda i: len(rings[i]["points"]))
    points = np.asarray(rings[k]["points"], float)
    plan = _redraw_plan(points, boundary, near)
    spared = set() if plan is None else {(plan[0] + s) % len(points) for s in range(4)}
    i = int(np.argmax([-1.0 if i in spared else boundary.distance(Point(p)) for i, p in enumerate(points)]))
    step = np.asarray(nearest_points(boundary, Point(points[i]))[0].coords[0]) - points[i]
    length = float(np.hypot(*step))
    step = step / length if length > 1e-6 else np.array([1.0, 0.0])
    to = points[i] + step * np.clip(length, max(2.0, 2 * MOVED_PX / scale), 6.0)
    drag = {"ring": k, "vertex": i, "from": _xy(points[i]), "to": _xy(to)}
    drag.update(_taken(page, lambda: _drag(page, points[i], to)))
    points = np.asarray(_rings(page)[k]["points"], float)
    plan = _redraw_plan(points, boundary, near, keep=i)  # again: no click too near the moved vertex
    if plan is None:
        return {"drag": drag, "redraw": None}
    start, end, clicks = plan

    def redraw() -> None:
        page.keyboard.down("Shift")
        page.mouse.click(*screen(page, *points[start]))
        page.keyboard.up("Shift")
        for c in [*clicks, points[end]]:
            page.mouse.click(*screen(page, *c))

    redrawn = {"ring": k, "from": start, "to": end, "clicks": [_xy(c) for c in clicks]}
    return {"drag": drag, "redraw": {**redrawn, **_taken(page, redraw)}}


def _redraw_plan(points: np.ndarray, boundary, near: float, keep: int = -1) -> tuple[int, int, list] | None:
    """(first vertex, the vertex 3 further, two clicks on ``boundary``) of the stretch whose
    two inner vertices (never ``keep``) stray furthest from it; its clicks at a third and two
    thirds along the stretch moved onto the boundary, at least ``near`` image pixels from
    every vertex (a click there would end the redraw) and from each other. None if no
    stretch of at most half the ring allows that."""
    n, best = len(points), None
    half = LineString(np.vstack([points, points[:1]])).length / 2
    for i in range(n):
        stretch = LineString(points[[(i + s) % n for s in range(4)]])
        if n < 5 or stretch.length > half or keep in ((i + 1) % n, (i + 2) % n):
            continue
        clicks = [np.asarray(nearest_points(boundary, stretch.interpolate(t, normalized=True))[0].coords[0])
                  for t in (1 / 3, 2 / 3)]  # fmt: skip
        apart = min(np.hypot(*(points - c).T).min() for c in clicks)
        if apart < near or np.hypot(*(clicks[0] - clicks[1])) < near:
            continue
        stray = sum(boundary.distance(Point(points[(i + s) % n])) for s in (1, 2))
        if best is None or stray > best[0]:
            best = (stray, i, (i + 3) % n, clicks)
    return best and best[1:]


def _taken(page, edit) -> dict:
    """Make an outline edit: taken (one more undo step) or refused with the page's message."""
    steps = page.evaluate("() => fewclickTest.seg.history.length")
    edit()
    try:
        page.wait_for_function(f"() => fewclickTest.seg.history.length > {steps}", timeout=15000)
        return {"taken": True}
    except PlaywrightTimeout:
        return {"taken": False, "message": page.inner_text("#message")}


def _drag(page, a, b) -> None:
    page.mouse.move(*screen(page, *a))
    page.mouse.down()
    page.mouse.move(*screen(page, *b), steps=6)
    page.mouse.up()


def _rings(page) -> list[dict]:
    return page.evaluate("() => fewclickTest.seg.outline.rings")


def _shot(page, path: Path) -> None:
    page.wait_for_timeout(500)  # the last edit's frame drawn
    page.screenshot(path=str(path))


def _xy(p) -> list[float]:
    return [round(float(v), 2) for v in p]


def _vertices(rings: list[dict]) -> list[dict]:
    return [{"hole": r["hole"], "points": [_xy(p) for p in r["points"]]} for r in rings]


if __name__ == "__main__":
    raise SystemExit(main())
