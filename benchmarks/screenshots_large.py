"""Large images as a person sees them, in headless Chromium: a click on a 16000 x 16000
GeoTIFF and the sweep of the rest of it, and a mask on a 40000 x 30000 slide, at full zoom.

    python benchmarks/screenshots_large.py --aerial ../shared/data/dota_samples \\
        --slide ../shared/data/dsb2018_nuclei --work DIR --out DIR

Builds (or reuses) ``benchmarks/large.py``'s GeoTIFF mosaic of ``--aerial`` and slide mosaic
of ``--slide`` under ``--work``, runs ``fewclick serve`` with a project of each, and in the
page: the GeoTIFF's overview (``large_geotiff_overview.png``), then at full resolution on
an object, one click in Detect mode (``large_geotiff_click.png``), after ``--finished``
source images of the aerial set (not in the mosaic) were uploaded to the project and
finished with their boxes; then the sweep of the rest of the image for up to
``--sweep-seconds``, seen zoomed out around the click (``large_geotiff_sweep.png``); the
slide zoomed to 2 screen pixels a pixel on a nucleus, a box dragged in Mask mode
(``large_slide_mask.png``), the mask accepted. Writes ``large_walk.json``: seconds per
step, the proposals and the clicked object's best IoU, the sweep's windows, seconds and
boxes with their precision and recall at IoU 0.5 against the clicked class's objects in the
windows it swept, the mask's IoU with the nucleus's.
"""

from __future__ import annotations

import argparse
import random
import shutil
import time
from pathlib import Path

import httpx
import numpy as np
from _browser import chromium_page, log_in, screen
from _walk import report_walk, with_server
from large import Truth, _ious, build, truth, truth_window
from large import _around as large_around

from fewclick.io import read_dataset
from fewclick.io.rle import rle_window, segmentation_to_mask
from fewclick.predict.windows import sweep_windows

USER, PASSWORD = "surveyor", "large images at full zoom"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    aerial, slide = read_dataset(args.aerial), read_dataset(args.slide)
    a_records = [r for r in aerial.images if r.path is not None and len(r.objects)]
    s_records = [r for r in slide.images if r.path is not None and len(r.objects)]
    geotiff, _ = build("geotiff", a_records, args.work / "aerial")
    wsi, _ = build("slide", s_records, args.work / "slide")
    shutil.rmtree(args.work / "server", ignore_errors=True)

    def walk(server) -> dict:
        api = httpx.Client(
            base_url=server.base, headers=server.add_user(USER, "admin", PASSWORD), timeout=600
        )
        return {
            "geotiff": _click(api, server, geotiff, a_records, aerial.classes, args),
            "slide": _mask(api, server, wsi, s_records, slide.classes, args.out),
        }

    seen = with_server(args.work / "server", None, walk, roots=[geotiff.path.parent, wsi.path.parent])
    report_walk(seen, args.out / "large_walk.json")
    return 0


def _project(api, mosaic, classes: list[str]) -> tuple[dict, dict]:
    body = {"name": mosaic.name, "folder": str(mosaic.path.parent), "classes": classes}
    project = api.post("/api/projects", json=body).raise_for_status().json()["project"]
    api.patch(f"/api/projects/{project['id']}", json={"auto_train_every": 0}).raise_for_status()
    return project, api.get(f"/api/projects/{project['id']}/images").json()[0]


def _open(page, server, image: dict, centre: tuple[float, float] | None, scale: float | None) -> float:
    """The image on the annotation page, at ``scale`` on ``centre`` (None: as fitted); the
    seconds until its tiles in view are loaded."""
    t = time.perf_counter()
    page.goto(f"{server.base}/#/image/{image['id']}")
    page.wait_for_function("() => fewclickTest.ready", timeout=120000)
    if centre is not None:
        page.evaluate(
            """([cx, cy, scale]) => { const {width, height} = fewclickTest.canvas;
            fewclickTest.setView({scale, ox: width / 2 - cx * scale, oy: height / 2 - cy * scale}); }""",
            [*centre, scale],
        )
    page.wait_for_function("() => fewclickTest.tilesReady", timeout=120000)
    page.wait_for_timeout(300)
    return round(time.perf_counter() - t, 2)


