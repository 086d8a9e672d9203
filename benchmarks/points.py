"""Points benchmark: point localizers trained on coarse, self-refined, CPR-refined and exact points.

    python benchmarks/points.py --train PATH --test PATH --out FILE.json [--quick] [--budget-minutes N]

When ``--test`` is the same path as ``--train``, the dataset is split by image (sorted
names, every 4th image is test). Runs :func:`fewclick.protocols.points.run_points_protocol`
(coarse points simulated on the training part, CPRNet, the pseudo-box detector and
self-refinement, four localizers) and writes FILE.json and FILE.png (point mAP per tau,
and the relative-position heatmaps of the paper's Figure 6).

A dataset whose ground truth is points only (``crchisto_phenotypes``) has nothing to
refine: the localizer is trained on its points and scored against boxes of
``--point-box`` pixels centred on the test points, so tau 1.0 accepts a point within
half that side of a true centre (tau 0.5: a quarter).

Models go to ``--work`` (default ``out/bench_points/<dataset>``); the folder is emptied
first, as every number here depends on the coarse points drawn for this run.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from fewclick.io import read_dataset
from fewclick.io.dataset import Dataset, split_by_image
from fewclick.models.detector import DetectorConfig
from fewclick.predict.detect import ClickDetector
from fewclick.protocols import json_ready
from fewclick.protocols.points import (
    VARIANTS,
    PartImage,
    PointsConfig,
    localize,
    points_dataset,
    run_points_protocol,
    score,
)
from fewclick.train.detect import TrainConfig, train_detector
from fewclick.types import Objects


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    train_set, test_set = _split(args.train, args.test)
    minutes = args.budget_minutes if args.budget_minutes is not None else (1.5 if args.quick else 4.0)
    work = args.work or Path("out/bench_points") / Path(args.train).name
    shutil.rmtree(work, ignore_errors=True)
    torch.set_num_threads(2)
    report: dict = {
        "train": str(args.train),
        "test": str(args.test),
        "train_images": len(train_set),
        "test_images": len(test_set),
        "budget_minutes": minutes,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or 'cpu'}, {torch.get_num_threads()} threads",
    }
    started = time.perf_counter()
    if _points_only(train_set):
        report.update(_localizer_only(train_set, test_set, work, minutes, args))
    else:
        config = PointsConfig(
            radius=args.radius,
            level=args.level,
            cpr_minutes=minutes,
            localizer_minutes=minutes,
            seed=args.seed,
        )
        report.update(run_points_protocol(train_set, test_set, work, config))
        _plot(report, args.out.with_suffix(".png"), Path(args.train).name)
        report.pop("relative")
    report["total_minutes"] = round((time.perf_counter() - started) / 60, 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(json_ready(report), indent=1))
    print(f"wrote {args.out}")
    return 0


def _points_only(dataset: Dataset) -> bool:
    objs = [r.objects for r in dataset.images if len(r.objects)]
    return bool(objs) and all(np.isnan(o.boxes).all() and o.points is not None for o in objs)


def _localizer_only(train: Dataset, test: Dataset, work: Path, minutes: float, args) -> dict:
    """Train the localizer on the ground-truth points; score it against boxes around the test points."""
    half = args.point_box / 2
    train_images, train_points = _point_images(train)
    test_images, _ = _point_images(test, half)
    started = time.perf_counter()
    path = train_detector(
        points_dataset(train_images, train_points, list(train.classes)),
        work / "center",
        DetectorConfig(num_classes=len(train.classes), method="plain", points_only=True),
        TrainConfig(budget_minutes=minutes, seed=args.seed),
    )
    train_minutes = round((time.perf_counter() - started) / 60, 2)
    preds = localize(ClickDetector.load(path), test_images, "localize")
    result = score(preds, test_images, len(train.classes), (0.5, 1.0, 2.0))
    print(f"localizer: {result}")
    return {
        "center": result,
        "train_minutes": {"center": train_minutes},
        "point_box_px": args.point_box,
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
    taus = ("mAP_0.5", "mAP_1.0", "mAP_2.0")
    names = ["pseudo_box", *VARIANTS]
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.2))
    x = np.arange(len(names))
    for i, tau in enumerate(taus):
        axes[0].bar(x + (i - 1) * 0.27, [report[n][tau] for n in names], 0.27, label=f"tau {tau[4:]}")
    axes[0].set_xticks(x, [n.replace("_", "\n") for n in names])
    axes[0].set_ylabel("point mAP (test part)")
    axes[0].set_title(f"{name}: localizers")
    axes[0].legend(fontsize=8)
    for ax, key in zip(axes[1:], ("coarse", "self_refined", "cpr"), strict=True):
        rel = np.asarray(report["relative"][key])
        ax.hist2d(rel[:, 0], rel[:, 1], bins=25, range=[[-0.5, 0.5], [-0.5, 0.5]], cmap="magma")
        ax.set_title(f"{key.replace('_', ' ')} points, RSV {report['rsv'][key]:.4f}")
        ax.set_xlabel("(x - xc) / w")
        ax.set_aspect("equal")
    axes[1].set_ylabel("(y - yc) / h")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def _split(train: Path, test: Path) -> tuple[Dataset, Dataset]:
    if Path(train).resolve() == Path(test).resolve():
        data = read_dataset(train)
        return split_by_image(data, 4, "train"), split_by_image(data, 4, "test")
    return read_dataset(train), read_dataset(test)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True, type=Path)
    p.add_argument("--test", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--quick", action="store_true", help="1.5 min per training instead of 4")
    p.add_argument("--budget-minutes", type=float, help="minutes for each of the six trainings")
    p.add_argument("--radius", type=int, help="CPR bag radius R in feature cells (default: from object size)")
    p.add_argument("--level", type=int, default=4, choices=(4, 8), help="CPRNet feature stride")
    p.add_argument("--point-box", type=float, default=16.0, help="points-only data: scoring box side, px")
    p.add_argument("--work", type=Path)
    p.add_argument("--seed", type=int, default=0)
    return p


if __name__ == "__main__":
    sys.exit(main())
