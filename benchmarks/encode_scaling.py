"""`fewclick encode` in this process (one worker, one thread) against Ray with N workers
(one thread each): images per second, the ratio, and whether the embeddings are the same.

    python benchmarks/encode_scaling.py ../shared/data/bccd --images 60 --workers 2 \\
        --work out/encode --out docs/benchmarks/encode_scaling.json

Times are wall-clock from the job's start to its last file, Ray's start-up and the
actors' model loading included; per-image read / encode / write seconds are the workers'
own means. A busy machine stretches them: the report names the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
from datetime import date
from pathlib import Path

import numpy as np
from _common import load_average

from fewclick.batch import embedding_path, encode_dataset
from fewclick.io import Dataset, read_dataset


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", nargs="+", type=Path, help="datasets any reader of fewclick reads")
    parser.add_argument("--images", type=int, default=60, help="the first N images of each dataset by name")
    parser.add_argument("--workers", type=int, default=2, help="Ray workers")
    parser.add_argument("--ray", default="", help="a Ray address (default: a new local Ray)")
    parser.add_argument("--work", type=Path, required=True, help="where the embeddings are written")
    parser.add_argument("--out", type=Path, required=True, help="the JSON report")
    args = parser.parse_args(argv)

    rows = []
    for path in args.data:
        full = read_dataset(path)
        images = sorted(full.images, key=lambda r: r.file_name)[: args.images]
        data = Dataset(full.classes, images, full.format, full.root)
        load = load_average()
        runs = {}
        for name, ray, workers in (("in-process", None, 1), ("ray", args.ray, args.workers)):
            out = args.work / path.name / name
            shutil.rmtree(out, ignore_errors=True)
            runs[name] = encode_dataset(data, out, ray=ray, workers=workers)
        diff = max(
            float(
                np.abs(
                    np.load(embedding_path(args.work / path.name / "in-process", r.file_name))
                    - np.load(embedding_path(args.work / path.name / "ray", r.file_name))
                ).max()
            )
            for r in images
        )
        local, ray = runs["in-process"], runs["ray"]
        rows.append(
            {
                "data": path.name,
                "images": len(images),
                "in_process": local,
                "ray": ray,
                "speedup": round(ray["images_per_second"] / local["images_per_second"], 3),
                "max_abs_difference": diff,
                "load_average_before": round(load, 2),
            }
        )
        print(json.dumps(rows[-1]))
    report = {
        "date": date.today().isoformat(),
        "machine": f"{platform.node()}, {os.cpu_count()} cores",
        "command": "python benchmarks/encode_scaling.py " + " ".join(argv),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