def _used(objects: list[Truth], records) -> list[int]:
    """The classes (positions in the dataset's) the mosaic's objects have: the project's."""
    return sorted({int(records[o.record].objects.labels[o.index]) for o in objects})


def _pick(objects: list[Truth], records, used: list[int], smallest: float, largest: float) -> Truth:
    """An object of a class the number keys pick (1-9), of a side between the two sizes."""
    rng = random.Random(5)
    for o in rng.sample(objects, len(objects)):
        side = max(o.box[2] - o.box[0], o.box[3] - o.box[1])
        if used.index(int(records[o.record].objects.labels[o.index])) < 9 and smallest <= side <= largest:
            return o
    raise SystemExit(f"no object of {smallest}-{largest} px in a class the keys 1-9 pick")


def _click(api, server, mosaic, records, classes, args) -> dict:
    """The GeoTIFF's overview, then one click in Detect mode on an object at full zoom
    after a few finished images, and the sweep of the rest."""
    out = args.out
    objects = truth(mosaic, records)
    used = _used(objects, records)
    project, image = _project(api, mosaic, [classes[k] for k in used])
    finished, done = _finish(api, project, mosaic, records, used, args.finished)
    o = _pick(objects, records, used, 16, 80)
    label = int(records[o.record].objects.labels[o.index])
    centre = ((o.box[0] + o.box[2]) / 2, (o.box[1] + o.box[3]) / 2)
    with chromium_page((1400, 900)) as page:
        log_in(page, server.base, USER, PASSWORD)
        overview_s = _open(page, server, image, None, None)
        page.screenshot(path=str(out / "large_geotiff_overview.png"))
        zoom_s = _open(page, server, image, centre, 1.0)
        page.keyboard.press(str(used.index(label) + 1))
        page.keyboard.press("d")
        view = page.evaluate(
            """() => { const v = fewclickTest.view, {width, height} = fewclickTest.canvas;
            const x = (px) => px / v.scale;
            return [x(-v.ox), x(-v.oy), x(width - v.ox), x(height - v.oy)]; }"""
        )
        t = time.perf_counter()
        page.mouse.click(*screen(page, *centre))
        page.wait_for_function("() => fewclickTest.detect.answered === 1", timeout=120000)
        click_s = round(time.perf_counter() - t, 2)
        page.wait_for_timeout(400)
        page.screenshot(path=str(out / "large_geotiff_click.png"))
        result = page.evaluate("() => fewclickTest.detect.answer")
        swept = _sweep(page, centre, args.sweep_seconds, out / "large_geotiff_sweep.png")
        errors = list(page.errors)
    trained = None
    if args.train_minutes:
        trained = _trained_open(
            api, server, project, image, (mosaic, records, objects, done, classes), centre, args
        )
    boxes = np.asarray(result["boxes"], np.float64).reshape(-1, 4)
    return {
        "image": [mosaic.width, mosaic.height],
        "finished_images": finished,
        "class": classes[label],
        "object_box": [round(v, 1) for v in o.box],
        "overview_s": overview_s,
        "full_zoom_tiles_s": zoom_s,
        "click_to_boxes_s": click_s,
        "method": result.get("method"),
        "proposals": len(boxes),
        "clicked_object_iou": round(float(_ious(boxes, o.box).max()), 3) if len(boxes) else 0.0,
        "sweep": _sweep_quality(swept, objects, records, label, o, (mosaic.width, mosaic.height, view)),
        "trained": trained,
        "page_errors": errors,
    }


