"""App benchmark in real headless Chromium: click latency, panning frame time, first tile.

    python benchmarks/app.py --out docs/benchmarks/app.json [--data DATASET] [--model last.pt]

- **click to boxes on screen**: on a 1024 x 1024 image (``--data``: the first image of that
  dataset of at least 1024 px a side, centre-cropped to 1024 x 1024; default: a synthetic
  aerial scene), sessions of 6 clicks on objects in click-to-detect mode; each click is timed
  from the mouse event to the first animation frame after the boxes arrived. With
  ``--model`` (a click-detector checkpoint, e.g. from ``fewclick train detect``) the project
  serves that model; without, the training-free template correlation serves.
- **panning with 1,000 boxes**: 1,000 boxes on the image, the view dragged across it for
  about 3 s; the time between animation frames and the time our drawing takes per frame.
- **box to mask on screen**: on the same image in box-to-mask mode, once the image's SAM
  embedding is made and cached (the page says it is ready), ``--boxes`` boxes (default 24)
  around objects, each the first request for its box; timed from the mouse release to the
  first animation frame after the mask arrived, with the load average before and after.
  Skipped (with the reason) when the pretrained SAM files are not set up.
- **an outline edit to the mask on screen**: a saved mask of about 300 px with a hole,
  reopened in mask mode as an outline (L); ``--edits`` edits (default 60: vertex drags,
  vertices inserted on an edge, vertices deleted, in turn), each timed in the page from the
  mouse event to the end of the frame that drew the outline's new mask (the test hook's
  ``outlineTimes``), with the load average before and after.
- **time to first tile** of a 10,000 x 10,000 JPEG: from opening the image page right after
  the image was added (its tile pyramid still being written) to the first tile drawn, and
  again once the pyramid exists (a fresh browser, no cache).

``--parts`` runs some of these only (default: all); a part left out has no row.
Writes FILE.json and renders docs/benchmarks/app.md beside it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from _browser import admin_account, chromium_page, log_in, screen, serve_in_thread
from _common import load_averages, run_record

from fewclick.data.synthetic import make_dataset
from fewclick.io import read_dataset
from fewclick.server.app import create_app
from fewclick.server.db import ModelVersion, sqlite_url

PARTS = ("clicks", "masks", "outline", "pan", "tiles")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="fewclick-app-bench-"))
    parts = args.parts
    try:
        image_dir, centres, source = _click_image(args.data, home)
        big = _big_image(home / "big") if "tiles" in parts else None
        app = create_app(sqlite_url(home / "app.db"), home / "data", data_roots=[home])
        base, _ = serve_in_thread(app)
        login = admin_account(app)
        import httpx

        api = httpx.Client(base_url=base, timeout=120, headers=login[2])
        classes = []
        if args.model:
            import torch

            classes = torch.load(args.model, map_location="cpu", weights_only=False)["classes"]
        body = {"name": "bench", "folder": str(image_dir), "classes": classes}
        project = api.post("/api/projects", json=body).json()["project"]
        if args.model:
            with app.state.sessions() as session:
                session.add(
                    ModelVersion(
                        project_id=project["id"],
                        task="detect",
                        version=1,
                        path=str(args.model),
                        images=0,
                        created_by=1,
                    )
                )
                session.commit()
        image_id = api.get(f"/api/projects/{project['id']}/images").json()[0]["id"]
        report = {
            **run_record(cores=2),
            "click_image": source,
            "model": str(args.model) if args.model else None,
        }
        with chromium_page(viewport=(1280, 800)) as page:
            log_in(page, base, *login[:2])
            if "clicks" in parts:
                report["click_to_boxes_ms"] = _clicks(page, base, image_id, centres, args.sessions)
            if "masks" in parts:
                report["box_to_mask_ms"] = _boxes(page, base, image_id, centres, args.boxes)
            if "outline" in parts:
                report["outline_edit_ms"] = _outline_edits(page, base, api, image_id, args.edits)
            if "pan" in parts:
                boxes = _thousand_boxes(api, image_id, project["classes"][0]["id"])
                report["pan_1000_boxes"] = _pan(page, base, image_id, boxes)
        if "tiles" in parts:
            report["first_tile_ms"] = _first_tile(api, base, big, login)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))
        _render(report, args.out.with_suffix(".md"))
        print(json.dumps(report, indent=1))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0


def _click_image(data: Path | None, home: Path) -> tuple[Path, np.ndarray, str]:
    """A folder with one 1024 x 1024 image and the centres of its objects."""
    folder = home / "click"
    folder.mkdir(parents=True)
    if data is None:
        ds = make_dataset("aerial", 1, seed=3, width=1024, height=1024)
        rec = ds.images[0]
        pixels = rec.extra["pixels"]
        source = "synthetic aerial scene (fewclick.data.synthetic, seed 3)"
        offset = np.zeros(2)
    else:
        ds = read_dataset(data)
        rec = next(
            (
                r
                for r in sorted(ds.images, key=lambda r: r.file_name)
                if r.width >= 1024 and r.height >= 1024 and len(r.objects)
            ),
            None,
        )
        if rec is None:
            raise SystemExit(f"{data}: no image of at least 1024 x 1024 pixels with objects")
        full = rec.load_image()
        offset = np.array([(rec.width - 1024) // 2, (rec.height - 1024) // 2])
        pixels = full[offset[1] : offset[1] + 1024, offset[0] : offset[0] + 1024]
        source = f"{data} / {rec.file_name}, centre 1024 x 1024"
    cv2.imwrite(str(folder / "click.png"), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
    centres = rec.objects.centers - offset
    inside = np.isfinite(centres).all(1) & (centres >= 8).all(1) & (centres < 1016).all(1)
    return folder, centres[inside], source


def _big_image(folder: Path) -> Path:
    """A 10,000 x 10,000 JPEG: smooth colour fields with fine texture."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    low = rng.integers(40, 220, (40, 40, 3), np.uint8)
    image = cv2.resize(low, (10000, 10000), interpolation=cv2.INTER_CUBIC)
    noise = rng.integers(0, 24, (10000, 10000), np.uint8)
    image = cv2.add(image, cv2.merge([noise, noise, noise]))
    path = folder / "big.jpg"
    cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return folder


