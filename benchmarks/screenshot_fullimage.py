"""A COCO panoptic image annotated end to end in the app's full-image mode, in headless
Chromium, and screenshots of it.

    python benchmarks/screenshot_fullimage.py --data ../shared/data/coco_panoptic_sample --out out/shots

Imports the sample into a new project through the API (its labels as reference, so the
image opens with no work on it and with all 133 classes), opens 000000142238.jpg, switches
to full-image mode (G) and, as an annotator would, picks each region's class in the class
list and clicks its 4 extreme points: the stuff regions (tree, sky, grass), the sports
ball and the persons of over 2000 pixels that are not a crowd. Extreme points and
scribbles are simulated from the panoptic ground truth (DEXTR's extreme points, the
paper's scribbles: the free allocation's largest errors first); a scribble is drawn only
when it starts inside the region it extends on the page's current map, as the page asks.
Writes ``NAME_regions.png`` (the regions and their list, before Enter) and ``NAME.png``
(after Enter: the regions saved as masks), ``NAME`` from ``--name``; with ``--model`` the
app serves that trained full-image model instead of SAM competition, and prints
the region mIoU against the ground truth after the extreme points and after each scribble.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import cv2
import httpx
import numpy as np
from _browser import admin_account, chromium_page, log_in, screen, serve_in_thread

from fewclick.io.rle import rle_to_mask
from fewclick.protocols.fullimage import region_miou
from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url
from fewclick.simulate.allocation import allocate_scribbles
from fewclick.simulate.extreme import extreme_points

IMAGE = "000000142238.jpg"
MIN_PERSON = 2000  # pixels


def _regions(data: Path) -> tuple[list[dict], np.ndarray]:
    """The regions to annotate (``name``, ``mask``) and the ground truth as a region map
    (-1 where no chosen region is: the small persons, the crowd, the unlabelled)."""
    sample = data / "sample_data"
    panoptic = json.loads((sample / "panoptic_examples.json").read_text())
    names = {c["id"]: (c["name"], c["isthing"]) for c in panoptic["categories"]}
    ann = next(a for a in panoptic["annotations"] if a["file_name"] == IMAGE.replace(".jpg", ".png"))
    png = cv2.imread(str(sample / "panoptic_examples" / ann["file_name"]))[:, :, ::-1].astype(np.int64)
    ids = png[:, :, 0] + 256 * png[:, :, 1] + 256**2 * png[:, :, 2]
    stuff, things = [], []
    for s in ann["segments_info"]:
        name, isthing = names[s["category_id"]]
        keep = not isthing or name != "person" or (s["area"] > MIN_PERSON and not s["iscrowd"])
        if keep:
            (things if isthing else stuff).append({"name": name, "mask": ids == s["id"]})
    regions = stuff + sorted(things, key=lambda r: -r["mask"].sum())
    gt = np.full(ids.shape, -1, np.int32)
    for k, r in enumerate(regions):
        gt[r["mask"]] = k
    return regions, gt


def _predicted(page) -> np.ndarray:
    answer = page.evaluate("() => fewclickTest.full.answer.regions.map((r) => r.rle)")
    return np.argmax(np.stack([rle_to_mask(rle) for rle in answer]), axis=0).astype(np.int32)


def _wait(page, n: int) -> None:
    page.wait_for_function(
        f"() => fewclickTest.full.answered >= {n} && !fewclickTest.full.busy", timeout=300000
    )
    error = page.evaluate("() => fewclickTest.full.error")
    if error:
        raise SystemExit(f"the page was refused: {error}")


def _drag(page, points: np.ndarray) -> None:
    points = points.tolist()
    page.mouse.move(*screen(page, *points[0]))
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(*screen(page, x, y), steps=2)
    page.mouse.up()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data/coco_panoptic_sample"))
    p.add_argument("--out", type=Path, default=Path("out/shots"))
    p.add_argument("--scribbles", type=int, default=3, help="scribbles drawn after the extreme points")
    p.add_argument(
        "--model",
        type=Path,
        help="a model of `fewclick train fullimage` for the app to serve (else SAM competition)",
    )
    p.add_argument("--name", default="fullimage_coco_panoptic", help="the screenshots' name stem")
    return p


def _panoptic_project(api: httpx.Client, data: Path) -> tuple[dict[str, int], dict]:
    """The project of panopticapi's sample (its annotations the hidden reference); its class
    ids by name and the image the screenshots show."""
    made = api.post(
        "/api/projects",
        json={
            "name": "coco panoptic",
            "dataset": str(data / "sample_data" / "panoptic_examples.json"),
            "reference": True,
        },
    )
    made.raise_for_status()
    project = made.json()["project"]
    class_id = {c["name"]: c["id"] for c in api.get(f"/api/projects/{project['id']}").json()["classes"]}
    image = next(
        im for im in api.get(f"/api/projects/{project['id']}/images").json() if im["file_name"] == IMAGE
    )
    return class_id, image


def _extreme_points(page, regions: list[dict], class_id: dict[str, int]) -> None:
    """Each region's four extreme points clicked in its class, an answer waited for each."""
    for k, region in enumerate(regions):
        page.fill("#class-filter", region["name"])
        page.click(f'[data-class="{class_id[region["name"]]}"]')  # the list keeps the filter
        points = extreme_points(region["mask"]).points
        for x, y in points[[1, 3, 0, 2]].tolist():  # top, bottom, left, right: any order
            page.mouse.click(*screen(page, x + 0.5, y + 0.5))  # the pixel's centre
        _wait(page, k + 1)