def _trained_open(api, server, project: dict, image: dict, truth_of, centre, args) -> dict:
    """Train the project's detector on its finished images (``--train-minutes``), then open
    the GeoTIFF as a person would next: its proposals come from the sweep of the trained
    detector, without a click; seen zoomed out around ``centre`` (``large_geotiff_trained.png``),
    and scored against the objects of the source images nobody finished."""
    mosaic = truth_of[0]
    job = api.post(f"/api/projects/{project['id']}/train", json={"minutes": args.train_minutes})
    job = job.raise_for_status().json()
    t = time.perf_counter()
    while job["status"] in ("queued", "running"):
        time.sleep(5)
        job = api.get(f"/api/jobs/{job['id']}").raise_for_status().json()
    train_s = round(time.perf_counter() - t, 1)
    if job["status"] != "done":
        return {"train_status": job["status"], "train_message": job["message"], "train_s": train_s}
    with chromium_page((1400, 900)) as page:
        log_in(page, server.base, USER, PASSWORD)
        page.goto(f"{server.base}/#/image/{image['id']}")
        page.wait_for_function("() => fewclickTest.ready", timeout=120000)
        swept = _sweep(page, centre, args.sweep_seconds, args.out / "large_geotiff_trained.png")
        state = page.evaluate("() => fewclickTest.detect")
        errors = list(page.errors)
    shown = _shown(state)
    boxes = np.asarray([state["result"]["boxes"][i] for i in shown], np.float64).reshape(-1, 4)
    labels = [state["result"]["labels"][i] for i in shown]
    ids = {c["id"]: c["name"] for c in project["classes"]}
    windows = sweep_windows(mosaic.width, mosaic.height)[: swept["windows_done"]]
    return {
        "train_s": train_s,
        "train_message": job["message"],
        "method": swept.get("method"),
        "sweep_windows_done": swept["windows_done"],
        "sweep_windows": swept["windows"],
        "sweep_seconds": swept["seconds"],
        "first_window_s": swept["first_window_s"],
        "min_score": state.get("minScore"),
        "proposals_shown": len(shown),
        **_unfinished_quality(boxes, [ids[c] for c in labels], truth_of, windows),
        "page_errors": errors,
    }


def _shown(state: dict) -> list[int]:
    """The proposals the page shows (``shownProposals`` of modes/detect.js, no clicks)."""
    r = state["result"]
    per_class = (r.get("min_scores") or {}) if not state.get("minScoreByHand") else {}
    least = [per_class.get(str(c), state["minScore"]) for c in r["labels"]]
    return [i for i, s in enumerate(r["scores"]) if s >= min(1.0, least[i])]


def _unfinished_quality(boxes, names, truth_of, windows) -> dict:
    """Precision and recall at IoU 0.5, class by name, on the pieces of the mosaic cut from
    source images nobody finished (the detector never saw them) inside the swept windows."""
    mosaic, records, objects, done, classes = truth_of
    pieces = [
        (p.at[0], p.at[1], p.at[0] + p.crop[2] - p.crop[0], p.at[1] + p.crop[3] - p.crop[1])
        for p in mosaic.pieces
        if p.record not in done
    ]

    def unseen(box) -> bool:
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        return any(r[0] <= cx < r[2] and r[1] <= cy < r[3] for r in pieces) and any(
            w[0] <= cx < w[2] and w[1] <= cy < w[3] for w in windows
        )

    truths = [o for o in objects if o.record not in done and unseen(o.box)]
    truth_names = [classes[int(records[o.record].objects.labels[o.index])] for o in truths]
    kept = [i for i, b in enumerate(boxes) if unseen(b)]
    tb = np.asarray([o.box for o in truths], np.float64).reshape(-1, 4)
    right = sum(
        1
        for i in kept
        if (same := [k for k, n in enumerate(truth_names) if n == names[i]])
        and _ious(tb[same], boxes[i]).max() >= 0.5
    )
    hit = sum(
        1
        for k, o in enumerate(truths)
        if (same := [i for i in kept if names[i] == truth_names[k]])
        and _ious(boxes[same], o.box).max() >= 0.5
    )
    return {
        "unseen_objects": len(truths),
        "unseen_proposals": len(kept),
        "precision_unseen": round(right / len(kept), 3) if kept else None,
        "recall_unseen": round(hit / len(truths), 3) if truths else None,
    }