def _open(page, base: str, image_id: int) -> None:
    page.goto(f"{base}/#/")
    page.wait_for_selector("#projects")
    page.goto(f"{base}/#/image/{image_id}")
    page.wait_for_function("() => fewclickTest.ready")


def _percentiles(values: list[float]) -> dict:
    v = np.asarray(values)
    return {
        "n": len(v),
        "p50": round(float(np.percentile(v, 50)), 1),
        "p95": round(float(np.percentile(v, 95)), 1),
        "max": round(float(v.max()), 1),
    }


def _clicks(page, base: str, image_id: int, centres: np.ndarray, sessions: int) -> dict:
    _open(page, base, image_id)
    page.keyboard.press("d")
    rng = np.random.default_rng(0)
    times, warm = [], True
    for _ in range(sessions + 1):
        page.keyboard.press("Escape")
        picks = centres[rng.choice(len(centres), size=min(6, len(centres)), replace=False)]
        for n, (x, y) in enumerate(picks, start=1):
            sx, sy = screen(page, float(x), float(y))
            t0 = time.perf_counter()
            page.mouse.click(sx, sy)
            page.wait_for_function(f"() => fewclickTest.detect.answered === {n}", timeout=60000)
            page.evaluate("() => new Promise(r => requestAnimationFrame(() => r()))")
            if not warm:
                times.append((time.perf_counter() - t0) * 1000)
        warm = False  # the first session warms the worker and its caches; not timed
    method = page.evaluate("() => fewclickTest.detect.result.method")
    return {**_percentiles(times), "served_by": method}


