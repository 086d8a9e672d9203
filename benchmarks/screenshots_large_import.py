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
each after a wheel turn (the status line's zoom; the docs hold them as ``app_*.png``).
Writes ``large_import_walk.json``: the import's seconds and the server's peak RSS during
it, the objects saved and their kinds, the status line before and after each wheel turn,
and the page's script errors.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import httpx
import numpy as np
from _browser import chromium_page, log_in, screen
from _server import ServerProcess
from large import MOSAICS, Memory, build, truth

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


def walk(server, mosaic, geojson: Path, centre: tuple[float, float], out: Path) -> dict:
    """The import through the API, then the page (see the module's text)."""
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
            page.evaluate(
                """([cx, cy, scale]) => { const {width, height} = fewclickTest.canvas;
                fewclickTest.setView({scale, ox: width / 2 - cx * scale, oy: height / 2 - cy * scale}); }""",
                [cx, cy, scale],
            )
            page.wait_for_function("() => fewclickTest.tilesReady", timeout=120000)
            page.mouse.move(*screen(page, cx, cy))
            page.wait_for_timeout(1500)
            before = page.inner_text("#hud")
            page.mouse.wheel(0, 200)  # zoom out about the mouse, which stays put
            page.wait_for_timeout(1200)
            seen[name] = {"status_line_before": before, "after_a_wheel_turn": page.inner_text("#hud")}
            page.screenshot(path=str(out / name))
        seen["page_errors"] = list(page.errors)
    return seen


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
    data_dir = args.work / "server"
    shutil.rmtree(data_dir, ignore_errors=True)
    server = ServerProcess(data_dir, data_roots=[mosaic.path.parent, folder])
    server.start()
    try:
        seen = {"image": [mosaic.width, mosaic.height], "features": len(shapes), "nuclei": len(nuclei)}
        seen.update(walk(server, mosaic, geojson, tuple(first.mean(0)), args.out))
    finally:
        server.stop()
    path = args.out / "large_import_walk.json"
    path.write_text(json.dumps(seen, indent=1) + "\n")
    print(json.dumps(seen, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
