"""The training-free start before any detector: does a click find look-alikes without flooding?

    python benchmarks/training_free.py --train T --test H --out F.json [--images 10]
        [--clicks 1 3] [--boxes aligned] [--work DIR] [--limit N] [--sweep 0.8 0.85 0.9 ...]

On each of the first ``--images`` test images (sorted by name), for each k in ``--clicks``
the simulated user clicks the k reference objects nearest the image's centre (at their box
centres, with their classes) and the training-free start answers
(:class:`fewclick.predict.similar.SimilarityDetector`, as the app serves it before a
detector exists). Per image it records the reference objects, the proposals (the look-alikes
plus the clicked objects' own boxes), their ratio (issue 32's target: at most 3), and how
many look-alikes match a reference object of their class not clicked (IoU >= 0.5): the
precision, and the recall of the unclicked objects of the clicked classes.

``--limit N`` passes the app's cap (a few times the objects a finished image holds); without
it nothing is capped, the case of a project with no finished image. ``--sweep`` runs the
same on the training part for each relative threshold given and prints the table the
default was chosen from (never on the test part). When ``--test`` is the same path as
``--train`` the dataset is split by image (every 4th is test). Writes F.json and F.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch
from _common import add_work, read_split, run_record, work_folder, write_report
from tqdm import tqdm

from fewclick.io.images import load_image
from fewclick.metrics.detection import box_iou
from fewclick.predict.encoder import ImageEncoder
from fewclick.predict.similar import SimilarityConfig, SimilarityDetector
from fewclick.types import Clicks

TARGET_RATIO = 3.0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    train_set, test_set = read_split(args.train, args.test, boxes=args.boxes)
    work = work_folder(args.work, "training_free", args.train, make=False)
    encoder = ImageEncoder(threads=args.threads, cache_dir=work / "embeddings")
    if args.sweep:
        records = sorted(train_set.images, key=lambda r: r.file_name)[: args.sweep_images]
        print(f"training part, first {len(records)} images, {args.clicks} clicks")
        for relative in args.sweep:
            config = SimilarityConfig(relative=relative)
            rows = _run(encoder, records, len(train_set.classes), args.clicks, config, args.limit)
            print(f"relative {relative:.2f}: " + _summary_line(rows, args.clicks))
        return 0
    records = sorted(test_set.images, key=lambda r: r.file_name)[: args.images]
    config = SimilarityConfig()
    rows = _run(encoder, records, len(test_set.classes), args.clicks, config, args.limit)
    report = {
        "dataset": str(args.test),
        **run_record("load_average"),
        "config": dataclasses.asdict(config),
        "limit": args.limit,
        "target_ratio": TARGET_RATIO,
        "images": rows,
        "summary": {str(k): _summary(rows, k) for k in args.clicks},
    }
    write_report(report, args.out)
    _plot(rows, args.clicks, args.out.with_suffix(".png"), Path(args.test).name)
    for k in args.clicks:
        print(f"k = {k}: " + _summary_line(rows, [k]))
    return 0


def _run(encoder, records, num_classes: int, ks: list[int], config, limit: int | None) -> list[dict]:
    detector = SimilarityDetector(num_classes, encoder, config=config)
    rows = []
    for rec in tqdm(records, desc="images", unit="image"):
        image = load_image(rec.path)
        detector.set_image(image, rec.file_name)
        boxes = np.asarray(rec.objects.boxes, np.float32)
        labels = np.asarray(rec.objects.labels, np.int64)
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        h, w = image.shape[:2]
        order = np.argsort(np.linalg.norm(centres - [w / 2, h / 2], axis=1), kind="stable")
        row = {"file_name": rec.file_name, "objects": len(boxes), "clicks": {}}
        for k in ks:
            picked = order[:k]
            clicks = Clicks(centres[picked], labels[picked], np.ones(len(picked), bool))
            found = detector.predict(clicks, limit=limit)
            alike = found[found.scores < 1.0]  # the clicked objects come back at score 1
            row["clicks"][str(k)] = _score(alike, boxes, labels, picked, len(found))
        rows.append(row)
    return rows


def _score(alike, boxes: np.ndarray, labels: np.ndarray, picked: np.ndarray, proposals: int) -> dict:
    """Look-alikes against the unclicked reference objects of the clicked classes (IoU >= 0.5,
    each object matched once, best score first)."""
    classes = set(labels[picked].tolist())
    left = np.array([i for i in range(len(boxes)) if i not in set(picked.tolist()) and labels[i] in classes])
    matched = 0
    if len(alike) and len(left):
        iou = box_iou(alike.boxes, boxes[left])
        iou[alike.labels[:, None] != labels[left][None, :]] = 0
        free = np.ones(len(left), bool)
        for i in np.argsort(-alike.scores, kind="stable"):
            j = int(np.argmax(np.where(free, iou[i], -1)))
            if free[j] and iou[i, j] >= 0.5:
                free[j], matched = False, matched + 1
    return {
        "proposals": proposals,
        "ratio": proposals / max(len(boxes), 1),
        "look_alikes": len(alike),
        "matched": matched,
        "precision": matched / len(alike) if len(alike) else None,
        "recall": matched / len(left) if len(left) else None,
    }


def _summary(rows: list[dict], k: int) -> dict:
    cells = [r["clicks"][str(k)] for r in rows]
    ratios = np.array([c["ratio"] for c in cells])
    alike = sum(c["look_alikes"] for c in cells)
    matched = sum(c["matched"] for c in cells)
    left = [c["matched"] / c["recall"] for c in cells if c["recall"]]
    return {
        "images": len(cells),
        "max_ratio": float(ratios.max()) if len(ratios) else None,
        "images_over_target": int((ratios > TARGET_RATIO).sum()),
        "precision": matched / alike if alike else None,
        "recall": matched / sum(left) if left else None,
        "images_with_no_look_alike": sum(c["look_alikes"] == 0 for c in cells),
    }


def _summary_line(rows: list[dict], ks: list[int]) -> str:
    parts = []
    for k in ks:
        s = _summary(rows, k)
        over = f"over {TARGET_RATIO:g}x on {s['images_over_target']}/{s['images']}"
        found = f"precision {_f(s['precision'])}, recall {_f(s['recall'])}"
        parts.append(
            f"k={k} max ratio {s['max_ratio']:.1f}, {over}, {found}, "
            f"nothing found on {s['images_with_no_look_alike']}"
        )
    return " | ".join(parts)


def _f(v) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def _plot(rows: list[dict], ks: list[int], path: Path, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5))
    x = np.arange(len(rows))
    width = 0.8 / len(ks)
    for i, k in enumerate(ks):
        ax.bar(x + i * width, [r["clicks"][str(k)]["ratio"] for r in rows], width, label=f"{k} click(s)")
    ax.axhline(TARGET_RATIO, color="k", ls="--", lw=1, label=f"target: at most {TARGET_RATIO:g}x")
    ax.set_xticks(x + 0.4 - width / 2, [str(r["objects"]) for r in rows])
    ax.set_xlabel("test image (its reference objects)")
    ax.set_ylabel("proposals / reference objects")
    ax.set_title(f"{name}: the training-free start's proposals per image")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", required=True, type=Path)
    p.add_argument("--test", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--images", type=int, default=10, help="the first N test images")
    p.add_argument("--clicks", type=int, nargs="+", default=[1, 3])
    p.add_argument("--boxes", choices=["auto", "aligned"], default="auto")
    add_work(p, "where the encoder's cache goes")
    p.add_argument("--limit", type=int, help="the app's cap on look-alikes (none: no finished image yet)")
    p.add_argument("--sweep", type=float, nargs="+", help="relative bars to compare on the training part")
    p.add_argument("--sweep-images", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    return p


if __name__ == "__main__":
    sys.exit(main())
