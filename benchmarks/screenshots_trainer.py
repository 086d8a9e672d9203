"""A new user's walk through a project with the background trainer, in headless Chromium:
what opens on a new image, and what one click adds, after 2, 5 and 10 finished images.

    python benchmarks/screenshots_trainer.py --data ../shared/data/hit_uav --work DIR
        --out docs/benchmarks [--at 2 5 10] [--part test]

Runs ``fewclick serve`` (SQLite in ``--work``), makes a project of ``--data`` with its
annotations as hidden reference, and goes through the images of ``--part`` (every 4th
image by name is test, as in ``campaign.py``) that hold objects. Each is opened (prepared,
as the page does) and finished with its reference boxes, as a person leaves it. After the
2nd the background trainer starts ("Keep training"). After each count in ``--at`` the walk
waits for a round that trained on the images finished so far and opens the next image: a
screenshot of what opens (``trainer_<data>_<n>_open.png``), then one click at the centre of
the biggest object nothing shown boxes at IoU 0.5 (with its class picked) and another
screenshot (``trainer_<data>_<n>_click.png``). Writes ``trainer_<data>.json``: per stop
the detector serving, the trainer's newest round, the proposals on open and the objects
they box (IoU >= 0.5 and >= 0.7), the same after the click, the clicked object's best IoU,
the classes whose SAM boxes were fitted and the seconds to each answer.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from _browser import chromium_page, log_in, screen
from _common import part_names
from _walk import finish, project_truth, reference_project, wait_for_round, with_server

from fewclick.metrics.detection import box_iou

USER, PASSWORD = "walker", "a walk through the images"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    stops = with_server(args.work / "app", args.data, lambda server: _walk(server, args))
    path = args.out / f"trainer_{args.data.name}.json"
    path.write_text(json.dumps(stops, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


def _walk(server, args) -> list[dict]:
    api, project = reference_project(server, args.data, f"{args.data.name} walk", (USER, PASSWORD))
    pid = project["id"]
    truth, images, cls = project_truth(api, project, args.data)
    names = part_names(list(truth), args.part)
    order = [images[n] for n in names if n in images and len(truth[n])]
    stops, last = [], max(args.at)
    if len(order) <= last:
        raise SystemExit(
            f"{args.data} has {len(order)} images with objects in its {args.part} part; --at needs {last + 1}"
        )
    with chromium_page((1400, 900)) as page:
        log_in(page, server.base, USER, PASSWORD)
        for n, image in enumerate(order[:last], start=1):
            finish(api, image, truth[image["file_name"]], cls)
            if n == 2:
                api.post(f"/api/projects/{pid}/trainer", json={"action": "start"}).raise_for_status()
            if n in args.at:
                round_ = wait_for_round(server.data, pid, n, args.timeout)
                nxt = order[n]
                stop = _look(page, server, api, pid, nxt, truth[nxt["file_name"]], cls, n, args)
                stop["round"] = round_
                stops.append(stop)
                print(json.dumps({k: v for k, v in stop.items() if k != "round"}), flush=True)
    return stops


def _look(page, server, api, pid, image, gt, cls, finished: int, args) -> dict:
    detector = api.get(f"/api/projects/{pid}").json()["detector"]
    page.goto(f"{server.base}/#/image/{image['id']}")
    page.wait_for_function(f"() => fewclickTest.ready && fewclickTest.image.id === {image['id']}")
    started = time.monotonic()
    if detector and detector["method"] != "training-free":  # proposals on open
        page.wait_for_function("() => fewclickTest.detect.result", timeout=300000)
    opened = time.monotonic() - started
    page.wait_for_timeout(500)
    stem = f"trainer_{args.data.name}_{finished}"
    page.screenshot(path=str(args.out / f"{stem}_open.png"))
    shown = _shown(page)
    found = _matched(gt, shown, 0.5)
    area = (gt.boxes[:, 2] - gt.boxes[:, 0]) * (gt.boxes[:, 3] - gt.boxes[:, 1])
    missing = [j for j in range(len(gt)) if j not in found]
    j = max(missing, key=lambda k: area[k]) if missing else int(np.argmax(area))
    page.click(f'[data-class="{cls[int(gt.labels[j])]}"]')  # its class, as a person picks it
    before = page.evaluate("() => fewclickTest.detect.answered ?? 0")
    x0, y0, x1, y1 = gt.boxes[j].tolist()
    started = time.monotonic()
    page.mouse.click(*screen(page, (x0 + x1) / 2, (y0 + y1) / 2))
    page.wait_for_function(
        f"() => fewclickTest.detect.answered === {before + 1} && fewclickTest.detect.result", timeout=300000
    )
    clicked = time.monotonic() - started
    page.wait_for_timeout(500)
    page.screenshot(path=str(args.out / f"{stem}_click.png"))
    after = _shown(page)
    iou = box_iou(gt.boxes[j : j + 1], after) if len(after) else np.zeros((1, 0))
    return {
        "finished": finished,
        "image": image["file_name"],
        "objects": len(gt),
        "detector": None if detector is None else f"v{detector['version']} {detector['method']}",
        "open_seconds": round(opened, 2),
        "proposals_on_open": len(shown),
        "boxed_on_open": {"0.5": len(found), "0.7": len(_matched(gt, shown, 0.7))},
        "click_seconds": round(clicked, 2),
        "proposals_after_click": len(after),
        "boxed_after_click": {"0.5": len(_matched(gt, after, 0.5)), "0.7": len(_matched(gt, after, 0.7))},
        "clicked_box_iou": round(float(iou.max()) if iou.size else 0.0, 3),
        "fitted_classes": page.evaluate("() => fewclickTest.detect.result.fitted_classes ?? []"),
        "message": page.inner_text("#message"),
    }


def _shown(page) -> np.ndarray:
    boxes = page.evaluate(
        "() => fewclickTest.shownProposals().map((i) => fewclickTest.detect.result.boxes[i])"
    )
    return np.array(boxes, np.float32).reshape(-1, 4)


def _matched(gt, boxes: np.ndarray, at: float) -> set[int]:
    """The objects boxed one-to-one at IoU >= ``at`` (greedily by IoU; classes not checked)."""
    if not len(boxes):
        return set()
    iou = box_iou(gt.boxes, boxes)
    found, used = set(), set()
    for flat in np.argsort(-iou, axis=None):
        g, p = np.unravel_index(flat, iou.shape)
        if iou[g, p] < at:
            break
        if g not in found and p not in used:
            found.add(int(g))
            used.add(int(p))
    return found


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--work", required=True, type=Path, help="the app's folder (database, models, embeddings)")
    p.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    p.add_argument("--at", type=int, nargs="+", default=[2, 5, 10], help="after how many finished images")
    p.add_argument("--part", choices=["test", "train"], default="test")
    p.add_argument("--timeout", type=float, default=2400, help="seconds to wait for a round at each stop")
    return p


if __name__ == "__main__":
    sys.exit(main())
