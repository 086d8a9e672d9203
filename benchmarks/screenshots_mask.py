"""Mask mode as a person sees it, in headless Chromium: Tab through SAM's candidates on an
ambiguous box, and the brush finishing a mask that clicks could not.

    python benchmarks/screenshots_mask.py --data ../shared/data/coco_tiny --work DIR --out DIR [--part test]

Runs ``fewclick serve`` (SQLite in ``--work``) with a project of ``--data`` (annotations as
hidden reference). Through the API it looks, image by image of ``--part``, for the first
object whose box alone is ambiguous (a candidate other than the one served is at least 0.1
of IoU closer to the object) and the first whose clicks stall below IoU 0.85 but brush
strokes get there (the campaign's simulated person, ``benchmarks/campaign.py``). Then it
does both in the page as a person would: the box dragged, Tab pressed (a screenshot per
candidate: ``mask_tab_<k>.png``), and for the second the clicks, A, the brush sizes and the
strokes (``mask_brush_before.png``, ``mask_brush_after.png``). Writes ``mask_walk.json``
with the IoUs seen.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from _browser import chromium_page, log_in, screen, zoom_onto
from _common import part_names
from _walk import prepared, reference_project, with_server

from fewclick.brush import apply_strokes
from fewclick.io import read_dataset
from fewclick.io.rle import objects_masks, rle_to_mask
from fewclick.simulate.annotator import MASK_IOU, clicks_stalled, mask_iou, required
from fewclick.simulate.brush import page_radius, strokes_to_fix
from fewclick.simulate.corrective import ritm_next_click
from fewclick.types import Clicks

USER, PASSWORD = "masker", "masks that finish"
PAGE_SIZES = [1, 2, 4, 8, 16, 32]  # the page's brush radii (static/js/modes/mask.js)
BRUSH_MIN_AREA = 3000  # px: an object the brush screenshot can show


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    seen = with_server(args.work / "app", args.data, lambda server: _walk(server, args))
    path = args.out / "mask_walk.json"
    path.write_text(json.dumps(seen, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


def _walk(server, args) -> dict:
    api, project = reference_project(server, args.data, f"{args.data.name} masks", (USER, PASSWORD))
    pid = project["id"]
    data = read_dataset(args.data)
    records = {r.file_name: r for r in data.images}
    images = {im["file_name"]: im for im in api.get(f"/api/projects/{pid}/images").json()}
    tab = brush = None
    for name in part_names(list(records), args.part):
        if name not in images or (tab and brush):
            continue
        rec, image = records[name], images[name]
        prepared(api, image)
        masks = objects_masks(rec.objects, rec.height, rec.width)
        for j in np.flatnonzero(required(rec.objects)):
            truth = masks[j]
            if truth.sum() < 400:
                continue
            found = _plan(api, image, truth)
            if tab is None and found["tab_gain"] >= 0.1:
                tab = {"image": image, "object": int(j), **found}
            if brush is None and found["strokes"] and truth.sum() >= BRUSH_MIN_AREA:
                brush = {"image": image, "object": int(j), **found}
    if tab is None or brush is None:
        raise SystemExit(f"{args.data}: no ambiguous box or no object for the brush in its {args.part} part")
    with chromium_page((1400, 900)) as page:
        log_in(page, server.base, USER, PASSWORD)
        shown = _tab_in_page(page, server, tab, args.out)
        painted = _brush_in_page(page, server, brush, args.out)
    keep = ("box", "ious", "tab_gain", "clicks", "click_ious")
    return {
        "tab": {"file_name": tab["image"]["file_name"], **{k: tab[k] for k in keep}, "page_ious": shown},
        "brush": {
            "file_name": brush["image"]["file_name"],
            **{k: brush[k] for k in keep},
            "strokes": len(brush["strokes"]),
            **painted,
        },
    }


def _plan(api, image: dict, truth: np.ndarray) -> dict:
    """What the campaign's person does with this object through the API: the candidates'
    IoUs after the box, the clicks until they stall and the strokes that finish it."""
    ys, xs = np.nonzero(truth)
    box = [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
    out = api.post(f"/api/images/{image['id']}/segment", json={"box": box}).raise_for_status().json()
    ious = [mask_iou(rle_to_mask(c["mask"]), truth) for c in out["candidates"] or [out]]
    clicks, pred = [], rle_to_mask(out["mask"])
    trail = [mask_iou(pred, truth)]
    while trail[-1] < MASK_IOU and len(clicks) < 20 and not clicks_stalled(trail):
        done = Clicks(np.array([c[:2] for c in clicks], np.float32).reshape(-1, 2), np.zeros(len(clicks)),
                      [c[2] for c in clicks])  # fmt: skip
        nxt = ritm_next_click(truth, pred, clicked=done)
        if nxt is None:
            break
        clicks.append([nxt.x, nxt.y, bool(nxt.positive)])
        body = {"box": box, "clicks": clicks}
        pred = rle_to_mask(
            api.post(f"/api/images/{image['id']}/segment", json=body).raise_for_status().json()["mask"]
        )
        trail.append(mask_iou(pred, truth))
    strokes = []
    if trail[-1] < MASK_IOU and clicks:
        strokes = strokes_to_fix(truth, pred, MASK_IOU)
        if not strokes or mask_iou(apply_strokes(pred, strokes), truth) < MASK_IOU or len(strokes) > 6:
            strokes = []
    return {
        "box": box,
        "ious": [round(v, 3) for v in ious],
        "tab_gain": max(ious) - ious[0],
        "clicks": clicks,
        "click_ious": [round(v, 3) for v in trail],
        "strokes": strokes,
        "truth": truth,
    }


def _open(page, server, image: dict, box: list[float]) -> None:
    """The image in mask mode, zoomed (as with the wheel) onto ``box`` and its surroundings."""
    page.goto(f"{server.base}/#/image/{image['id']}")
    page.wait_for_function("() => fewclickTest.ready")
    page.keyboard.press("m")
    page.wait_for_function("() => fewclickTest.prep && fewclickTest.prep.ready", timeout=300000)
    zoom_onto(page, box)


def _drag(page, points) -> None:
    page.mouse.move(*screen(page, *points[0]))
    page.mouse.down()
    for p in points[1:] or points:
        page.mouse.move(*screen(page, *p), steps=4)
    page.mouse.up()


def _tab_in_page(page, server, found: dict, out: Path) -> list[float]:
    """Drag the box, then Tab through the candidates: a screenshot and the IoU of each."""
    _open(page, server, found["image"], found["box"])
    x0, y0, x1, y1 = found["box"]
    _drag(page, [(x0, y0), (x1, y1)])
    page.wait_for_function("() => fewclickTest.seg && fewclickTest.seg.result", timeout=60000)
    ious = []
    for k in range(len(found["ious"])):
        page.screenshot(path=str(out / f"mask_tab_{k + 1}.png"))
        rle = page.evaluate(
            "() => { const s = fewclickTest.seg; return (s.result.candidates[s.shown] || s.result).mask; }"
        )
        ious.append(round(mask_iou(rle_to_mask(rle), found["truth"]), 3))
        page.keyboard.press("Tab")
    page.keyboard.press("Escape")
    return ious


def _brush_in_page(page, server, found: dict, out: Path) -> dict:
    """The box and the clicks, then the strokes with the brush and eraser; Enter."""
    _open(page, server, found["image"], found["box"])
    x0, y0, x1, y1 = found["box"]
    _drag(page, [(x0, y0), (x1, y1)])
    page.wait_for_function("() => fewclickTest.seg && fewclickTest.seg.result", timeout=60000)
    for i, (x, y, positive) in enumerate(found["clicks"]):
        page.mouse.click(*screen(page, x, y), button="left" if positive else "right")
        page.wait_for_function(f"() => fewclickTest.seg.answered === {i + 1}", timeout=60000)
    page.wait_for_timeout(500)
    before = mask_iou(rle_to_mask(page.evaluate("() => fewclickTest.seg.result.mask")), found["truth"])
    page.screenshot(path=str(out / "mask_brush_before.png"))
    size, tool = PAGE_SIZES.index(page_radius(found["box"])), None
    for n, stroke in enumerate(found["strokes"], start=1):
        if stroke.add != tool:
            page.keyboard.press("a" if stroke.add else "e")
            tool = stroke.add
        target = PAGE_SIZES.index(int(stroke.radius))
        for _ in range(abs(target - size)):
            page.keyboard.press("]" if target > size else "[")
        size = target
        _drag(page, [tuple(p) for p in stroke.points.tolist()])
        page.wait_for_function(f"() => fewclickTest.seg.answeredStrokes === {n}", timeout=60000)
    page.wait_for_timeout(800)
    after = mask_iou(rle_to_mask(page.evaluate("() => fewclickTest.seg.result.mask")), found["truth"])
    page.screenshot(path=str(out / "mask_brush_after.png"))
    page.keyboard.press("Enter")
    return {"page_iou_before_brush": round(before, 3), "page_iou_after_brush": round(after, 3)}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="a dataset with masks")
    p.add_argument("--work", type=Path, required=True, help="where the server's database and files go")
    p.add_argument("--out", type=Path, required=True, help="where the screenshots and JSON go")
    p.add_argument("--part", choices=("test", "train"), default="test")
    return p


if __name__ == "__main__":
    raise SystemExit(main())