def _scribbles(page, gt: np.ndarray, regions: list[dict], count: int, rng: np.random.Generator) -> None:
    """Up to ``count`` scribbles, each in a region the prediction gets wrong (free
    allocation), an answer waited for each; the mIoU printed after each."""
    answers = len(regions)
    drawn = 0
    while drawn < count:
        pred = _predicted(page)
        usable = [
            s
            for s in allocate_scribbles(gt, pred, rng, "free")
            if pred[int(round(s.points[0, 1])), int(round(s.points[0, 0]))] == s.region
        ]
        if not usable:
            break
        s = usable[0]
        # the simulation's pixel (x, y) is the page's square [x, x + 1) x [y, y + 1): a
        # scribble drawn at x, not x + 0.5, started in the neighbouring region at a border
        _drag(page, s.points[:: max(1, len(s.points) // 12)] + 0.5)
        answers += 1
        drawn += 1
        _wait(page, answers)
        miou = region_miou(gt, _predicted(page))
        print(f"scribble {drawn} for region {s.region + 1} ({regions[s.region]['name']}): mIoU {miou:.3f}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    data = args.data.resolve()
    if not (data / "sample_data" / "panoptic_examples.json").is_file():
        raise SystemExit(f"{data}: not panopticapi's sample (no sample_data/panoptic_examples.json)")
    regions, gt = _regions(data)
    work = Path(tempfile.mkdtemp(prefix="fewclick-fullimage-"))
    if args.model:
        (work / "models").mkdir(parents=True)
        shutil.copy(args.model, work / "models" / "fullimage.pt")
    app = create_app(sqlite_url(work / "app.db"), work, data_roots=[data])
    base, server = serve_in_thread(app)
    name, password, headers = admin_account(app)
    api = httpx.Client(base_url=base, timeout=300, headers=headers)
    class_id, image = _panoptic_project(api, data)
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    with chromium_page(viewport=(1440, 900)) as page:
        log_in(page, base, name, password)
        page.goto(f"{base}/#/image/{image['id']}")
        page.wait_for_function("() => fewclickTest.ready")
        page.wait_for_function(
            "() => fewclickTest.prep && (fewclickTest.prep.ready || fewclickTest.prep.failed)", timeout=300000
        )
        page.keyboard.press("g")
        _extreme_points(page, regions, class_id)
        served = page.evaluate("() => fewclickTest.full.answer.method")
        miou = region_miou(gt, _predicted(page))
        print(f"{len(regions)} regions from extreme points by {served}: mIoU {miou:.3f}")
        _scribbles(page, gt, regions, args.scribbles, rng)
        page.mouse.move(5, 5)
        page.screenshot(path=str(args.out / f"{args.name}_regions.png"))
        page.keyboard.press("Enter")
        page.wait_for_function(f"() => fewclickTest.anns.size === {len(regions)}", timeout=60000)
        page.wait_for_timeout(300)
        page.screenshot(path=str(args.out / f"{args.name}.png"))
    server.should_exit = True
    if page.errors:
        raise SystemExit(f"the page raised: {page.errors}")
    saved = api.get(f"/api/images/{image['id']}").json()["annotations"]
    print(f"saved {len(saved)} mask annotations; screenshots in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
