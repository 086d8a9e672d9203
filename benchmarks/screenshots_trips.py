"""A new user's start, in headless Chromium (issue 53): an empty project, images uploaded
through its page, one click on the first image, one proposal rejected.

    python benchmarks/screenshots_trips.py --data ../shared/data/hit_uav --out docs [--images 10]

Starts the real app on SQLite in a temporary folder (its model worker too), makes an empty
project of ``--data``'s classes, uploads the first ``--images`` images of the test part (every
4th by name) with the page's file picker, opens the first, waits while the page prepares it
(SAM's embedding and proposals), clicks once on the object of its most frequent class nearest
the centre of that class's objects, and right-clicks the shown proposal of that class that
matches no object at IoU 0.5 (else the lowest scored). Screenshots: ``app_trips_upload.png``,
``app_trips_click.png``, ``app_trips_rejected.png`` in ``--out``; the seconds and counts are
printed and written to ``--out``/``app_trips.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from _browser import admin_account, chromium_page, log_in, screen, serve_in_thread
from _common import load_average, part_names, run_record

from fewclick.io import read_dataset
from fewclick.metrics.detection import box_iou
from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--images", type=int, default=10)
    args = parser.parse_args(argv)
    data = read_dataset(args.data)
    test = set(part_names([r.file_name for r in data.images], "test"))
    records = sorted((r for r in data.images if r.file_name in test), key=lambda r: r.file_name)[
        : args.images
    ]
    work = Path(tempfile.mkdtemp(prefix="fewclick-trips-"))
    app = create_app(sqlite_url(work / "fewclick.db"), work, data_roots=[args.data.resolve().parent])
    base, server = serve_in_thread(app)
    report = run_record("load_average_start")
    try:
        login = admin_account(app)
        api = httpx.Client(base_url=base, timeout=600, headers=login[2])
        body = {"name": args.data.name, "classes": data.classes}
        project = api.post("/api/projects", json=body).raise_for_status().json()["project"]
        args.out.mkdir(parents=True, exist_ok=True)
        with chromium_page(viewport=(1400, 860)) as page:
            log_in(page, base, *login[:2])
            report.update(_walk(page, base, api, project, records, data.classes, args.out))
    finally:
        server.should_exit = True
    report["load_average_end"] = load_average()
    (args.out / "app_trips.json").write_text(json.dumps(report, indent=1))
    print(report)
    return 0


def _walk(page, base: str, api, project: dict, records: list, classes: list[str], out: Path) -> dict:
    page.goto(f"{base}/#/project/{project['id']}")
    page.wait_for_selector("#upload-files", state="attached")
    started = time.perf_counter()
    page.set_input_files("#upload-files", [str(r.path) for r in records])
    n = len(records)
    page.wait_for_function(
        f"() => document.querySelectorAll('#uploads li[class]').length === {n}", timeout=600000
    )
    uploaded = time.perf_counter() - started
    page.locator("#uploads").scroll_into_view_if_needed()  # the files' answers, under the page's fold
    page.screenshot(path=str(out / "app_trips_upload.png"))
    images = api.get(f"/api/projects/{project['id']}/images").json()
    first = images[0]
    record = next(r for r in records if Path(r.file_name).name == first["file_name"])
    started = time.perf_counter()
    page.goto(f"{base}/#/image/{first['id']}")
    page.wait_for_function(
        "() => fewclickTest.ready && fewclickTest.prep && fewclickTest.prep.ready", timeout=600000
    )
    page.wait_for_function("() => fewclickTest.prep.proposals !== 'making'", timeout=900000, polling=1000)
    prepared = time.perf_counter() - started
    gt = record.objects
    cls = int(np.bincount(gt.labels).argmax())
    mine = gt.boxes[gt.labels == cls]
    centres = (mine[:, :2] + mine[:, 2:]) / 2
    x, y = centres[np.argmin(np.hypot(*(centres - centres.mean(0)).T))]
    class_id = next(c["id"] for c in project["classes"] if c["name"] == classes[cls])
    page.evaluate(f"() => document.querySelector('[data-class=\"{class_id}\"]').click()")
    started = time.perf_counter()
    page.mouse.click(*screen(page, float(x), float(y)))
    page.wait_for_function("() => fewclickTest.detect.answered === 1", timeout=600000)
    clicked = time.perf_counter() - started
    page.screenshot(path=str(out / "app_trips_click.png"))
    state = page.evaluate("() => ({r: fewclickTest.detect.result, shown: fewclickTest.shownProposals()})")
    shown = [i for i in state["shown"] if state["r"]["labels"][i] == class_id]
    boxes = np.array([state["r"]["boxes"][i] for i in shown], np.float32).reshape(-1, 4)
    wrong = [i for i, v in zip(shown, box_iou(boxes, mine).max(1) if len(mine) else []) if v < 0.5]
    target = wrong[0] if wrong else (min(shown, key=lambda i: state["r"]["scores"][i]) if shown else None)
    rejected = None
    if target is not None:
        b = state["r"]["boxes"][target]
        page.mouse.click(*screen(page, (b[0] + b[2]) / 2, (b[1] + b[3]) / 2), button="right")
        page.wait_for_timeout(300)
        rejected = {"box": b, "matched_no_object": bool(wrong)}
        page.screenshot(path=str(out / "app_trips_rejected.png"))
    return {
        "uploaded": n,
        "upload_seconds": round(uploaded, 1),
        "in_project": len(images),
        "open_to_proposals_seconds": round(prepared, 1),
        "click_seconds": round(clicked, 2),
        "shown_after_click": len(shown),
        "objects_of_class": int(len(mine)),
        "rejected": rejected,
        "shown_after_reject": page.evaluate("() => fewclickTest.shownProposals().length"),
        "message": page.inner_text("#message"),
        "boxes_from": page.inner_text("#boxes-from"),
        "page_errors": list(page.errors),
    }


if __name__ == "__main__":
    raise SystemExit(main())
