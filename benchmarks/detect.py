"""Click-to-detect benchmark: train every method, run C3Det's protocol, measure latency.

    python benchmarks/detect.py --train PATH --test PATH --out FILE.json [--budget-minutes N] [--quick]

When ``--test`` is the same path as ``--train``, the dataset is split by image (sorted
names, every 4th image is test) so that nothing is tuned on the test part. Models go to
``--work`` (default ``out/bench_detect/<dataset>``, never committed; a model already there
is resumed, so delete the folder for a fresh run). The plain detector trains first and
every click model starts from its weights (``--cold-start``: from scratch). Writes
FILE.json and FILE.png (mAP vs clicks, all methods).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _common import add_work, claim_work, now, read_split, run_record, work_folder, write_report

from fewclick.io.dataset import Dataset, split_by_image
from fewclick.io.images import load_image
from fewclick.predict.detect import ClickDetector, DecodeConfig
from fewclick.predict.encoder import ImageEncoder
from fewclick.predict.features import training_tiles
from fewclick.protocols import json_ready
from fewclick.protocols.detect import ProtocolConfig, run_protocol, validation
from fewclick.protocols.detect_run import load_items, plot_map_vs_clicks
from fewclick.train.detect import TrainConfig, detector_config_for, train_detector
from fewclick.train.detect_pretrained import (
    PRETRAINED_SECONDS_PER_STEP,
    FeatureTile,
    PretrainedTrainConfig,
    pretrained_config,
    steps_for_seconds,
    train_pretrained_detector,
)
from fewclick.types import Click

TRAINED = ("plain", "early-fusion", "late-fusion", "c3det")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    train_set, test_set = read_split(args.train, args.test, boxes=args.boxes)
    minutes = args.budget_minutes if args.budget_minutes is not None else (1.5 if args.quick else 7.0)
    work = work_folder(args.work, "detect", args.train, make=False)
    claim_work(work, minutes)
    torch.set_num_threads(2)
    if args.only_latency:
        return _only_latency(args, work, test_set)
    report = {
        "train": str(args.train),
        "test": str(args.test),
        "train_images": len(train_set),
        "test_images": len(test_set),
        "boxes": args.boxes,
        "budget_minutes": minutes,
        **run_record(threads=torch.get_num_threads()),
        "methods": {},
        "train_minutes": {},
    }
    models = _train_all(args, train_set, work, minutes, report)
    report["warm_start"] = not args.cold_start
    items = load_items(test_set)
    if args.quick:
        items = items[: args.quick_images]
    predictors = _predictors(models, work)
    _run_protocols(args, predictors, items, len(test_set.classes), report)
    latency = "c3det" if "c3det" in predictors else next(iter(predictors))
    report["image_size"], report["latency_ms"] = _latency(predictors[latency], items)
    out = Path(args.out)
    write_report(report, out)
    plot_map_vs_clicks(
        report["methods"],
        out.with_suffix(".png"),
        title=f"{Path(args.train).name} ({len(items)} test images): mAP@0.5 vs clicks",
    )
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


def _only_latency(args, work: Path, test_set: Dataset) -> int:
    """Re-measure the latency of the trained C3Det in ``work`` and update ``--out`` in place."""
    report = json.loads(Path(args.out).read_text())
    predictor = ClickDetector.load(work / "c3det" / "last.pt")
    report["image_size"], report["latency_ms"] = _latency(predictor, load_items(test_set)[:1])
    report["latency_date"] = now()
    Path(args.out).write_text(json.dumps(json_ready(report), indent=1))
    print(f"latency: {report['latency_ms']}")
    return 0


def _train_all(args, train_set: Dataset, work: Path, minutes: float, report: dict) -> dict[str, Path]:
    """Train every method asked for (the plain detector first: every click model starts from
    it), their minutes and steps into ``report``; the checkpoint of each."""
    models = {}
    methods = [m for m in TRAINED if m in args.methods or (m == "plain" and not args.cold_start)]
    for method in methods:
        init = None if method == "plain" or args.cold_start else str(models["plain"])
        models[method] = _train_one(method, train_set, work, minutes, args.seed, init, report)
    if "c3det-pretrained" in args.methods:
        started = time.perf_counter()
        models["c3det-pretrained"] = _train_pretrained(
            train_set, work / "c3det-pretrained", minutes, args.seed
        )
        ckpt = torch.load(models["c3det-pretrained"], weights_only=False)
        report["train_minutes"]["c3det-pretrained"] = round((time.perf_counter() - started) / 60, 2)
        report.setdefault("train_steps", {})["c3det-pretrained"] = ckpt["step"]
        idle = ckpt["step"] * PRETRAINED_SECONDS_PER_STEP / 60
        report.setdefault("train_minutes_idle", {})["c3det-pretrained"] = round(idle, 2)
    return models


def _train_one(
    method: str, train_set: Dataset, work: Path, minutes: float, seed: int, init: str | None, report: dict
) -> Path:
    """Train ``method`` (every 10th training image validates), from ``init`` when given."""
    val = split_by_image(train_set, 10, "test")
    cfg = detector_config_for(train_set, method)
    started = time.perf_counter()
    path = train_detector(
        split_by_image(train_set, 10, "train"),
        work / method,
        cfg,
        TrainConfig(budget_minutes=minutes, seed=seed, init=init),
        validate=validation(val, train_set.classes, cfg.uses_clicks),
    )
    own = (time.perf_counter() - started) / 60
    # A warm-started model's training time includes the plain detector it starts from.
    total = own + (report["train_minutes"]["plain"] if init else 0.0)
    report["train_minutes"][method] = round(total, 2)
    ckpt = torch.load(path, weights_only=False)
    report.setdefault("train_steps", {})[method] = ckpt["step"]
    # Minutes on an idle machine: steps at the speed measured before training (tests or
    # other jobs on the same cores stretch the wall clock, not the step count).
    idle = ckpt["step"] * ckpt["seconds_per_step"] / 60 if ckpt.get("seconds_per_step") else own
    idle_total = idle + (report["train_minutes_idle"]["plain"] if init else 0.0)
    report.setdefault("train_minutes_idle", {})[method] = round(idle_total, 2)
    return path


def _predictors(models: dict[str, Path], work: Path) -> dict[str, ClickDetector]:
    """A predictor per trained model, and the plain detector passed through as it is."""
    predictors = {m: ClickDetector.load(p, encoder=_encoder(work)) for m, p in models.items()}
    if "plain" in models:
        predictors["passthrough"] = ClickDetector.load(
            models["plain"], DecodeConfig(passthrough=True, enforce_clicks=False)
        )
    return predictors


def _run_protocols(args, predictors: dict, items: list, classes: int, report: dict) -> None:
    """C3Det's protocol for every predictor, its result under ``report["methods"]``."""
    ks = (0, 1, 2, 3, 5, 10, 20) if args.quick else None
    protocol = ProtocolConfig(sessions=2 if args.quick else 5, seed=args.seed, ks=ks)
    for name, predictor in predictors.items():
        # The plain detector ignores clicks: one session at k = 0 is its whole curve.
        config = ProtocolConfig(sessions=1, seed=args.seed, ks=(0,)) if name == "plain" else protocol
        result = run_protocol(
            predictor,
            items,
            classes,
            config,
            oriented=predictor.config.oriented,
            points_only=predictor.config.points_only,
        )
        report["methods"][name] = result.to_dict()
        print(f"{name}: " + " ".join(f"{k}:{m:.3f}" for k, m in zip(result.k, result.map_mean)), flush=True)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True, type=Path)
    p.add_argument("--test", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument(
        "--budget-minutes",
        type=float,
        help="training minutes per model (default 7, quick 1.5); a click model adds its own "
        "minutes to the plain detector's it starts from",
    )
    p.add_argument("--quick", action="store_true", help="short training, 2 sessions, 7 click counts")
    p.add_argument("--quick-images", type=int, default=30, help="test images used by --quick")
    p.add_argument(
        "--boxes",
        choices=["auto", "aligned"],
        default="auto",
        help="aligned: ignore oriented boxes (train and score axis-aligned)",
    )
    p.add_argument(
        "--cold-start",
        action="store_true",
        help="train every click model from scratch instead of from the plain detector",
    )
    add_work(p, "where the models go")
    p.add_argument(
        "--methods",
        nargs="+",
        choices=[*TRAINED, "c3det-pretrained"],
        default=[*TRAINED, "c3det-pretrained"],
        help="what to train and run (the plain detector also trains when a click model starts from it)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--only-latency",
        action="store_true",
        help="re-measure latency with the trained C3Det in --work and update --out in place",
    )
    return p


def _encoder(work: Path) -> ImageEncoder:
    """The pretrained encoder, caching its maps in ``work/embeddings`` (made once)."""
    if "encoder" not in _SHARED:
        _SHARED["encoder"] = ImageEncoder(threads=2, cache_dir=work / "embeddings")
    return _SHARED["encoder"]


_SHARED: dict = {}


def _train_pretrained(train_set: Dataset, out: Path, minutes: float, seed: int) -> Path:
    """C3Det on the pretrained encoder's maps, the budget's minutes turned into steps."""
    encoder = _encoder(out.parent)
    tiles = []
    for rec in train_set.images:
        pixels = rec.extra["pixels"] if rec.extra.get("pixels") is not None else load_image(rec.path)
        tiles += [FeatureTile(*t) for t in training_tiles(encoder, pixels, rec.objects, rec.file_name)]
    cfg = detector_config_for(train_set, "c3det")
    config = pretrained_config(len(train_set.classes), cfg.oriented, cfg.points_only)
    train = PretrainedTrainConfig(steps=steps_for_seconds(minutes * 60), seed=seed)
    return train_pretrained_detector(tiles, train_set.classes, out, config, train)


def _latency(predictor: ClickDetector, items) -> tuple[list[int], dict]:
    """set_image on a 1024 x 1024 image and predict with 1..20 clicks, p50 / p95 in ms."""
    image = items[0][0]
    reps = (-(-1024 // image.shape[0]), -(-1024 // image.shape[1]), 1)
    big = np.tile(image, reps)[:1024, :1024]
    rng = np.random.default_rng(0)
    set_times, predict_times = [], []
    for _ in range(5):
        t = time.perf_counter()
        predictor.set_image(big)
        set_times.append(time.perf_counter() - t)
    for n in range(1, 41):
        clicks = [
            Click(float(x), float(y), int(c))
            for x, y, c in zip(
                rng.uniform(0, 1023, n % 20 + 1),
                rng.uniform(0, 1023, n % 20 + 1),
                rng.integers(0, len(predictor.classes), n % 20 + 1),
            )
        ]
        t = time.perf_counter()
        predictor.predict(clicks)
        predict_times.append(time.perf_counter() - t)

    def stats(values):
        ms = np.asarray(values) * 1000
        return {"p50": round(float(np.percentile(ms, 50)), 1), "p95": round(float(np.percentile(ms, 95)), 1)}

    return [1024, 1024], {"set_image": stats(set_times), "predict": stats(predict_times)}


if __name__ == "__main__":
    sys.exit(main())
