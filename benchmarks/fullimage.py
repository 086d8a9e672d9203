"""Full-image segmentation from extreme points and scribbles: mIoU over regions against
scribbles per region, for every method that exists so far and both allocations.

    python benchmarks/fullimage.py --train T --test H --out docs/benchmarks/fullimage.json [--quick]

Step 0 is extreme points alone; each later step adds scribbles under ``one_per_region``
or ``free`` allocation (:mod:`fewclick.simulate.allocation`). Methods run here:
``sam_compete`` (training-free, needs the pretrained SAM files) and ``box_fill`` (the
floor). The trained ``full_image`` and ``single_region`` models are not built yet: they
are absent from the JSON rather than filled in. ``--train`` is read only to check it and
to report its size (nothing here trains yet); ``--work`` is where models will go.

JSON: ``curves[method][allocation] = {"scribbles_per_region": [0, 1, ...], "mIoU": [...]}``,
``to85[method][allocation]`` / ``to90[...]`` (the first step whose mIoU reaches the level,
None when none does), and the void share of the test images.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from tqdm import tqdm

from fewclick.io import read_dataset
from fewclick.predict.fullimage import BoxFill, SamCompete
from fewclick.protocols.fullimage import MIN_REGION, region_map, run_session
from fewclick.simulate.allocation import ALLOCATIONS

QUICK_IMAGES, QUICK_STEPS, STEPS = 25, 6, 9


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    train, test = read_dataset(args.train), read_dataset(args.test)
    records = test.images[: QUICK_IMAGES if args.quick else None]
    steps = QUICK_STEPS if args.quick else STEPS
    methods = {"box_fill": BoxFill()}
    sam = _sam()
    if sam is not None:
        methods["sam_compete"] = SamCompete(sam)
    truths = [region_map(r, args.min_region) for r in records]
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}",
        "train": {"path": str(args.train), "images": len(train.images)},
        "test": {"path": str(args.test), "images": len(records)},
        "min_region": args.min_region,
        "void_share": float(np.mean([void for _, void in truths])),
        "steps": steps,
        "curves": {},
        "to85": {},
        "to90": {},
        "seconds": {},
    }
    for name, predictor in methods.items():
        for allocation in ALLOCATIONS:
            t0 = time.perf_counter()
            sessions = []
            for i, (record, (gt, _)) in enumerate(
                tqdm(list(zip(records, truths, strict=True)), desc=f"{name} {allocation}")
            ):
                rng = np.random.default_rng([args.seed, i])
                sessions.append(run_session(predictor, record.load_image(), gt, steps, allocation, rng))
            curve = np.mean(sessions, axis=0).tolist()
            report["curves"].setdefault(name, {})[allocation] = {
                "scribbles_per_region": list(range(steps + 1)),
                "mIoU": curve,
            }
            report["to85"].setdefault(name, {})[allocation] = _reach(curve, 0.85)
            report["to90"].setdefault(name, {})[allocation] = _reach(curve, 0.90)
            report["seconds"].setdefault(name, {})[allocation] = round(time.perf_counter() - t0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: report[k] for k in ("curves", "to85", "to90")}, indent=1))
    return 0


def _reach(curve: list[float], level: float) -> int | None:
    return next((step for step, value in enumerate(curve) if value >= level), None)


def _sam():
    from fewclick.predict.encoder import ImageEncoder
    from fewclick.predict.pretrained import PretrainedModelError, default_model_files
    from fewclick.predict.sam import SamPredictor

    try:
        encoder, decoder = default_model_files()
    except PretrainedModelError as exc:
        print(f"sam_compete left out: {exc}")
        return None
    return SamPredictor(ImageEncoder(encoder), decoder)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--train", type=Path, required=True, help="the training part (any readable format with masks)"
    )
    p.add_argument("--test", type=Path, required=True, help="the held-out part")
    p.add_argument("--out", type=Path, required=True, help="the JSON to write")
    p.add_argument("--work", type=Path, default=Path("out/fullimage"), help="where models go")
    p.add_argument(
        "--quick", action="store_true", help=f"at most {QUICK_IMAGES} test images, steps 0..{QUICK_STEPS}"
    )
    p.add_argument("--min-region", type=float, default=MIN_REGION, help="regions under this share are void")
    p.add_argument("--seed", type=int, default=0)
    return p


if __name__ == "__main__":
    raise SystemExit(main())
