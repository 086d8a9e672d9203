"""Large images as a person sees them, in headless Chromium: a click on a 16000 x 16000
GeoTIFF and a mask on a 40000 x 30000 slide, both at full zoom.

    python benchmarks/screenshots_large.py --aerial ../shared/data/dota_samples \\
        --slide ../shared/data/dsb2018_nuclei --work DIR --out DIR

Builds (or reuses) ``benchmarks/large.py``'s GeoTIFF mosaic of ``--aerial`` and slide mosaic
of ``--slide`` under ``--work``, runs ``fewclick serve`` with a project of each, and in the
page: the GeoTIFF's overview (``large_geotiff_overview.png``), then at full resolution on
an object, one click in Detect mode (``large_geotiff_click.png``); the slide zoomed to 2
screen pixels a pixel on a nucleus, a box dragged in Mask mode (``large_slide_mask.png``),
the mask accepted. Writes ``large_walk.json``: seconds per step, the proposals and the
clicked object's best IoU, the mask's IoU with the nucleus's.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from pathlib import Path

import httpx
import numpy as np
from _browser import chromium_page, log_in, screen
from _server import ServerProcess
from large import Truth, _ious, build, truth, truth_window
from large import _around as large_around

from fewclick.io import read_dataset
from fewclick.io.rle import rle_window, segmentation_to_mask

USER, PASSWORD = "surveyor", "large images at full zoom"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    aerial, slide = read_dataset(args.aerial), read_dataset(args.slide)
    a_records = [r for r in aerial.images if r.path is not None and len(r.objects)]
    s_records = [r for r in slide.images if r.path is not None and len(r.objects)]
    geotiff, _ = build("geotiff", a_records, args.work / "aerial")
    wsi, _ = build("slide", s_records, args.work / "slide")
    data = args.work / "server"
    shutil.rmtree(data, ignore_errors=True)
    server = ServerProcess(data, data_roots=[geotiff.path.parent, wsi.path.parent])
    server.start()
    try:
        api = httpx.Client(
            base_url=server.base, headers=server.add_user(USER, "admin", PASSWORD), timeout=600
        )
        seen = {
            "geotiff": _click(api, server, geotiff, a_records, aerial.classes, args.out),
            "slide": _mask(api, server, wsi, s_records, slide.classes, args.out),
        }
    finally:
        server.stop()
    path = args.out / "large_walk.json"
    path.write_text(json.dumps(seen, indent=1) + "\n")
    print(json.dumps(seen, indent=1))
    print(f"wrote {path}")
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


def _click(api, server, mosaic, records, classes, out: Path) -> dict:
    """The GeoTIFF's overview, then one click in Detect mode on an object at full zoom."""
    objects = truth(mosaic, records)
    used = _used(objects, records)
    project, image = _project(api, mosaic, [classes[k] for k in used])
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
        t = time.perf_counter()
        page.mouse.click(*screen(page, *centre))
        page.wait_for_function("() => fewclickTest.detect.answered === 1", timeout=120000)
        click_s = round(time.perf_counter() - t, 2)
        page.wait_for_timeout(400)
        page.screenshot(path=str(out / "large_geotiff_click.png"))
        result = page.evaluate("() => fewclickTest.detect.result")
        errors = list(page.errors)
    boxes = np.asarray(result["boxes"], np.float64).reshape(-1, 4)
    return {
        "image": [mosaic.width, mosaic.height],
        "class": classes[label],
        "object_box": [round(v, 1) for v in o.box],
        "overview_s": overview_s,
        "full_zoom_tiles_s": zoom_s,
        "click_to_boxes_s": click_s,
        "method": result.get("method"),
        "proposals": len(boxes),
        "clicked_object_iou": round(float(_ious(boxes, o.box).max()), 3) if len(boxes) else 0.0,
        "page_errors": errors,
    }


def _mask(api, server, mosaic, records, classes, out: Path) -> dict:
    """A nucleus of the slide at 2 screen pixels a pixel: a box in Mask mode, accepted."""
    objects = truth(mosaic, records)
    used = _used(objects, records)
    project, image = _project(api, mosaic, [classes[k] for k in used])
    o = _pick(objects, records, used, 20, 60)
    centre = ((o.box[0] + o.box[2]) / 2, (o.box[1] + o.box[3]) / 2)
    with chromium_page((1400, 900)) as page:
        log_in(page, server.base, USER, PASSWORD)
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
        page.screenshot(path=str(out / "large_slide_mask.png"))
        rle = page.evaluate("() => fewclickTest.seg.result.mask")
        page.keyboard.press("Enter")
        page.wait_for_function("() => fewclickTest.anns.size > 0", timeout=60000)
        errors = list(page.errors)
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
        "page_errors": errors,
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--aerial", type=Path, required=True, help="an annotated aerial dataset (the GeoTIFF)")
    p.add_argument("--slide", type=Path, required=True, help="a dataset with masks (the slide)")
    p.add_argument("--work", type=Path, required=True, help="where the mosaics and the server's data go")
    p.add_argument("--out", type=Path, required=True, help="where the screenshots and JSON go")
    return p


if __name__ == "__main__":
    raise SystemExit(main())
