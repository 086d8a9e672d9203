"""Annotations from elsewhere on a 40000 x 30000 slide, as a person brings them: a QuPath
GeoJSON of nuclei outlines, and rings with holes, imported through the app and seen in
headless Chromium.

    python benchmarks/screenshots_large_import.py --slide ../shared/data/dsb2018_nuclei \\
        --work DIR --out DIR

Builds (or reuses) ``benchmarks/large.py``'s slide mosaic of ``--slide`` under ``--work``
(``slide/slide.tif``), writes a GeoJSON in pixels (QuPath's, the image named, its size given) of
every nucleus outline in the slide's top-left ``--region`` (its source mask's outline,
moved into the mosaic) and three rings with holes, runs ``fewclick serve``, makes a project
of the slide and imports the GeoJSON through the API. In the page: a nucleus at 1.5 screen
pixels a pixel (``large_import_nuclei.png``) and the rings (``large_import_rings.png``),
each after a wheel turn (the status line's zoom); then a box in Mask mode round a nucleus
just right of the imported ones (``large_import_box.png``), accepted. The docs hold the
screenshots as ``app_*.png``. Writes ``large_import_walk.json``: the import's seconds and
the server's peak RSS during it, the objects saved and their kinds, the status line before
and after each wheel turn, the box's mask (seconds, IoU with the nucleus's mask) and the
page's script errors.
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
from _walk import report_walk, with_server
from large import MOSAICS, Memory, Truth, build, truth
from screenshots_large import _open_at, box_to_mask

from fewclick.io import read_dataset
from fewclick.io.rle import segmentation_outlines

USER, PASSWORD = "curator", "outlines from another tool"
RINGS = ((30500.0, 22500.0), (31200.0, 22600.0), (30800.0, 23300.0))  # centres, in an empty corner


def features(mosaic, records, region: tuple[int, int]) -> list[dict]:
    """GeoJSON features of the nuclei wholly in ``region`` (width, height from the top left),
    then :data:`RINGS` (200 px across, a 110 px hole)."""
    out = []
    for o in truth(mosaic, records):
        if o.box[2] > region[0] or o.box[3] > region[1]:
            continue
        r = records[o.record]
        outlines = segmentation_outlines(r.objects.segmentations[o.index], r.height, r.width)
        if outlines:
            ring = max(outlines, key=len) + np.float64(
                [o.box[0] - o.source_box[0], o.box[1] - o.source_box[1]]
            )
            out.append(_feature([ring], "nucleus"))
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    for cx, cy in RINGS:
        outer = np.c_[cx + 200 * np.cos(t), cy + 200 * np.sin(t)]
        hole = np.c_[cx + 110 * np.cos(t), cy + 110 * np.sin(t)][::-1]
        out.append(_feature([outer, hole], "tissue"))
    return out


def _feature(rings: list[np.ndarray], name: str) -> dict:
    closed = [[*ring.tolist(), ring[0].tolist()] for ring in rings]
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": closed},
        "properties": {"class": name},
    }


def walk(server, mosaic, records, geojson: Path, centre: tuple[float, float], out: Path, o: Truth) -> dict:
    """The import through the API, then the page (see the module's text); ``o``: the nucleus
    boxed in Mask mode."""
    api = httpx.Client(base_url=server.base, headers=server.add_user(USER, "admin", PASSWORD), timeout=1200)
    body = {"name": "slide", "folder": str(mosaic.path.parent), "classes": ["nucleus", "tissue"]}
    project = api.post("/api/projects", json=body).raise_for_status().json()["project"]
    image = api.get(f"/api/projects/{project['id']}/images").json()[0]
    seen = {}
    with Memory(server.process.pid) as memory:
        t = time.perf_counter()
        r = api.post(
            f"/api/projects/{project['id']}/import", json={"dataset": str(geojson), "format": "geojson"}
        )
        seen["import_s"] = round(time.perf_counter() - t, 1)
    if r.status_code != 200:
        raise SystemExit(f"import: {r.status_code} {r.text[:500]}")
    annotations = api.get(f"/api/images/{image['id']}").json()["annotations"]
    seen.update(
        import_peak_rss_mb=round(memory.peak_mb),
        import_warnings=r.json()["warnings"],
        saved=len(annotations),
        kinds=sorted({a["kind"] for a in annotations}),
    )
    with chromium_page((1400, 900)) as page:
        log_in(page, server.base, USER, PASSWORD)
        page.goto(f"{server.base}/#/image/{image['id']}")
        page.wait_for_function("() => fewclickTest.ready", timeout=120000)
        for name, (cx, cy), scale in (
            ("large_import_nuclei.png", centre, 1.5),
            ("large_import_rings.png", (30850.0, 22900.0), 0.8),
        ):
            _open_at(page, (cx, cy), scale)
            page.mouse.move(*screen(page, cx, cy))
            page.wait_for_timeout(1500)
            before = page.inner_text("#hud")
            page.mouse.wheel(0, 200)  # zoom out about the mouse, which stays put
            page.wait_for_timeout(1200)
            seen[name] = {"status_line_before": before, "after_a_wheel_turn": page.inner_text("#hud")}
            page.screenshot(path=str(out / name))
        seen["box_to_mask"] = box_to_mask(
            page, server, image, mosaic, records, o, out / "large_import_box.png"
        )
    return seen


def unimported(mosaic, records, region: tuple[int, int]) -> Truth:
    """A nucleus of 20-60 px just right of the imported ``region``: the one boxed."""
    beside = [
        o
        for o in truth(mosaic, records)
        if region[0] < o.box[0] and o.box[2] < region[0] + 2000 and o.box[3] < region[1]
        and 20 <= max(o.box[2] - o.box[0], o.box[3] - o.box[1]) <= 60
    ]  # fmt: skip
    if not beside:
        raise SystemExit(f"no nucleus of 20-60 px beside the region {region}")
    return random.Random(5).choice(beside)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--slide", type=Path, required=True, help="a dataset with masks (the slide's sources)")
    p.add_argument("--work", type=Path, required=True, help="where the mosaic and the server's data go")
    p.add_argument("--out", type=Path, required=True, help="where the screenshots and JSON go")
    p.add_argument("--region", type=int, nargs=2, default=(6000, 4000), help="the nuclei's region, px")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    data = read_dataset(args.slide)
    records = [r for r in data.images if r.path is not None and len(r.objects)]
    mosaic, _ = build("slide", records, args.work)
    assert (mosaic.width, mosaic.height) == MOSAICS["slide"][:2]
    shapes = features(mosaic, records, tuple(args.region))
    folder = args.work / "annotations"
    folder.mkdir(parents=True, exist_ok=True)
    geojson = folder / "slide.geojson"
    size = {
        "coordinates": "pixels",
        "width": mosaic.width,
        "height": mosaic.height,
        "image": mosaic.path.name,
    }
    geojson.write_text(json.dumps({"type": "FeatureCollection", "properties": size, "features": shapes}))
    nuclei = [f for f in shapes if f["properties"]["class"] == "nucleus"]
    first = np.asarray(nuclei[len(nuclei) // 2]["geometry"]["coordinates"][0])
    boxed = unimported(mosaic, records, tuple(args.region))
    shutil.rmtree(args.work / "server", ignore_errors=True)
    seen = {"image": [mosaic.width, mosaic.height], "features": len(shapes), "nuclei": len(nuclei)}
    seen.update(
        with_server(
            args.work / "server",
            None,
            lambda server: walk(server, mosaic, records, geojson, tuple(first.mean(0)), args.out, boxed),
            roots=[mosaic.path.parent, folder],
        )
    )
    report_walk(seen, args.out / "large_import_walk.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