def _boxes(page, base: str, image_id: int, centres: np.ndarray, count: int) -> dict:
    """Box-to-mask latency with the embedding cached: one box per object, each new."""
    from fewclick.server.serving import sam_available

    if not sam_available():
        return {"skipped": "the pretrained SAM files are not set up (fewclick models fetch)"}
    _open(page, base, image_id)
    page.keyboard.press("m")
    page.wait_for_function("() => fewclickTest.prep && fewclickTest.prep.ready", timeout=300000)
    rng = np.random.default_rng(1)
    picks = centres[rng.choice(len(centres), size=count, replace=len(centres) < count)]
    load_before = load_averages()
    times, served = [], set()
    for k, (x, y) in enumerate(picks):
        page.keyboard.press("Escape")
        half = 20 + 4 * (k % 5)  # boxes of 40-56 px, none the same as another
        page.mouse.move(*screen(page, float(x) - half, float(y) - half))
        page.mouse.down()
        page.mouse.move(*screen(page, float(x) + half, float(y) + half), steps=3)
        t0 = time.perf_counter()
        page.mouse.up()
        page.wait_for_function("() => fewclickTest.seg && fewclickTest.seg.answered === 0", timeout=60000)
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => r()))")
        times.append((time.perf_counter() - t0) * 1000)
        served.add(page.evaluate("() => fewclickTest.seg.result.method"))
    return {
        **_percentiles(times),
        "served_by": ", ".join(sorted(served)),
        "load_average_before": load_before,
        "load_average_after": load_averages(),
    }


