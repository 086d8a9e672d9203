"""Polygon mode (O) used as a person would, in headless Chromium, on a real dataset with
polygon annotations.

    python benchmarks/screenshot_polygon.py --data ../shared/data/coco_tiny --out docs

Starts the real app on SQLite in a temporary folder, makes a project of ``--data`` with its
annotations imported as hidden reference, opens the first image by name that holds an
object of ``--min-area`` pixels or more in one polygon, and outlines the largest vertex by vertex
along the reference polygon (as the campaign's annotator would: simplified at 1 px, more
vertices where quality takes them), closing it with a click on the first vertex. Prints
the vertices clicked and the saved mask's IoU with the reference; writes
``app_polygon_<name>.png`` (the outline half drawn) and ``app_polygon_<name>_done.png``
into ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import httpx
import numpy as np
from _browser import admin_account, chromium_page, log_in, screen, serve_in_thread

from fewclick.io import read_dataset
from fewclick.io.rle import rle_to_mask, segmentation_to_mask
from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url
from fewclick.simulate.annotator import mask_iou, polygon_outlines, required


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    data = read_dataset(args.data)
    record, j = _largest_object(data, args.min_area)
    truth = segmentation_to_mask(record.objects.segmentations[j], record.height, record.width)
    [ring] = polygon_outlines(truth, record.objects.segmentations[j])
    work = Path(tempfile.mkdtemp(prefix="fewclick-polygon-"))
    app = create_app(sqlite_url(work / "fewclick.db"), work, data_roots=[args.data.resolve().parent])
    base, server = serve_in_thread(app)
    login = admin_account(app)
    api = httpx.Client(base_url=base, timeout=300, headers=login[2])
    body = {"name": args.data.name, "dataset": str(args.data.resolve()), "reference": True}
    project = api.post("/api/projects", json=body).raise_for_status().json()["project"]
    images = api.get(f"/api/projects/{project['id']}/images").json()
    image = next(im for im in images if im["file_name"] == Path(record.file_name).name)
    args.out.mkdir(parents=True, exist_ok=True)
    name = args.data.name
    with chromium_page(viewport=(1400, 900)) as page:
        log_in(page, base, *login[:2])
        page.goto(f"{base}/#/image/{image['id']}")
        page.wait_for_function("() => fewclickTest.ready")
        page.locator(f"[data-class='{_class_id(project, record.objects.labels[j])}']").click()
        page.keyboard.press("o")
        for k, (x, y) in enumerate(ring):
            page.mouse.click(*screen(page, x, y))
            if k == len(ring) // 2:
                page.mouse.move(*screen(page, *ring[k + 1]), steps=3)
                page.wait_for_timeout(200)
                page.screenshot(path=str(args.out / f"app_polygon_{name}.png"))
        page.mouse.click(*screen(page, *ring[0]))  # the first vertex: closed
        page.wait_for_function("() => fewclickTest.anns.size === 1", timeout=30000)
        page.wait_for_timeout(300)
        page.screenshot(path=str(args.out / f"app_polygon_{name}_done.png"))
        [saved] = page.evaluate("() => [...fewclickTest.anns.values()]")
        errors = page.errors
    server.should_exit = True
    iou = mask_iou(rle_to_mask(saved["geometry"]["mask"]), truth)
    what = f"{data.classes[int(record.objects.labels[j])]}, {int(truth.sum())} px"
    print(
        f"{record.file_name}: object {j} ({what}) "
        f"outlined with {len(ring)} vertices and a closing click; saved as a {saved['kind']} "
        f"({saved['source']}) at IoU {iou:.3f} with the reference; page errors: {errors or 'none'}"
    )
    return 0


def _largest_object(data, min_area: int):
    for record in sorted(data.images, key=lambda r: r.file_name):
        g = record.objects
        need = [  # one polygon: outlined in one go
            k
            for k in np.flatnonzero(required(g))
            if isinstance(g.segmentations[k], list) and len(g.segmentations[k]) == 1
        ]
        if not need:
            continue
        areas = [(g.boxes[k, 2] - g.boxes[k, 0]) * (g.boxes[k, 3] - g.boxes[k, 1]) for k in need]
        best = int(np.argmax(areas))
        if areas[best] >= min_area:
            return record, int(need[best])
    raise SystemExit(f"no object of {min_area} px or more with a polygon in {data.root}")


def _class_id(project: dict, position) -> int:
    return next(c["id"] for c in project["classes"] if c["position"] == int(position))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, default=Path("docs"))
    p.add_argument("--min-area", type=int, default=4000, help="the object's box area, in pixels")
    return p


if __name__ == "__main__":
    sys.exit(main())
