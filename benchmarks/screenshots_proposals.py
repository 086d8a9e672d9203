"""One click on a fresh project's image, answered from SAM's proposals, in headless Chromium.

    python benchmarks/screenshots_proposals.py --data ../shared/data/dsb2018_nuclei --out docs [--images 3]

Starts the real app on SQLite in a temporary folder, makes a project of ``--data`` with its
annotations imported as hidden reference and nothing finished, and on each of the first
``--images`` images of the test part (every 4th by name, as the benchmarks split), does what a
person does: opens it in Detect mode, waits while the page prepares it (SAM's embedding, then
its proposals, made by the worker), picks the image's most frequent class and clicks once on
its object nearest the centre of that class's objects. Screenshots before and after the
click (``app_proposals_<name>_<i>_before.png`` / ``_after.png`` in ``--out``), and per image:
what answered, the proposals made and shown, seconds from open to proposals ready and from
the click to the boxes on screen, and how many of the class's reference objects the boxes
shown at the page's slider cover at IoU 0.7 and 0.5 (recall) and how many of those boxes are
right (precision), greedily by score as ``lookalikes.py`` counts. With ``--fit``, where the
campaign's person would (:func:`fewclick.simulate.annotator.edge_fit`), one reference box is
drawn over the proposal it picks and E pressed (``_fit.png``), and the same counts are given
after it. With ``--finish`` each image is finished after its click (its reference boxes
become the person's), so that from the second image on the "before" screenshot shows what
the image opens with, and the panel its exemplars.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from _browser import admin_account, chromium_page, log_in, screen, serve_in_thread
from _common import part_names
from _project import finish, reference_objects

from fewclick.metrics.detection import box_iou
from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url
from fewclick.simulate.annotator import edge_fit
from fewclick.types import Objects


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="fewclick-proposals-"))
    app = create_app(sqlite_url(work / "fewclick.db"), work, data_roots=[args.data.resolve().parent])
    base, server = serve_in_thread(app)
    try:
        login = admin_account(app)
        api = httpx.Client(base_url=base, timeout=600, headers=login[2])
        name = args.data.name
        body = {"name": name, "dataset": str(args.data.resolve()), "reference": True}
        project = api.post("/api/projects", json=body).raise_for_status().json()["project"]
        images = api.get(f"/api/projects/{project['id']}/images").json()
        test = set(part_names([im["file_name"] for im in images], "test"))
        targets = sorted((im for im in images if im["file_name"] in test), key=lambda im: im["file_name"])
        args.out.mkdir(parents=True, exist_ok=True)
        with chromium_page(viewport=(1400, 860)) as page:
            log_in(page, base, *login[:2])
            for i, image in enumerate(targets[: args.images]):
                stem = args.out / f"app_proposals_{name}_{i}"
                _one(page, api, app, base, image, stem, project["classes"], args.fit)
                if args.finish:  # the next image opens with the look-alikes of its boxes
                    finish(api, app, image)
    finally:
        server.should_exit = True
    return 0


def _one(page, api: httpx.Client, app, base: str, image: dict, stem: Path, classes: list, fit: bool) -> None:
    reference = reference_objects(app, image["id"])
    labels = np.array([r[0] for r in reference])
    position = int(np.bincount(labels).argmax())
    theirs = np.array([[x, y, x + w, y + h] for c, _, (x, y, w, h) in reference if c == position])
    centres = (theirs[:, :2] + theirs[:, 2:]) / 2
    target = theirs[np.argmin(((centres - centres.mean(0)) ** 2).sum(1))]
    click = ((target[0] + target[2]) / 2, (target[1] + target[3]) / 2)
    opened = time.monotonic()
    page.goto(f"{base}/#/image/{image['id']}")
    page.wait_for_function("() => fewclickTest.ready")
    page.keyboard.press("Escape")
    class_id = next(c["id"] for c in classes if c["position"] == position)
    page.click(f"[data-class='{class_id}']")  # the number keys reach the first 9 classes only
    page.keyboard.press("d")
    while (
        api.post(f"/api/images/{image['id']}/prepare").raise_for_status().json().get("proposals") != "ready"
    ):
        if time.monotonic() - opened > 900:
            raise SystemExit(f"{image['file_name']}: no proposals within 900 s")
        time.sleep(1.0)
    ready = time.monotonic() - opened
    page.wait_for_timeout(300)
    page.screenshot(path=f"{stem}_before.png")
    started = time.perf_counter()
    page.mouse.click(*screen(page, *click))
    page.wait_for_function("() => fewclickTest.detect.answered === 1", timeout=120000)
    seconds = time.perf_counter() - started
    page.wait_for_timeout(300)
    page.screenshot(path=f"{stem}_after.png")
    answer = page.evaluate("() => fewclickTest.detect.result")
    floor = page.evaluate("() => fewclickTest.minScore")
    boxes, scores = np.asarray(answer["boxes"]).reshape(-1, 4), np.asarray(answer["scores"])
    shown = boxes[scores >= min(1.0, floor)]
    said = answer.get("proposals") or {}
    counts = {
        f"{k}{int(t * 100)}": v
        for t in (0.7, 0.5)
        for k, v in zip(("recall", "precision"), _counted(theirs, shown, t))
    }
    print(
        f"{image['file_name']}: {len(theirs)} objects of class {position}; proposals ready "
        f"{ready:.0f} s after open ({said.get('made')} made, {len(said.get('exemplar_boxes') or [])} "
        f"exemplar thumbnails); click answered by {answer['method']} "
        f"in {seconds:.2f} s, {len(shown)} boxes shown at score >= {floor:.2f}: "
        + ", ".join(f"{k} {v:.2f}" for k, v in counts.items()),
        flush=True,
    )
    if fit:
        _fit(page, theirs, shown, scores[scores >= min(1.0, floor)], position, stem)
    page.keyboard.press("Escape")


def _fit(page, theirs: np.ndarray, shown: np.ndarray, scores: np.ndarray, position: int, stem: Path) -> None:
    """Where the campaign's person would: the reference box drawn over the proposal
    :func:`edge_fit` picks, then E; the boxes shown then, counted as before."""
    labels = np.full(len(shown), position)
    choice = edge_fit(Objects(np.full(len(theirs), position), theirs), shown, labels, scores, position)
    if choice is None:
        print("  no edge fit: drawing one box and E would not leave fewer interactions", flush=True)
        return
    x0, y0, x1, y1 = choice.box.tolist()
    page.mouse.move(*screen(page, x0, y0))
    page.mouse.down()
    page.mouse.move(*screen(page, x1, y1), steps=5)
    page.mouse.up()
    page.wait_for_function("() => fewclickTest.detect.drawn.length === 1")
    page.keyboard.press("e")
    page.wait_for_function("() => fewclickTest.detect.fitted.size === 1")
    page.wait_for_timeout(300)
    page.screenshot(path=f"{stem}_fit.png")
    moved = page.evaluate(
        "() => fewclickTest.shownProposals().map((i) => fewclickTest.detect.result.boxes[i])"
    )
    drawn = page.evaluate("() => fewclickTest.detect.drawn[0].to")
    boxes = np.asarray([drawn, *moved], np.float32).reshape(-1, 4)
    counts = [
        f"{k}{int(t * 100)} {v:.2f}"
        for t in (0.7, 0.5)
        for k, v in zip(("recall", "precision"), _counted(theirs, boxes, t))
    ]
    print(f"  after one box drawn over a proposal and E: {', '.join(counts)}", flush=True)


def _counted(objects: np.ndarray, boxes: np.ndarray, iou: float) -> tuple[float, float]:
    """(recall, precision) of ``boxes`` (in score order) against ``objects`` at ``iou``."""
    if not len(boxes):
        return 0.0, 0.0
    overlap, free, right = box_iou(boxes, objects), np.ones(len(objects), bool), 0
    for row in overlap:
        j = int(np.where(free, row, -1.0).argmax())
        if free[j] and row[j] >= iou:
            free[j], right = False, right + 1
    return right / len(objects), right / len(boxes)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, default=Path("docs"))
    p.add_argument("--images", type=int, default=3, help="how many test-part images to click on")
    p.add_argument(
        "--fit",
        action="store_true",
        help="after the click, one box drawn over a proposal and E, where that leaves less work",
    )
    p.add_argument(
        "--finish",
        action="store_true",
        help="finish each image after its click (the next opens with proposals)",
    )
    return p


if __name__ == "__main__":
    sys.exit(main())