def _outline_edits(page, base: str, api, image_id: int, edits: int) -> dict:
    """Outline edits of a saved mask: in-page time from each edit's mouse event to the end of
    the frame that drew its new mask."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    from fewclick.io.rle import mask_to_rle

    ys, xs = np.mgrid[:1024, :1024]
    blob = ((xs - 500) / 150) ** 2 + ((ys - 480) / 110) ** 2 < 1  # an ellipse with a lobe
    blob |= (xs - 620) ** 2 + (ys - 560) ** 2 < 70**2
    blob &= (xs - 470) ** 2 + (ys - 470) ** 2 > 30**2  # and a hole
    project_id = api.get(f"/api/images/{image_id}").json()["project_id"]
    class_id = api.get(f"/api/projects/{project_id}").json()["classes"][0]["id"]
    create = [{"class_id": class_id, "kind": "mask", "geometry": {"mask": mask_to_rle(blob)}}]
    revision = api.get(f"/api/images/{image_id}").json()["revision"]
    api.post(f"/api/images/{image_id}/annotations/batch", json={"revision": revision, "create": create})
    _open(page, base, image_id)
    page.keyboard.press("m")
    page.mouse.move(*screen(page, 500, 400))  # over the mask: L opens it
    page.keyboard.press("l")
    page.wait_for_function("() => fewclickTest.seg && fewclickTest.seg.outline", timeout=60000)
    # zoomed in as a person edits (1.5 screen px an image px), the blob in the middle
    page.evaluate("""() => { const c = fewclickTest.canvas;
        fewclickTest.setView({scale: 1.5, ox: c.width / 2 - 540 * 1.5, oy: c.height / 2 - 500 * 1.5}); }""")
    page.evaluate("() => fewclickTest.resetOutlineTimes()")
    load_before = load_averages()
    made = 0
    for k in range(edits):
        ring = page.evaluate("() => fewclickTest.seg.outline.rings[0].points")
        _outline_edit(page, ring, k)
        made += 1
        try:
            page.wait_for_function(f"() => fewclickTest.outlineTimes.length >= {made}", timeout=10000)
        except PlaywrightTimeout:
            said = page.inner_text("#message")
            raise SystemExit(f"outline edit {k} drew no mask within 10 s; the page said {said!r}") from None
    times = page.evaluate("() => fewclickTest.outlineTimes")
    page.keyboard.press("Escape")
    return {**_percentiles(times), "load_average_before": load_before, "load_average_after": load_averages()}


def _outline_edit(page, ring: list, k: int) -> None:
    """Edit k of the outer ring, in turn: a vertex dragged 6 px out, a vertex inserted at
    the middle of its next edge, that vertex deleted."""
    i = (k // 3) % len(ring)
    x, y = ring[i]
    if k % 3 == 0:
        dx, dy = np.array([x - 540, y - 500]) / np.hypot(x - 540, y - 500) * 6  # out of the blob
        page.mouse.move(*screen(page, x, y))
        page.mouse.down()
        page.mouse.move(*screen(page, x + dx, y + dy), steps=3)
        page.mouse.up()
    elif k % 3 == 1:
        a, b = ring[i], ring[(i + 1) % len(ring)]
        page.mouse.click(*screen(page, (a[0] + b[0]) / 2, (a[1] + b[1]) / 2))
    else:
        inserted = (k // 3) % (len(ring) - 1) + 1  # the ring had a vertex fewer at the insert
        page.mouse.click(*screen(page, *ring[inserted]), button="right")


def _thousand_boxes(api, image_id: int, class_id: int) -> int:
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 1000, (1000, 2))
    size = rng.uniform(8, 24, (1000, 2))
    create = [
        {"class_id": class_id, "geometry": {"box": [float(x), float(y), float(x + w), float(y + h)]}}
        for (x, y), (w, h) in zip(xy, size, strict=True)
    ]
    revision = api.get(f"/api/images/{image_id}").json()["revision"]
    body = {"create": create, "revision": revision}
    api.post(f"/api/images/{image_id}/annotations/batch", json=body).raise_for_status()
    return len(create)


def _pan(page, base: str, image_id: int, boxes: int) -> dict:
    _open(page, base, image_id)
    page.wait_for_function(f"() => fewclickTest.anns.size >= {boxes}")
    page.evaluate("""() => { window.__frames = []; fewclickTest.resetFrames();
        const tick = (t) => { window.__frames.push(t);
                              if (window.__frames.length < 100000) requestAnimationFrame(tick); };
        requestAnimationFrame(tick); }""")
    page.mouse.move(640, 400)
    page.mouse.down(button="middle")
    started = time.perf_counter()
    for i in range(180):
        page.mouse.move(640 + 300 * np.sin(i / 15), 400 + 200 * np.cos(i / 20))
        page.wait_for_timeout(16)
    page.mouse.up(button="middle")
    seconds = time.perf_counter() - started
    stamps = np.asarray(page.evaluate("() => window.__frames"))
    draws = page.evaluate("() => fewclickTest.frames")
    intervals = np.diff(stamps[stamps >= stamps[0]])
    return {
        "boxes": boxes,
        "seconds": round(seconds, 2),
        "frame_interval_ms": _percentiles(list(intervals)),
        "draw_ms": _percentiles(draws),
    }


def _first_tile(api, base: str, folder: Path, login: tuple) -> dict:
    out = {}
    for case in ("while_tiling", "tiled"):
        if case == "while_tiling":
            project = api.post("/api/projects", json={"name": "big", "folder": str(folder)}).json()["project"]
            image_id = api.get(f"/api/projects/{project['id']}/images").json()[0]["id"]
        with chromium_page(viewport=(1280, 800)) as page:  # a fresh browser each case: no cache
            log_in(page, base, *login[:2])
            t0 = time.perf_counter()
            page.goto(f"{base}/#/image/{image_id}")
            page.wait_for_function("() => fewclickTest.tilesReady > 0", timeout=120000)
            page.evaluate("() => new Promise(r => requestAnimationFrame(() => r()))")
            out[case] = round((time.perf_counter() - t0) * 1000, 1)
        if case == "while_tiling":  # wait for the pyramid to be complete before the second case
            for _ in range(600):
                if api.get(f"/api/images/{image_id}/tiles/0/19/19").status_code == 200:
                    break
                time.sleep(0.5)
    return out


def _render(r: dict, out: Path) -> None:
    lines = [
        "# App benchmark",
        "",
        "Generated by `benchmarks/app.py` (real headless Chromium, Debian's package, driven by Playwright; "
        "server and browser on the same machine).",
        "",
        f"- run {r['date']} on {r['machine']}; click image: {r['click_image']}; "
        f"detector: {r['model'] or 'none (training-free template correlation)'}.",
        "",
        "| measure | p50 | p95 | target |",
        "|---|---|---|---|",
        *_click_row(r.get("click_to_boxes_ms")),
        *_mask_row(r.get("box_to_mask_ms")),
        *_outline_row(r.get("outline_edit_ms")),
        *_pan_rows(r.get("pan_1000_boxes")),
        "",
        *_tile_lines(r.get("first_tile_ms")),
    ]
    if r.get("notes"):
        lines += ["Notes:", "", *[f"- {n}" for n in r["notes"]], ""]
    out.write_text("\n".join(lines))


def _click_row(c: dict | None) -> list[str]:
    if not c:
        return []
    met = "met" if c["p95"] <= 300 else "MISSED"
    return [
        f"| click to boxes on screen, 1024 px image ({c['n']} clicks, served by {c['served_by']}) "
        f"| {c['p50']} ms | {c['p95']} ms | p95 <= 300 ms: {met} |"
    ]


def _outline_row(o: dict | None) -> list[str]:
    if not o:
        return []
    met = "met" if o["p95"] <= 100 else "MISSED"
    load = f"load average {o['load_average_before'][0]} before, {o['load_average_after'][0]} after"
    return [
        f"| an outline edit to the mask on screen ({o['n']} drags, inserts and deletes of a ~300 px mask; "
        f"{load}) | {o['p50']} ms | {o['p95']} ms | p95 <= 100 ms: {met} |"
    ]


def _pan_rows(pan: dict | None) -> list[str]:
    if not pan:
        return []
    frames, draws = pan["frame_interval_ms"], pan["draw_ms"]
    met = "met" if frames["p95"] <= 33 else "MISSED"
    return [
        f"| frame interval while panning with {pan['boxes']} boxes ({frames['n']} frames) "
        f"| {frames['p50']} ms | {frames['p95']} ms | p95 <= 33 ms: {met} |",
        f"| our drawing per frame, same pan | {draws['p50']} ms | {draws['p95']} ms | |",
    ]


def _tile_lines(tile: dict | None) -> list[str]:
    if not tile:
        return []
    return [
        "Time to first tile of a 10,000 x 10,000 JPEG (from opening the image page to the first tile drawn):",
        "",
        f"- right after the image was added, its tile pyramid still being written: {tile['while_tiling']} ms "
        f"(target <= 1000 ms: {'met' if tile['while_tiling'] <= 1000 else 'MISSED'})",
        f"- once the pyramid exists: {tile['tiled']} ms (target <= 1000 ms: "
        f"{'met' if tile['tiled'] <= 1000 else 'MISSED'})",
        "",
    ]


def _mask_row(m: dict | None) -> list[str]:
    if not m:
        return []
    if "skipped" in m:
        return [f"| box to mask on screen, embedding cached | skipped: {m['skipped']} | | |"]
    met = "met" if m["p95"] <= 300 else "MISSED"
    load = f"load average {m['load_average_before'][0]} before, {m['load_average_after'][0]} after"
    return [
        f"| box to mask on screen, embedding cached ({m['n']} new boxes, served by {m['served_by']}; {load}) "
        f"| {m['p50']} ms | {m['p95']} ms | p95 <= 300 ms: {met} |"
    ]


def _parts(text: str) -> set[str]:
    parts = set(text.split(","))
    if parts - set(PARTS):
        raise argparse.ArgumentTypeError(f"expected parts of {', '.join(PARTS)}, got {text!r}")
    return parts


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--data", type=Path, help="a dataset with an image of at least 1024 x 1024 px")
    p.add_argument("--model", type=Path, help="a click-detector checkpoint to serve (default: none)")
    p.add_argument("--sessions", type=int, default=5, help="timed sessions of 6 clicks")
    p.add_argument("--boxes", type=int, default=24, help="timed box-to-mask requests (at least 20)")
    p.add_argument("--edits", type=int, default=60, help="timed outline edits (drags, inserts, deletes)")
    p.add_argument(
        "--parts",
        type=_parts,
        default=set(PARTS),
        help=f"the measurements to run, comma-separated, of {', '.join(PARTS)} (default: all)",
    )
    return p


if __name__ == "__main__":
    sys.exit(main())
