"""Points benchmark: point localizers trained on coarse, self-refined, CPR-refined and exact points.

    python benchmarks/points.py --train PATH --test PATH --out FILE.json [--quick] [--seeds N]
        [--budget-minutes N | --steps N]

When ``--test`` is the same path as ``--train``, the dataset is split by image (sorted
names, every 4th image is test). Runs :func:`fewclick.protocols.points.run_points_protocol`
(coarse points simulated on the training part, CPRNet, the pseudo-box detector and
self-refinement, four localizers) and writes FILE.json and FILE.png (point mAP per tau,
and the relative-position heatmaps of the paper's Figure 6).

A dataset whose ground truth is points only (``crchisto_phenotypes``) has nothing to
refine: the localizer is trained on its points and scored against boxes of
``--point-box`` pixels centred on the test points, so tau 1.0 accepts a point within
half that side of a true centre (tau 0.5: a quarter).

Budgets are step counts, so a busy machine gets the same result, only later: a budget in
minutes is ``STEPS_PER_MINUTE`` steps a minute (``--quick``: 1.5 minutes, 150 steps per
training). With ``--seeds N`` (``--quick``: 3) every localizer is trained and scored N
times; ``mAP_<tau>`` is the mean over the seeds that did not collapse (see
:mod:`fewclick.protocols.seeds`), ``mAP_<tau>_std`` their standard deviation, ``collapsed``
the seeds left out and ``per_seed`` every seed's scores.

Models go to ``--work`` (default ``out/bench_points/<dataset>``); the folder is emptied
first, as every number here depends on the coarse points drawn for this run.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from _common import add_work, load_averages, read_split, run_record, work_folder, write_report

from fewclick.io.dataset import Dataset
from fewclick.protocols.points import (
    VARIANTS,
    PartImage,
    PointsConfig,
    ProtocolRun,
    points_dataset,
    run_points_protocol,
)
from fewclick.types import Objects

STEPS_PER_MINUTE = 100  # a minute of budget, in steps (~an idle 2-core machine, batch 8 of 256 px)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    train_set, test_set = read_split(args.train, args.test)
    minutes = args.budget_minutes if args.budget_minutes is not None else (1.5 if args.quick else 4.0)
    steps = args.steps or round(minutes * STEPS_PER_MINUTE)
    seeds = args.seeds or (3 if args.quick else 1)
    work = work_folder(args.work, "points", args.train, make=False)
    shutil.rmtree(work, ignore_errors=True)
    torch.set_num_threads(2)
    report: dict = {
        "train": str(args.train),
        "test": str(args.test),
        "train_images": len(train_set),
        "test_images": len(test_set),
        "budget_minutes": round(steps / STEPS_PER_MINUTE, 2),
        "steps": steps,
        "seeds": seeds,
        **run_record(threads=torch.get_num_threads()),
        "load_average": {"start": load_averages()},
    }
    started = time.perf_counter()
    variants = None if args.variants is None else tuple(args.variants)
    config = PointsConfig(
        radius=args.radius, level=args.level, seed=args.seed, steps=steps, seeds=seeds, variants=variants
    )
    if _points_only(train_set):
        report.update(_localizer_only(train_set, test_set, work, config, args.point_box))
    else:
        report.update(run_points_protocol(train_set, test_set, work, config))
        _plot(report, args.out.with_suffix(".png"), Path(args.train).name)
        report.pop("relative")
    report["total_minutes"] = round((time.perf_counter() - started) / 60, 2)
    report["load_average"]["end"] = load_averages()
    write_report(report, args.out)
    print(f"wrote {args.out}")
    return 0


def _points_only(dataset: Dataset) -> bool:
    objs = [r.objects for r in dataset.images if len(r.objects)]
    return bool(objs) and all(np.isnan(o.boxes).all() and o.points is not None for o in objs)


def _localizer_only(
    train: Dataset, test: Dataset, work: Path, config: PointsConfig, point_box: float
) -> dict:
    """Train the localizer on the ground-truth points; score it against boxes around the test
    points (and, for the collapse check, around the training points)."""
    train_images, train_points = _point_images(train, point_box / 2)
    test_images, _ = _point_images(test, point_box / 2)
    classes = list(train.classes)
    run = ProtocolRun(config, work, classes, train_images, test_images, train_points)
    run.train_and_score("center", points_dataset(train_images, train_points, classes), points_only=True)
    print(f"localizer: {run.results['center']}")
    return {
        **run.results,
        "train_minutes": run.minutes,
        "point_box_px": point_box,
        "config": asdict(config),
        "counts": {
            "train_images": len(train_images),
            "train_objects": int(sum(len(p) for p in train_points)),
            "test_images": len(test_images),
            "test_objects": int(sum(len(im.objects) for im in test_images)),
        },
    }


def _point_images(dataset: Dataset, half: float | None = None) -> tuple[list[PartImage], list[np.ndarray]]:
    """Images of a points-only dataset: their points, and (with ``half``) objects whose
    boxes are ``2 * half`` pixels square around the points, for scoring."""
    from fewclick.io.images import load_image

    images, points = [], []
    for rec in dataset.images:
        image = load_image(rec.path)
        objs = rec.objects
        keep = np.isfinite(objs.points).all(1) if len(objs) else np.zeros(0, bool)
        pts = objs.points[keep].astype(np.float32)
        boxes = np.concatenate([pts - (half or 0), pts + (half or 0)], 1)
        kept = Objects(objs.labels[keep], boxes, ignore=objs.ignore[keep])
        empty = kept[np.zeros(0, np.int64)]
        images.append(PartImage(image, kept[~kept.ignore], kept[kept.ignore] if kept.ignore.any() else empty))
        points.append(pts[~kept.ignore])
    return images, points


def _plot(report: dict, out: Path, name: str) -> None:
    """Point mAP per localizer (mean over the seeds kept, their standard deviation as error
    bars; a localizer whose every seed collapsed has no bar) and the relative positions."""
    taus = ("mAP_0.5", "mAP_1.0", "mAP_2.0")
    names = [n for n in ("pseudo_box", *VARIANTS) if n in report]
    sets = list(report["relative"])
    fig, axes = plt.subplots(1, 1 + len(sets), figsize=(4.25 * (1 + len(sets)), 4.2))
    x = np.arange(len(names))
    for i, tau in enumerate(taus):
        means = [_value(report[n][tau]) for n in names]
        stds = [_value(report[n].get(f"{tau}_std"), 0.0) for n in names]
        axes[0].bar(x + (i - 1) * 0.27, means, 0.27, yerr=stds, capsize=2, label=f"tau {tau[4:]}")
    axes[0].set_xticks(x, [n.replace("_", "\n") for n in names])
    axes[0].set_ylabel(f"point mAP (test part), mean of {report['seeds']} seeds")
    axes[0].set_title(f"{name}: localizers")
    axes[0].legend(fontsize=8)
    for ax, key in zip(axes[1:], sets, strict=True):
        rel = np.asarray(report["relative"][key])
        ax.hist2d(rel[:, 0], rel[:, 1], bins=25, range=[[-0.5, 0.5], [-0.5, 0.5]], cmap="magma")
        ax.set_title(f"{key.replace('_', ' ')} points, RSV {report['rsv'][key]:.4f}")
        ax.set_xlabel("(x - xc) / w")
        ax.set_aspect("equal")
    axes[1].set_ylabel("(y - yc) / h")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def _value(value: float | None, missing: float = float("nan")) -> float:
    return missing if value is None or np.isnan(value) else value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True, type=Path)
    p.add_argument("--test", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--quick", action="store_true", help="1.5 min per training instead of 4, 3 seeds")
    p.add_argument(
        "--budget-minutes", type=float, help=f"each training's budget, {STEPS_PER_MINUTE} steps a minute"
    )
    p.add_argument("--steps", type=int, help="each training's steps (instead of --budget-minutes)")
    p.add_argument("--seeds", type=int, help="trainings of each localizer (default 1, --quick 3)")
    p.add_argument("--radius", type=int, help="CPR bag radius R in feature cells (default: from object size)")
    p.add_argument("--level", type=int, default=4, choices=(4, 8), help="CPRNet feature stride")
    p.add_argument("--point-box", type=float, default=16.0, help="points-only data: scoring box side, px")
    add_work(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--variants", nargs="+", choices=list(VARIANTS), help="localizer variants to run (default: all)"
    )
    return p


if __name__ == "__main__":
    sys.exit(main())
