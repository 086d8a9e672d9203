"""Tight boxes: a detector's proposal refined by SAM's box prompt (box -> mask -> box), how
often it is at manual quality with and without the refinement (issue 32's "tight boxes").

    python benchmarks/tight_boxes.py --train T --test H --out F.json [--train-images 10]
        [--steps 273] [--images 30] [--boxes aligned] [--work DIR] [--model PT]

C3Det on ImageNet EfficientNet-Lite0 trains on the first ``--train-images`` training images
for ``--steps`` steps (273: the app's 60 s at its idle speed), at the input scale the app
picks (or ``--model`` is a detector trained elsewhere). On the first ``--images`` test
images it gives its proposals on open (no click); each proposal that overlaps an object of
its class (IoU >= 0.3, greedily by score) is refined by SAM: the mask from the proposal as a
box prompt, the tight box around it (the proposal kept when the mask is empty). Reported per
class and overall: the share of those proposals at IoU >= 0.7 with their object (manual
quality in ``campaign.py``) and the median IoU, as proposed and refined; and the same on the
training images, where a project could decide per class whether to refine (``choice``:
:func:`fewclick.predict.own_box.tight_classes`), with the share that choice gives on the
test images. When ``--test`` is the same path as ``--train`` the dataset is split by image
(every 4th is test). Writes F.json and F.png.
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

from fewclick.io.dataset import Dataset
from fewclick.io.images import load_image
from fewclick.metrics.detection import KEPT_IOU, paired_box_iou
from fewclick.predict.detect import ClickDetector
from fewclick.predict.encoder import ImageEncoder
from fewclick.predict.own_box import near_pairs, tight_box, tight_classes
from fewclick.predict.sam import SamPredictor
from fewclick.train.detect import TrainConfig, detector_config_for, train_detector


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    train_set, test_set = read_split(args.train, args.test, boxes=args.boxes)
    work = work_folder(args.work, "tight_boxes", args.train, make=False)
    fit = Dataset(
        train_set.classes,
        sorted([r for r in train_set.images if len(r.objects)], key=lambda r: r.file_name)[
            : args.train_images
        ],
        train_set.format,
        train_set.root,
    )
    if args.model is None:
        args.model = _train(fit, work, args.steps, args.threads)
    detector = ClickDetector.load(args.model)
    sam = SamPredictor(
        ImageEncoder(threads=args.threads, cache_dir=work / "embeddings"), threads=args.threads
    )
    test_records = sorted(test_set.images, key=lambda r: r.file_name)[: args.images]
    on_fit = _proposed(detector, sam, fit.images, "training images")
    on_test = _proposed(detector, sam, test_records, "test images")
    names = list(test_set.classes)
    tight = tight_classes(on_fit["labels"], on_fit["theirs"], on_fit["proposed"], on_fit["refined"])
    choice = {int(c): int(c) in tight for c in np.unique(on_fit["labels"])}
    chosen = np.array(
        [
            r if choice.get(int(c), False) else p
            for p, r, c in zip(on_test["proposed"], on_test["refined"], on_test["labels"])
        ],
        np.float32,
    ).reshape(-1, 4)
    report = {
        "dataset": str(args.test),
        **run_record("load_average"),
        "train_images": len(fit.images),
        "model": str(args.model),
        "steps": args.steps,
        "input_scale": detector.input_scale,
        "test_images": len(test_records),
        "training_images": _scores(on_fit, names),
        "test": _scores(on_test, names),
        "choice": {names[c]: v for c, v in choice.items()},
        "test_with_choice": _summary(paired_box_iou(on_test["theirs"], chosen)),
    }
    write_report(report, args.out)
    _plot(on_test, args.out.with_suffix(".png"), Path(args.test).name)
    for key in ("proposed", "refined"):
        s = report["test"][key]["all"]
        print(f"{key:>9}: {s['boxes']} on objects, IoU >= 0.7 {s['iou_0.7']}, median {s['median_iou']}")
    print(f"   choice: {report['choice']} -> IoU >= 0.7 {report['test_with_choice']['iou_0.7']}")
    return 0


def _train(fit: Dataset, work: Path, steps: int, threads: int) -> Path:
    """A C3Det detector on an ImageNet backbone trained on ``fit`` for ``steps`` steps."""
    config = TrainConfig(
        steps=steps,
        min_steps=0,
        warmup_steps=10,
        val_every=10**9,
        threads=threads,
        input_scale="auto",
    )
    net = detector_config_for(fit, "c3det", backbone="imagenet")
    return train_detector(fit, work / "detector", net, config)


def _proposed(detector: ClickDetector, sam: SamPredictor, records, what: str) -> dict[str, np.ndarray]:
    """Every proposal on open near an object of its class, its object's box and SAM's tight box."""
    labels, theirs, proposed, refined = [], [], [], []
    for rec in tqdm(records, desc=what, unit="image"):
        image = load_image(rec.path)
        detector.set_image(image, key=rec.file_name)
        det = detector.predict()
        keep = ~np.asarray(rec.objects.ignore, bool)
        gt_boxes = np.asarray(rec.objects.boxes, np.float32)[keep]
        gt_labels = np.asarray(rec.objects.labels)[keep]
        pairs = near_pairs(det, gt_boxes, gt_labels)
        if not pairs:
            continue
        sam.set_image(image, key=rec.file_name)
        for i, j in pairs:
            labels.append(int(gt_labels[j]))
            theirs.append(gt_boxes[j])
            proposed.append(det.boxes[i])
            refined.append(tight_box(sam, det.boxes[i]))
    return {
        "labels": np.array(labels, np.int64),
        "theirs": np.array(theirs, np.float32).reshape(-1, 4),
        "proposed": np.array(proposed, np.float32).reshape(-1, 4),
        "refined": np.array(refined, np.float32).reshape(-1, 4),
    }


def _summary(iou: np.ndarray) -> dict:
    return {
        "boxes": int(len(iou)),
        "iou_0.7": round(float((iou >= KEPT_IOU).mean()), 3) if len(iou) else None,
        "median_iou": round(float(np.median(iou)), 3) if len(iou) else None,
    }


def _scores(found: dict, names: list[str]) -> dict:
    out = {}
    for key in ("proposed", "refined"):
        iou = paired_box_iou(found["theirs"], found[key])
        out[key] = {
            "all": _summary(iou),
            "per_class": {names[c]: _summary(iou[found["labels"] == c]) for c in np.unique(found["labels"])},
        }
    return out


def _plot(found: dict, path: Path, name: str) -> None:
    series = [
        (paired_box_iou(found["theirs"], found["proposed"]), "the detector's proposal"),
        (paired_box_iou(found["theirs"], found["refined"]), "refined by SAM's box prompt"),
    ]
    title = f"{name}: proposals on open, as proposed and refined"
    plot_iou_histograms(path, title, "proposals on an object", series)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train", required=True, type=Path)
    p.add_argument("--test", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--train-images", type=int, default=10, help="the detector trains on the first N")
    p.add_argument("--steps", type=int, default=273, help="training steps (273: 60 s at Lite0's idle speed)")
    p.add_argument("--images", type=int, default=30, help="the first N test images")
    p.add_argument("--boxes", choices=("auto", "aligned"), default="auto")
    add_work(p, "where the detector and the encoder's cache go")
    p.add_argument("--model", type=Path, help="a trained detector (last.pt) instead of training one")
    p.add_argument("--threads", type=int, default=1)
    return p


if __name__ == "__main__":
    sys.exit(main())