def _finish(api, project: dict, mosaic, records, used: list[int], n: int) -> tuple[list[str], set[int]]:
    """Upload ``n`` source images, those not in the mosaic first, with their boxes of the
    project's classes, and mark them done: the project a person has after a few finished
    images."""
    in_mosaic = {p.record for p in mosaic.pieces}
    names, done = [], set()
    for r in sorted(records, key=lambda r: records.index(r) in in_mosaic):
        if len(names) == n:
            break
        with open(r.path, "rb") as f:
            im = api.post(f"/api/projects/{project['id']}/images", files={"file": (r.path.name, f)})
        im = im.raise_for_status().json()
        create = [
            {
                "class_id": project["classes"][used.index(int(c))]["id"],
                "kind": "box",
                "geometry": {"box": [float(v) for v in b]},
            }
            for b, c in zip(r.objects.boxes, r.objects.labels)
            if int(c) in used
        ]
        body = {"revision": im["revision"], "create": create}
        api.post(f"/api/images/{im['id']}/annotations/batch", json=body).raise_for_status()
        api.patch(f"/api/images/{im['id']}", json={"status": "done", "empty": not create}).raise_for_status()
        seen = " (also in the mosaic)" if records.index(r) in in_mosaic else ""
        names.append(f"{r.path.name}: {len(create)} boxes{seen}")
        done.add(records.index(r))
    return names, done


def _sweep(page, centre, seconds: float, shot: Path) -> dict:
    """Follow the page's sweep of the rest of the image for up to ``seconds``, then zoom out
    around the click (1/4 screen pixel a pixel) for the screenshot; the last sweep answer."""
    t = time.perf_counter()
    page.wait_for_function("() => fewclickTest.detect.sweep != null", timeout=120000)
    first_s = None
    while time.perf_counter() - t < seconds:
        s = page.evaluate("() => fewclickTest.detect.sweep")
        if first_s is None and s["windows_done"] > 0:
            first_s = round(time.perf_counter() - t, 2)
        if s["status"] != "running":
            break
        page.wait_for_timeout(2000)
    _open_at(page, centre, 0.25)
    page.screenshot(path=str(shot))
    s = page.evaluate("() => fewclickTest.detect.sweep")
    shown = page.evaluate("() => fewclickTest.detect.result.boxes.length")
    return {
        **s,
        "first_window_s": first_s,
        "followed_s": round(time.perf_counter() - t, 1),
        "proposals_shown": shown,
    }


def _open_at(page, centre, scale: float) -> None:
    page.evaluate(
        """([cx, cy, scale]) => { const {width, height} = fewclickTest.canvas;
        fewclickTest.setView({scale, ox: width / 2 - cx * scale, oy: height / 2 - cy * scale}); }""",
        [*centre, scale],
    )
    page.wait_for_function("() => fewclickTest.tilesReady", timeout=120000)
    page.wait_for_timeout(500)


def _sweep_quality(s: dict, objects: list, records, label: int, clicked, where) -> dict:
    """The sweep's boxes against the clicked class's objects wholly inside the windows it
    swept (but the clicked one): precision and recall at IoU 0.5. ``where``: the image's
    width and height, and the view the page sent (the sweep's order)."""
    width, height, view = where
    boxes = np.asarray(s["boxes"], np.float64).reshape(-1, 4)
    windows = sweep_windows(width, height, tuple(view))[: s["windows_done"]]
    inside = [
        o
        for o in objects
        if int(records[o.record].objects.labels[o.index]) == label
        and o is not clicked
        and any(
            w[0] <= o.box[0] and w[1] <= o.box[1] and o.box[2] <= w[2] and o.box[3] <= w[3] for w in windows
        )
    ]
    hit = [bool(len(boxes)) and _ious(boxes, o.box).max() >= 0.5 for o in inside]
    truths = np.asarray([o.box for o in objects], np.float64).reshape(-1, 4)
    good = [bool(len(truths)) and _ious(truths, b).max() >= 0.5 for b in boxes]
    return {
        "status": s["status"],
        "windows_done": s["windows_done"],
        "windows": s["windows"],
        "seconds": s["seconds"],
        "first_window_s": s["first_window_s"],
        "boxes": len(boxes),
        "proposals_shown": s["proposals_shown"],
        "precision_any_class": round(float(np.mean(good)), 3) if good else None,
        "clicked_class_objects_in_swept_windows": len(inside),
        "recall_clicked_class": round(float(np.mean(hit)), 3) if hit else None,
    }


