"""Every writable format, round-tripped on real datasets: write, detect the format, read
back, and measure what came back.

For each dataset and format: objects written and read back, the largest box difference
(px) over objects whose box the format holds as it is, the share of polygons read back
vertex for vertex and of masks read back pixel for pixel (compared in images where the
format kept every object), the largest oriented-box corner difference (px), whether scores and
points survive, and the writer's own counts of what it left out or approximated.

    python benchmarks/formats_roundtrip.py ../shared/data/coco_tiny ../shared/data/hit_uav \\
        --images 20 --work out/formats --out docs/benchmarks/formats_roundtrip.json

GeoJSON needs georeferenced images: each image gets a world file in a copy of the dataset
(``--work``), 0.5 m pixels at an arbitrary UTM position, so its round trip is measured too.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from tqdm import tqdm

from fewclick.io import WRITERS, Dataset, detect_format, read_dataset, write_dataset
from fewclick.io.geojson import world_files
from fewclick.io.leftout import geometry_of
from fewclick.io.rle import segmentation_to_mask
from fewclick.types import rboxes_to_polygons

FILE_TARGETS = {
    "coco": "coco.json",
    "coco_panoptic": "panoptic.json",
    "labelstudio": "tasks.json",
    "points": "points.csv",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", nargs="+", type=Path, help="datasets any reader of fewclick reads")
    parser.add_argument("--images", type=int, default=20, help="the first N images of each dataset (by name)")
    parser.add_argument("--work", type=Path, required=True, help="where the written datasets go")
    parser.add_argument("--out", type=Path, required=True, help="the JSON report")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)

    rows = []
    for path in args.data:
        source = _first_images(read_dataset(path), args.images)
        georeferenced = _with_world_files(source, args.work / f"{path.name}_images")
        for name in tqdm(WRITERS, desc=path.name):
            data = georeferenced if name == "geojson" else source
            rows.append(
                {
                    "data": path.name,
                    "format": name.replace("_", "-"),
                    **_round_trip(data, name, args.work / path.name),
                }
            )
    report = {
        "date": date.today().isoformat(),
        "machine": f"{platform.node()} ({platform.processor() or platform.machine()})",
        "command": "python benchmarks/formats_roundtrip.py " + " ".join(map(str, argv)),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    args.out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


def _first_images(dataset: Dataset, n: int) -> Dataset:
    images = sorted(dataset.images, key=lambda r: r.file_name)[:n]
    return Dataset(
        dataset.classes, images, dataset.format, dataset.root, dataset.category_ids, dict(dataset.extra)
    )


def _with_world_files(dataset: Dataset, folder: Path) -> Dataset:
    """A copy of the dataset whose images (linked into ``folder``) have world files."""
    folder.mkdir(parents=True, exist_ok=True)
    images = []
    for k, rec in enumerate(dataset.images):
        target = folder / Path(rec.file_name).name
        if not target.exists():
            target.symlink_to(Path(rec.path).resolve())
        world = world_files(target)[0]
        world.write_text(f"0.5\n0\n0\n-0.5\n{500000.25 + 1000 * k}\n{4100000 - 0.25}\n")
        images.append(
            type(rec)(target.name, rec.width, rec.height, rec.objects, target, rec.id, dict(rec.extra))
        )
    return Dataset(dataset.classes, images, dataset.format, folder, dataset.category_ids, dict(dataset.extra))


def _linked_images(dataset: Dataset, folder: Path) -> Path:
    """A folder where each image is found by its ``file_name`` (points CSV and Label Studio
    name images, and are read with ``images_dir``)."""
    for rec in dataset.images:
        target = folder / rec.file_name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.symlink_to(Path(rec.path).resolve())
    return folder


def _round_trip(source: Dataset, name: str, work: Path) -> dict:
    target = work / name / FILE_TARGETS.get(name, "")
    shutil.rmtree(work / name, ignore_errors=True)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            messages = write_dataset(source, target, name)
            detected = detect_format(target)
            options = (
                {"images_dir": _linked_images(source, work / name / "linked")}
                if name in ("points", "labelstudio")
                else {}
            )
            back = read_dataset(target, **options)
        except (ValueError, OSError) as exc:
            return {"error": str(exc)[:300]}
    seconds = time.perf_counter() - started
    by_name = {Path(r.file_name).name: r for r in back.images}
    t = _Tally()
    for rec in source.images:
        _compare(rec, by_name[Path(rec.file_name).name].objects, t)
    return {
        "detected": detected,
        "objects_written": t.written,
        "objects_read": t.read,
        "box_max_error_px": round(t.box_error, 6),
        "masks": t.masks,
        "masks_exact": t.exact_masks,
        "polygons": t.polygons,
        "polygons_exact": t.exact_polygons,
        "rboxes_compared": t.rboxes,
        "rbox_corner_max_error_px": round(t.rbox_error, 6),
        "seconds": round(seconds, 2),
        "messages": [m.split(": ", 1)[-1] for m in messages],
    }


@dataclass
class _Tally:
    """What a format kept over a dataset's images: objects written and read, masks,
    polygons and oriented boxes compared (and how many came back exact), the largest errors."""

    written: int = 0
    read: int = 0
    masks: int = 0
    exact_masks: int = 0
    rboxes: int = 0
    polygons: int = 0
    exact_polygons: int = 0
    box_error: float = 0.0
    rbox_error: float = 0.0


def _compare(rec, got, t: _Tally) -> None:
    """``got``, the objects read back for ``rec``, against ``rec``'s own, into ``t``: one by
    one when they are the same objects in the same order, else only counted."""
    objs = rec.objects
    t.written += len(objs)
    t.read += len(got)
    kinds = [geometry_of(objs, i) for i in range(len(objs))]
    if len(got) != len(objs):
        t.masks += kinds.count("mask")
        t.polygons += kinds.count("polygon")
        return
    for i, kind in enumerate(kinds):
        if kind == "box" and np.isfinite(got.boxes[i]).all():
            t.box_error = max(t.box_error, float(np.abs(got.boxes[i] - objs.boxes[i]).max()))
        if kind == "mask":
            t.masks += 1
            seg = None if got.segmentations is None else got.segmentations[i]
            if seg is not None:
                same = segmentation_to_mask(seg, rec.height, rec.width)
                t.exact_masks += bool(
                    (same == segmentation_to_mask(objs.segmentations[i], rec.height, rec.width)).all()
                )
        if kind == "polygon":
            t.polygons += 1
            seg = None if got.segmentations is None else got.segmentations[i]
            t.exact_polygons += isinstance(seg, list) and _same_polygons(seg, objs.segmentations[i])
        if kind == "rbox" and got.rboxes is not None and np.isfinite(got.rboxes[i]).all():
            t.rboxes += 1
            a = rboxes_to_polygons(got.rboxes[i : i + 1])[0]
            b = rboxes_to_polygons(objs.rboxes[i : i + 1])[0]
            t.rbox_error = max(
                t.rbox_error, float(np.linalg.norm(a[:, None] - b[None], axis=-1).min(1).max())
            )


def _same_polygons(a: list, b: list) -> bool:
    """The same polygons, vertex for vertex, to 1e-3 px."""
    if len(a) != len(b):
        return False
    return all(
        np.shape(p) == np.shape(q)
        and np.allclose(np.asarray(p, np.float64), np.asarray(q, np.float64), atol=1e-3)
        for p, q in zip(a, b, strict=True)
    )


def markdown(report: dict) -> str:
    lines = [
        f"# Format round trips ({report['date']}, {report['machine']})",
        "",
        f"`{report['command']}`",
        "",
        "Objects are compared one by one only in images where the format kept every object "
        "(same count, same order); in an image where it left one out (a crowd region, say), "
        "none of its polygons or masks counts as exact.",
        "",
        "| data | format | read as | objects written | read back | box max err (px) | polygons exact | "
        "masks exact | rbox corner max err (px) | what the writer said |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        if "error" in r:
            lines.append(f"| {r['data']} | {r['format']} | error: {r['error']} | | | | | | | |")
            continue
        masks = f"{r['masks_exact']} / {r['masks']}" if r["masks"] else "-"
        polygons = f"{r['polygons_exact']} / {r['polygons']}" if r["polygons"] else "-"
        rbox = f"{r['rbox_corner_max_error_px']:.2g}" if r["rboxes_compared"] else "-"
        said = "; ".join(re.split(r",? in \S+ \(\d+\)", m)[0] for m in r["messages"]) or "nothing left out"
        lines.append(
            f"| {r['data']} | {r['format']} | {r['detected']} | {r['objects_written']} | "
            f"{r['objects_read']} | {r['box_max_error_px']:.2g} | {polygons} | {masks} | {rbox} | {said} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
