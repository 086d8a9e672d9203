"""The project page's "Pre-annotate new images", used as a new user would, in headless Chromium.

    python benchmarks/screenshot_preannotate.py --data ../shared/data/bccd --images 12 --finish 4 \
        --minutes 1 --out out/shots

Starts the real app on SQLite in a temporary folder with a project of ``--data`` (its
annotations imported only as hidden reference), keeps the first ``--images`` images,
finishes ``--finish`` of them with their reference boxes, trains for ``--minutes``, then
presses "Pre-annotate new images" on the project page and waits for the job. Prints the job's
message and how the pre-annotated boxes match the hidden reference (IoU >= 0.5, one to one,
greedy by score); writes ``app_preannotate_project.png`` (the page after the job) and
``app_preannotate_image.png`` (the first pre-annotated image open in the annotation page).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import httpx
import numpy as np
from _browser import admin_account, chromium_page, log_in, serve_in_thread
from _project import finish, keep_first, reference_objects, wait_for_jobs

from fewclick.metrics.detection import box_iou
from fewclick.server.app import create_app
from fewclick.server.db import Annotation, sqlite_url


def _matched(boxes: np.ndarray, scores: np.ndarray, reference: np.ndarray) -> int:
    """Pre-annotated boxes that match a reference box at IoU >= 0.5, one to one, best score first."""
    if not len(boxes) or not len(reference):
        return 0
    iou = box_iou(boxes[np.argsort(-scores)], reference)
    taken = np.zeros(len(reference), bool)
    hits = 0
    for row in iou:
        row = np.where(taken, 0.0, row)
        if row.max() >= 0.5:
            taken[row.argmax()] = True
            hits += 1
    return hits


def _scored(app, images: list[dict]) -> dict | None:
    """Print how the pre-annotated boxes of ``images`` match their reference boxes; the first
    image with a pre-annotated box (None: none has one)."""
    found = kept = matched = 0
    first = None
    for image in images:
        with app.state.sessions() as session:
            rows = session.query(Annotation).filter_by(image_id=image["id"], source="preannotate").all()
            boxes = np.array([a.geometry["box"] for a in rows], np.float32).reshape(-1, 4)
            scores = np.array([a.score for a in rows], np.float32)
        ref = reference_objects(app, image["id"])
        gt = np.array([[x, y, x + w, y + h] for _, _, (x, y, w, h) in ref], np.float32).reshape(-1, 4)
        found, kept = found + len(boxes), kept + len(gt)
        matched += _matched(boxes, scores, gt)
        first = first or (image if len(boxes) else None)
    print(
        f"pre-annotated {len(images)} images: {found} boxes, {matched} match one of the "
        f"{kept} reference boxes at IoU >= 0.5 (precision {matched / max(found, 1):.2f}, "
        f"recall {matched / max(kept, 1):.2f})"
    )
    return first


def main(argv: list[str] | None = None) -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--finish", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--out", type=Path, required=True, help="folder for the screenshots")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fewclick-preannotate-"))
    app = create_app(sqlite_url(work / "fewclick.db"), work, data_roots=[args.data.resolve().parent])
    base, server = serve_in_thread(app, timeout=60)
    login = admin_account(app)
    api = httpx.Client(base_url=base, timeout=600, headers=login[2])
    body = {"name": args.data.name, "dataset": str(args.data.resolve()), "reference": True}
    pid = api.post("/api/projects", json=body).raise_for_status().json()["project"]["id"]
    keep_first(app, pid, args.images)
    api.patch(f"/api/projects/{pid}", json={"auto_train_every": 0, "queue_train_every": 0}).raise_for_status()
    images = api.get(f"/api/projects/{pid}/images").json()
    for image in images[: args.finish]:
        finish(api, app, image)
    api.post(f"/api/projects/{pid}/train", json={"minutes": args.minutes}).raise_for_status()
    wait_for_jobs(api, pid)
    with chromium_page(viewport=(1400, 900)) as page:
        log_in(page, base, *login[:2])
        page.goto(f"{base}/#/project/{pid}")
        page.wait_for_selector("#preannotate:not([disabled])")
        page.click("#preannotate")
        page.wait_for_function(
            "() => /boxes on|failed|nothing/.test(document.querySelector('#job')?.textContent ?? '')",
            timeout=1_800_000,
        )
        page.wait_for_timeout(1500)  # the page reloads its image table when the job ends
        page.screenshot(path=str(args.out / "app_preannotate_project.png"), full_page=True)
        print("job:", page.inner_text("#job"))
        first = _scored(app, images[args.finish :])
        if first is not None:
            page.goto(f"{base}/#/image/{first['id']}")
            page.wait_for_function("() => fewclickTest.ready")
            page.wait_for_timeout(800)
            page.screenshot(path=str(args.out / "app_preannotate_image.png"))
            print("image page:", first["file_name"], page.inner_text("#counts"))
        print("page errors:", page.errors)
    server.should_exit = True
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
