"""Click-to-detect from the first finished images: the learning curve a user lives through.

    python benchmarks/detect_fewshot.py --train T --test H --images 0 2 5 10 20 --out F.json
        [--quick] [--work DIR] [--boxes aligned] [--budget-seconds 60] [--seeds N]

For each n, every method trains on the first n images of T (sorted by name) within a
budget of ``--budget-seconds`` (60 s, the app's), set in steps: the budget over
``IDLE_SECONDS_PER_STEP[method]``, the speed measured on an idle machine
(``train_seconds_idle`` is steps times that speed; ``train_seconds`` is the wall clock of
this run). Then C3Det's protocol runs on H at k = 0, 1, 3, 5, 10, 20 clicks. Methods:

- ``pretrained``: C3Det on the frozen maps of the pretrained encoder (a neck and heads train);
  the clicks of a class none of the n images holds go to the training-free start, as in the app;
- ``scratch``: today's C3Det, from scratch on the same n images in the same budget;
- ``imagenet``: C3Det on EfficientNet-Lite0 from its ImageNet weights, fine-tuned end to end
  (the pretrained part at a tenth of the rate, its batch-norm statistics frozen), same budget;
- ``imagenet_lite2``: the same on EfficientNet-Lite2 (larger, slower per step), same budget;
- ``training_free``: the n = 0 curve, feature similarity to the clicked objects.

With ``--seeds N`` every trained method runs N times (seeds ``--seed`` .. ``--seed + N - 1``):
``mAP_mean`` is then the mean over seeds, ``mAP_std`` their standard deviation and
``per_seed`` each seed's curve (runs of one method differ by up to 0.15 mAP between seeds).
Without it, ``mAP_std`` is over the protocol's sessions, as before.

Encoding is counted apart (``encode_seconds``: the encoder's time on the n images), as in
the app a finished image was encoded while it was annotated. When ``--test`` is the same
path as ``--train`` the dataset is split by image (every 4th is test). Models go to
``--work`` (default ``out/bench_fewshot/<dataset>``; each run trains afresh). Writes
F.json and F.png (mAP at k = 5 against n, and the curves against k).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from _common import add_work, load_average, read_split, run_record, work_folder, write_report

from fewclick.io.dataset import Dataset
from fewclick.io.images import load_image
from fewclick.predict.detect import ClickDetector
from fewclick.predict.encoder import ImageEncoder
from fewclick.predict.features import image_features, training_tiles
from fewclick.predict.similar import SimilarityDetector
from fewclick.protocols.detect import ProtocolConfig, run_protocol
from fewclick.protocols.detect_run import load_items
from fewclick.train.detect import TrainConfig, detector_config_for, train_detector
from fewclick.train.detect_pretrained import (
    PRETRAINED_SECONDS_PER_STEP,
    FeatureTile,
    PretrainedTrainConfig,
    pretrained_config,
    train_pretrained_detector,
)
from fewclick.types import Click, Clicks

BUDGET_S = 60.0
#: Seconds per training step on this machine's 2 cores with nothing else running, measured
#: 2026-11-23 by ``--calibrate`` (100 steps each on bccd and hit_uav: scratch 0.145 and 0.138).
#: imagenet: 1.56 times scratch's time per step, measured side by side on 2026-11-25 (bccd,
#: ``--calibrate`` at load 1.5-2: scratch 0.523 s, imagenet 0.818 s), at scratch's 0.14 s.
#: imagenet_lite2: 1.4 times imagenet's time per step, measured side by side on 2026-11-25 (hit_uav,
#: 5 images, crops of 256, batches of 8, 2 x 30 steps each at load 4: Lite0 3.37 s, Lite2 4.73 s).
LITE2_OVER_LITE0 = 1.4
IDLE_SECONDS_PER_STEP = {
    "pretrained": PRETRAINED_SECONDS_PER_STEP,
    "scratch": 0.14,
    "imagenet": 0.22,
    "imagenet_lite2": round(0.22 * LITE2_OVER_LITE0, 3),
}
KS = (0, 1, 3, 5, 10, 20)
METHODS = ("pretrained", "scratch", "imagenet", "imagenet_lite2", "training_free")
#: the EfficientNet-Lite variant of each method on an ImageNet backbone
IMAGENET_VARIANT = {"imagenet": "lite0", "imagenet_lite2": "lite2"}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    train_set, test_set = read_split(args.train, args.test, boxes=args.boxes)
    train_set.images = sorted(train_set.images, key=lambda r: r.file_name)
    work = work_folder(args.work, "fewshot", args.train)
    encoder = ImageEncoder(threads=args.threads, cache_dir=work / "embeddings")
    if args.calibrate:
        print(json.dumps(_calibrate(train_set, encoder, work)))
        return 0
    if args.only_latency:
        return _only_latency(args, work, encoder, train_set, test_set)
    items = load_items(test_set)
    if args.quick:
        items = items[: args.quick_images]
    counts = sorted(set(args.images))
    if counts[-1] > len(train_set):
        raise SystemExit(f"--images asks for {counts[-1]} training images; {args.train} has {len(train_set)}")
    # only the methods on SAM's features need the images encoded (ImageNet and scratch do not)
    uses_sam = bool({"pretrained", "training_free"} & set(args.methods))
    encode_s = _encode_all(encoder, train_set, counts[-1], items, work) if uses_sam else [0.0] * counts[-1]
    protocol = ProtocolConfig(sessions=2 if args.quick else args.sessions, seed=args.seed, ks=KS)
    budget = args.budget_seconds
    steps = {m: max(int(round(budget / s)), 1) for m, s in IDLE_SECONDS_PER_STEP.items()}
    report = {
        "train": str(args.train),
        "test": str(args.test),
        "train_images": len(train_set),
        "test_images": len(items),
        "boxes": args.boxes,
        "budget_seconds": budget,
        "seeds": [args.seed + i for i in range(args.seeds)],
        "imagenet_bn": args.imagenet_bn,
        "input_scale": args.input_scale,
        "steps": steps,
        "idle_seconds_per_step": IDLE_SECONDS_PER_STEP,
        "sessions": protocol.sessions,
        **run_record("load_average_start", threads=torch.get_num_threads()),
        "results": {m: {} for m in args.methods},
    }
    options = {"imagenet_bn": args.imagenet_bn, "input_scale": args.input_scale}
    run = _Run(encoder, items, protocol, steps, report["seeds"], work, options, encode_s)
    for n in counts:
        subset = Dataset(train_set.classes, train_set.images[:n], train_set.format, train_set.root)
        for method in args.methods:
            if (method == "training_free") != (n == 0):
                continue
            report["results"][method][str(n)] = run.entry(method, subset, n)
            write_report(report, args.out)
    report["latency_ms"] = _latency(work, counts, items, encoder, train_set.classes)
    report["load_average_end"] = load_average()
    write_report(report, args.out)
    plot(report, Path(args.out).with_suffix(".png"), Path(args.train).name)
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.png')}")
    return 0


def _only_latency(args, work: Path, encoder: ImageEncoder, train_set: Dataset, test_set: Dataset) -> int:
    """Re-measure ``latency_ms`` in ``--out`` with the models in ``work``, every other key kept."""
    report = json.loads(Path(args.out).read_text())
    items = load_items(test_set)[:1]
    for image, _ in items:
        image_features(encoder, image)
    counts = sorted(int(n) for n in report["results"].get("pretrained", {"0": 0}))
    report["latency_ms"] = _latency(work, counts, items, encoder, train_set.classes)
    report["latency_load_average"] = load_average()
    write_report(report, args.out)
    print(json.dumps(report["latency_ms"]))
    return 0


@dataclass(frozen=True)
class _Run:
    """What every (method, n) of a run shares: the encoder, the test items and protocol,
    each method's steps, the seeds, the work folder, the training options and the seconds
    each training image took to encode."""

    encoder: ImageEncoder
    items: list
    protocol: ProtocolConfig
    steps: dict
    seeds: list[int]
    work: Path
    options: dict
    encode_s: list[float]

    def entry(self, method: str, subset: Dataset, n: int) -> dict:
        """``method`` trained on ``subset`` (the first ``n`` images) once per seed and
        scored: its curve (over seeds: mean, spread and each seed's), times and steps."""
        seeds, steps, options = self.seeds, self.steps, self.options
        runs, seconds = [], []
        for seed in seeds if n else seeds[:1]:
            started = time.perf_counter()
            folder = self.work / (f"{method}_{n}" if seed == seeds[0] else f"{method}_{n}_seed{seed}")
            predictor = _train(method, subset, self.encoder, folder, steps, seed, options)
            seconds.append(time.perf_counter() - started if n else 0.0)
            oriented = getattr(getattr(predictor, "config", None), "oriented", False)
            runs.append(
                run_protocol(predictor, self.items, len(subset.classes), self.protocol, oriented=oriented)
            )
        result = runs[0]
        entry = {
            "k": result.k,
            "mAP_mean": result.map_mean,
            "mAP_std": result.map_std,
            "clicked_recall": result.clicked_recall,
            "train_seconds": round(float(np.mean(seconds)), 1),
            "train_seconds_idle": round(steps[method] * IDLE_SECONDS_PER_STEP[method], 1) if n else 0.0,
            "encode_seconds": round(sum(self.encode_s[:n]), 1),
            "steps": steps.get(method) if n else 0,
        }
        if len(runs) > 1:  # over seeds: the mean, their spread, and each seed's curve
            curves = np.array([r.map_mean for r in runs])
            entry["mAP_mean"] = [round(float(v), 4) for v in curves.mean(0)]
            entry["mAP_std"] = [round(float(v), 4) for v in curves.std(0)]
            entry["clicked_recall"] = [
                round(float(v), 4) for v in np.mean([r.clicked_recall for r in runs], 0)
            ]
            entry["per_seed"] = {str(seed): r.map_mean for seed, r in zip(seeds, runs)}
        at5 = entry["mAP_mean"][KS.index(5)]
        print(f"{method} n={n}: mAP@5 clicks {at5:.3f}, trained {np.mean(seconds):.0f} s", flush=True)
        return entry


def _train(
    method: str,
    subset: Dataset,
    encoder: ImageEncoder,
    out: Path,
    steps: dict,
    seed: int,
    options: dict | None = None,
):
    """The predictor of ``method`` trained on ``subset`` (the training-free one for n = 0);
    ``options``: :class:`TrainConfig` fields of the scratch and ImageNet runs."""
    classes = subset.classes
    if method == "training_free":
        return SimilarityDetector(len(classes), encoder)
    shutil.rmtree(out, ignore_errors=True)
    if method == "pretrained":
        tiles = [
            FeatureTile(maps, objects, valid)
            for rec in subset.images
            for maps, objects, valid in training_tiles(encoder, _pixels(rec), rec.objects, rec.file_name)
        ]
        cfg = detector_config_for(subset, "c3det")
        config = pretrained_config(len(classes), cfg.oriented, cfg.points_only)
        train = PretrainedTrainConfig(steps=steps["pretrained"], seed=seed)
        path = train_pretrained_detector(tiles, classes, out, config, train)
        return ClickDetector.load(path, encoder=encoder)
    if method in IMAGENET_VARIANT:
        config = detector_config_for(subset, "c3det", backbone="imagenet", imagenet=IMAGENET_VARIANT[method])
    else:
        config = detector_config_for(subset, "c3det", backbone="scratch")
    train = TrainConfig(
        steps=steps[method],
        min_steps=0,
        warmup_steps=10,
        seed=seed,
        val_every=10**9,
        threads=torch.get_num_threads(),
        **(options or {}),
    )
    return ClickDetector.load(train_detector(subset, out, config, train, log=lambda _: None))


def _scale(text: str) -> float | str:
    return text if text == "auto" else float(text)


def _pixels(rec) -> np.ndarray:
    return rec.extra["pixels"] if rec.extra.get("pixels") is not None else load_image(rec.path)


def _encode_all(encoder: ImageEncoder, train_set: Dataset, n: int, items, work: Path) -> list[float]:
    """Encode the first ``n`` training images and the test images ahead of the runs (the
    cache serves them afterwards); the seconds each training image took, remembered in
    ``work/encode_seconds.json`` so that a re-run reports the first encoding's time."""
    store = work / "encode_seconds.json"
    known = json.loads(store.read_text()) if store.is_file() else {}
    out = []
    for rec in train_set.images[:n]:
        started = time.perf_counter()
        image_features(encoder, _pixels(rec), rec.file_name)
        known.setdefault(rec.file_name, time.perf_counter() - started)
        out.append(known[rec.file_name])
    store.write_text(json.dumps(known))
    for image, _ in items:
        image_features(encoder, image)
    return out


def _latency(work: Path, counts, items, encoder: ImageEncoder, classes) -> dict:
    """Per-click predict time on an encoded test image, as the app asks: sessions of 20
    clicks at random places, each predict with one click more than the last (the image's
    features and the earlier clicks' objects cached). p50 / p95 in ms over the clicks of 3
    sessions, for the pretrained detector trained on the most images and the training-free
    start; the load average is recorded beside it."""
    out = {}
    image = items[0][0]
    h, w = image.shape[:2]
    rng = np.random.default_rng(0)
    predictors = {"training_free": SimilarityDetector(len(classes), encoder)}
    largest = work / f"pretrained_{counts[-1]}" / "last.pt"
    if largest.is_file():
        predictors["pretrained"] = ClickDetector.load(largest, encoder=encoder)
    for name, predictor in predictors.items():
        times = []
        for _ in range(3):
            predictor.set_image(image)
            xy = rng.uniform(0, [w - 1, h - 1], (20, 2))
            labels = rng.integers(0, len(classes), 20)
            for m in range(1, 21):
                clicks = Clicks.from_list(
                    [Click(float(x), float(y), int(c)) for (x, y), c in zip(xy[:m], labels[:m])]
                )
                started = time.perf_counter()
                predictor.predict(clicks)
                times.append((time.perf_counter() - started) * 1000)
        out[name] = {
            "p50": round(float(np.percentile(times, 50)), 1),
            "p95": round(float(np.percentile(times, 95)), 1),
        }
    out["load_average"] = load_average()
    return out


def _calibrate(train_set: Dataset, encoder: ImageEncoder, work: Path) -> dict:
    """Seconds per step of the trainers on 5 images, 100 steps each (run it on an idle
    machine)."""
    subset = Dataset(train_set.classes, train_set.images[:5], train_set.format, train_set.root)
    out = {"load_average": load_average()}
    for method in ("pretrained", "scratch", "imagenet", "imagenet_lite2"):
        started = time.perf_counter()
        _train(
            method,
            subset,
            encoder,
            work / f"calibrate_{method}",
            dict.fromkeys(IDLE_SECONDS_PER_STEP, 100),
            0,
        )
        ckpt = torch.load(work / f"calibrate_{method}" / "last.pt", weights_only=False)
        out[method] = round(ckpt["elapsed_s"] / ckpt["step"], 3)
        out[f"{method}_wall"] = round(time.perf_counter() - started, 1)
    out["load_average_end"] = load_average()
    return out


STYLE = {
    "pretrained": ("pretrained features", "#d62728"),
    "scratch": ("from scratch", "#1f77b4"),
    "imagenet": ("ImageNet EfficientNet-Lite0", "#9467bd"),
    "imagenet_lite2": ("ImageNet EfficientNet-Lite2", "#8c564b"),
}


def plot(report: dict, path: Path, name: str) -> Path:
    """Left: mAP at 5 clicks against the number of training images (the training-free
    start at n = 0). Right: mAP against clicks for every n of the pretrained detector."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    at = KS.index(5)
    free = report["results"].get("training_free", {}).get("0")
    for method, (label, colour) in STYLE.items():
        runs = report["results"].get(method, {})
        ns = sorted(int(n) for n in runs)
        if not ns:
            continue
        left.errorbar(
            ns,
            [runs[str(n)]["mAP_mean"][at] for n in ns],
            yerr=[runs[str(n)]["mAP_std"][at] for n in ns],
            label=label,
            color=colour,
            marker="o",
            capsize=2,
        )
    if free is not None:
        left.scatter(
            [0], [free["mAP_mean"][at]], color="#2ca02c", marker="s", zorder=3, label="training-free"
        )
    left.set_xlabel(f"finished images trained on ({report['budget_seconds']:g} s of training)")
    left.set_ylabel("mAP@0.5 at 5 clicks per image")
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    runs = report["results"].get("pretrained", {})
    colours = plt.cm.viridis(np.linspace(0, 0.9, max(len(runs), 1)))
    for colour, n in zip(colours, sorted(runs, key=int)):
        right.plot(KS, runs[n]["mAP_mean"], marker="o", ms=3, color=colour, label=f"pretrained, n = {n}")
    if free is not None:
        right.plot(KS, free["mAP_mean"], marker="s", ms=3, color="#2ca02c", ls="--", label="training-free")
    right.set_xlabel("clicks per image")
    right.set_ylabel("mAP@0.5 (VOC07)")
    right.grid(alpha=0.3)
    right.legend(fontsize=7)
    fig.suptitle(
        f"{name}: click-to-detect from the first finished images ({report['test_images']} test images)",
        fontsize=9,
    )
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True, type=Path)
    p.add_argument("--test", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--images", type=int, nargs="+", default=[0, 2, 5, 10, 20])
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--quick", action="store_true", help="2 sessions on the first --quick-images test images")
    p.add_argument("--quick-images", type=int, default=30)
    p.add_argument("--sessions", type=int, default=5)
    p.add_argument("--boxes", choices=["auto", "aligned"], default="auto")
    add_work(p, "where the models and the encoder's cache go")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, default=1, help="runs per trained method and n (seeds --seed ...)")
    p.add_argument(
        "--budget-seconds", type=float, default=BUDGET_S, help="training budget per run (idle seconds)"
    )
    p.add_argument("--threads", type=int, default=2, help="torch threads (1 per run when two run at once)")
    p.add_argument(
        "--imagenet-bn",
        choices=["frozen", "train"],
        default="frozen",
        help="the ImageNet backbone's batch-norm statistics: kept (frozen) or learned (train)",
    )
    p.add_argument(
        "--input-scale",
        type=_scale,
        default="auto",
        help="factor the images are resized by (scratch, imagenet): a number, or auto (small objects larger)",
    )
    p.add_argument("--calibrate", action="store_true", help="measure seconds per step and stop")
    p.add_argument(
        "--only-latency",
        action="store_true",
        help="re-measure latency with the models in --work, update --out",
    )
    return p


if __name__ == "__main__":
    sys.exit(main())