def _mask(api, server, mosaic, records, classes, out: Path) -> dict:
    """A nucleus of the slide at 2 screen pixels a pixel: a box in Mask mode, accepted."""
    objects = truth(mosaic, records)
    used = _used(objects, records)
    project, image = _project(api, mosaic, [classes[k] for k in used])
    o = _pick(objects, records, used, 20, 60)
    with chromium_page((1400, 900)) as page:
        log_in(page, server.base, USER, PASSWORD)
        return box_to_mask(page, server, image, mosaic, records, o, out / "large_slide_mask.png")


def box_to_mask(page, server, image: dict, mosaic, records, o: Truth, shot: Path) -> dict:
    """The object ``o`` at 2 screen pixels a pixel: a box dragged round it in Mask mode
    (``shot`` taken), the mask accepted; the seconds and the mask's IoU with the object's."""
    centre = ((o.box[0] + o.box[2]) / 2, (o.box[1] + o.box[3]) / 2)
    zoom_s = _open(page, server, image, centre, 2.0)
    page.keyboard.press("m")
    page.wait_for_function("() => fewclickTest.prep && fewclickTest.prep.ready", timeout=120000)
    x0, y0, x1, y1 = o.box[0] - 3, o.box[1] - 3, o.box[2] + 3, o.box[3] + 3
    t = time.perf_counter()
    page.mouse.move(*screen(page, x0, y0))
    page.mouse.down()
    page.mouse.move(*screen(page, x1, y1), steps=6)
    page.mouse.up()
    page.wait_for_function("() => fewclickTest.seg && fewclickTest.seg.result", timeout=120000)
    mask_s = round(time.perf_counter() - t, 2)
    page.wait_for_timeout(400)
    page.screenshot(path=str(shot))
    rle = page.evaluate("() => fewclickTest.seg.result.mask")
    saved = page.evaluate("() => fewclickTest.anns.size")
    page.keyboard.press("Enter")
    page.wait_for_function("(n) => fewclickTest.anns.size > n", arg=saved, timeout=60000)
    r = records[o.record]
    full = segmentation_to_mask(r.objects.segmentations[o.index], r.height, r.width)
    window = large_around(o.box, (mosaic.height, mosaic.width), 8)  # clipped, as rle_window clips
    got, want = rle_window(rle, window), truth_window(o, full, window)
    return {
        "image": [mosaic.width, mosaic.height],
        "object_box": [round(v, 1) for v in o.box],
        "full_zoom_tiles_s": zoom_s,
        "box_to_mask_s": mask_s,
        "mask_size": rle["size"],
        "mask_iou": round(float((got & want).sum() / max((got | want).sum(), 1)), 3),
        "page_errors": list(page.errors),
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--aerial", type=Path, required=True, help="an annotated aerial dataset (the GeoTIFF)")
    p.add_argument("--slide", type=Path, required=True, help="a dataset with masks (the slide)")
    p.add_argument("--work", type=Path, required=True, help="where the mosaics and the server's data go")
    p.add_argument("--out", type=Path, required=True, help="where the screenshots and JSON go")
    p.add_argument(
        "--finished", type=int, default=3, help="source images finished before the GeoTIFF's click"
    )
    p.add_argument("--sweep-seconds", type=float, default=900, help="how long the sweep is followed")
    p.add_argument(
        "--train-minutes",
        type=float,
        default=0,
        help="train on the finished images, then open the GeoTIFF (0: no)",
    )
    return p


if __name__ == "__main__":
    raise SystemExit(main())
