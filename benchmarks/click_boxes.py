"""The clicked object's own box: how often SAM's box from a click at an object's centre is at
manual quality, as SAM gives it and moved by the edge offsets learnt from finished images.

    python benchmarks/click_boxes.py --train T --test H --out F.json [--fit-images 10]
        [--images 30] [--work DIR]

SAM's click box is the one the app serves for a click the detector leaves unboxed and for
every click of the training-free start (:meth:`SimilarityDetector.clicked_box`, with the
class's median box side from the fitting images, as the app passes it). The offsets
(:class:`fewclick.predict.own_box.EdgeOffsets`) are fitted on the first ``--fit-images``
training images, as a project's first finished images (the person's boxes against SAM's
click boxes at their centres), then every object of the first ``--images`` test images is
clicked once at its centre. Reported: the share at IoU >= 0.5 and >= 0.7 (manual quality
in ``campaign.py``) and the median IoU, without and with the offsets, overall and per
class. When ``--test`` is the same path as ``--train`` the dataset is split by image (every
4th is test). Writes F.json and F.png (the IoU's distribution both ways).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from _common import add_work, read_split, run_record, work_folder, write_report
from _plots import plot_iou_histograms
from tqdm import tqdm

from fewclick.io.images import load_image
from fewclick.metrics.detection import paired_box_iou
from fewclick.predict.encoder import ImageEncoder
from fewclick.predict.own_box import EdgeOffsets
from fewclick.predict.similar import SimilarityDetector


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    train_set, test_set = read_split(args.train, args.test)
    work = work_folder(args.work, "click_boxes", args.train, make=False)
    detector = SimilarityDetector(
        len(test_set.classes), ImageEncoder(threads=args.threads, cache_dir=work / "embeddings")
    )
    fit_records = sorted(train_set.images, key=lambda r: r.file_name)[: args.fit_images]
    sizes = _sizes(fit_records)
    fit = _clicked(detector, fit_records, sizes, "fitting images")
    offsets = EdgeOffsets.fit(fit["labels"], fit["theirs"], fit["sam"])
    test_records = sorted(test_set.images, key=lambda r: r.file_name)[: args.images]
    test = _clicked(detector, test_records, sizes, "test images")
    moved = offsets.apply(test["sam"], test["labels"])
    names = list(test_set.classes)
    report = {
        "dataset": str(args.test),
        **run_record("load_average"),
        "fit_images": len(fit_records),
        "fit_objects": len(fit["labels"]),
        "test_images": len(test_records),
        "offsets": {names[c]: v.round(4).tolist() for c, v in offsets.per_class.items()},
        "sam": _scores(test["theirs"], test["sam"], test["labels"], names),
        "with_offsets": _scores(test["theirs"], moved, test["labels"], names),
    }
    write_report(report, args.out)
    _plot(test["theirs"], test["sam"], moved, args.out.with_suffix(".png"), Path(args.test).name)
    for key in ("sam", "with_offsets"):
        s = report[key]["all"]
        print(f"{key:>12}: {s['objects']} objects, IoU >= 0.5 {s['iou_0.5']:.3f}, >= 0.7 {s['iou_0.7']:.3f}, "
              f"median {s['median_iou']:.3f}")  # fmt: skip
    return 0


def _sizes(records) -> dict[int, float]:
    """The median box side per class over ``records``: what the app passes from finished images."""
    sides: dict[int, list[float]] = {}
    for rec in records:
        for b, c in zip(rec.objects.boxes, rec.objects.labels):
            sides.setdefault(int(c), []).append(float(np.sqrt(max(b[2] - b[0], 1) * max(b[3] - b[1], 1))))
    return {c: float(np.median(v)) for c, v in sides.items()}


def _clicked(detector, records, sizes: dict, what: str) -> dict[str, np.ndarray]:
    """SAM's click box at the centre of every object of ``records`` (ignore-type ones left out)."""
    labels, theirs, sam = [], [], []
    for rec in tqdm(records, desc=what, unit="image"):
        detector.set_image(load_image(rec.path), key=rec.file_name)
        keep = ~np.asarray(rec.objects.ignore, bool)
        for b, c in zip(np.asarray(rec.objects.boxes)[keep], np.asarray(rec.objects.labels)[keep]):
            sam.append(detector.clicked_box((b[0] + b[2]) / 2, (b[1] + b[3]) / 2, int(c), sizes))
            labels.append(int(c))
            theirs.append(b)
    return {
        "labels": np.array(labels, np.int64),
        "theirs": np.array(theirs, np.float32).reshape(-1, 4),
        "sam": np.array(sam, np.float32).reshape(-1, 4),
    }


def _scores(theirs: np.ndarray, boxes: np.ndarray, labels: np.ndarray, names: list[str]) -> dict:
    iou = paired_box_iou(theirs, boxes)

    def summary(pick: np.ndarray) -> dict:
        v = iou[pick]
        return {
            "objects": int(len(v)),
            "iou_0.5": float((v >= 0.5).mean()) if len(v) else None,
            "iou_0.7": float((v >= 0.7).mean()) if len(v) else None,
            "median_iou": float(np.median(v)) if len(v) else None,
        }

    out = {"all": summary(np.ones(len(iou), bool))}
    out["per_class"] = {names[c]: summary(labels == c) for c in np.unique(labels)}
    return out


def _plot(theirs: np.ndarray, sam: np.ndarray, moved: np.ndarray, path: Path, name: str) -> None:
    series = [
        (paired_box_iou(theirs, sam), "SAM's click box"),
        (paired_box_iou(theirs, moved), "moved by the learnt edge offsets"),
    ]
    plot_iou_histograms(path, f"{name}: the clicked object's own box", "objects", series)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train", required=True, type=Path)
    p.add_argument("--test", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--fit-images", type=int, default=10, help="the first N training images fit the offsets")
    p.add_argument("--images", type=int, default=30, help="the first N test images")
    add_work(p, "where the encoder's cache goes")
    p.add_argument("--threads", type=int, default=1)
    return p


if __name__ == "__main__":
    sys.exit(main())
