"""Full-image segmentation from extreme points and scribbles: mIoU over regions against
scribbles per region, for the trained full-image and single-region models, training-free
SAM competition and the box floor, under both allocations; and the latency of a session.

    python benchmarks/fullimage.py --train T --test H --out docs/benchmarks/fullimage.json \
        [--quick] [--work DIR] [--train-steps N]

``T`` and ``H`` may be the same dataset: it is then split by image (every 4th image is
test). With ``--train-part`` and another ``H``, only ``T``'s training part of that split
trains (the models a run on ``T`` alone trained are re-used): how datasets too small to
train on are scored. Within the training part every 10th image is held out to pick the backbone, the
rest trains. Methods:

- ``full_image_pretrained`` / ``full_image_scratch``: the paper's model
  (:mod:`fewclick.models.fullimage`) on the pretrained encoder's maps or a backbone trained
  from scratch; ``full_image_sam_prior``: on the pretrained maps, with SAM's logits for
  each region (from its box and extreme points) as one more input channel. ``full_image``
  is the one of them with the highest mean mIoU over steps 0-3 (free allocation) on the
  held-out part of the training part (``choice`` says which, with every score);
- ``single_region``: the same network as ``full_image``, per-mask binary loss, no shared
  annotations (``one_per_region`` only, as in the paper);
- ``sam_compete``: training-free, SAM's logits per region, argmax across regions;
- ``box_fill``: each region its box, the floor.

Step 0 is extreme points alone; each later step adds scribbles under ``one_per_region`` or
``free`` allocation (:mod:`fewclick.simulate.allocation`). Models are trained once per
training part and setting and kept under ``--work`` (re-used when present).

JSON: ``curves[method][allocation] = {"scribbles_per_region": [0, 1, ...], "mIoU": [...]}``,
``to85[method][allocation]`` / ``to90[...]`` (the first step whose mIoU reaches the level,
None when none does), ``latency_ms`` (``full_image`` first prediction and each single
scribble update, after the image is encoded, on test images of up to 50 regions, and the
other methods beside it under ``others``), the void share of the test images, ``choice``
and ``training``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from _common import add_work, load_average, now, read_split, split_parts
from tqdm import tqdm

from fewclick.io.dataset import Dataset
from fewclick.models.fullimage import MIN_REGION, FullImageConfig, region_map
from fewclick.predict.fullimage import BoxFill, FullImageModel, SamCompete
from fewclick.protocols.fullimage import run_session
from fewclick.simulate.allocation import ALLOCATIONS, allocate_scribbles
from fewclick.train.fullimage import FullImageTrainConfig, image_key, prepare_records, train_fullimage

QUICK_IMAGES, QUICK_STEPS, STEPS = 25, 6, 9
CHOICE_IMAGES, CHOICE_STEPS = 10, 3
LATENCY_IMAGES, LATENCY_REGIONS = 10, 50


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.only_latency:
        return _only_latency(args)
    train_set, test_set = read_split(args.train, args.test, few="pairs")
    if args.train_part and Path(args.train).resolve() != Path(args.test).resolve():
        train_set = read_split(args.train, args.train, few="pairs")[0]
    # every 10th image of the training part picks the backbone (every 4th of a small part;
    # one of fewer than 4 images picks on its training images themselves)
    fit, held = split_parts(train_set, 10 if len(train_set) >= 20 else 4, few="whole")
    records, truths = _scored(test_set, args)
    steps = QUICK_STEPS if args.quick else STEPS
    encoder, sam = _pretrained(args.work)
    report = {
        "date": now(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {args.threads} threads, "
        f"load average {load_average():.1f}",
        "train": {"path": str(args.train), "images": len(fit.images), "held_out": len(held.images)},
        "test": {"path": str(args.test), "images": len(records)},
        "min_region": args.min_region,
        "void_share": float(np.mean([void for _, void in truths])),
        "steps": steps,
        "curves": {},
        "to85": {},
        "to90": {},
        "seconds": {},
        "training": {},
    }
    methods, chosen = _methods(fit, held, encoder, sam, args, report)
    _run_methods(methods, records, truths, steps, args, report)
    for key in ("curves", "to85", "to90"):
        report[key]["full_image"] = report[key][chosen]
    report["latency_ms"] = _latencies(methods, chosen, records, truths, args)
    _write(args.out, report)
    print(json.dumps({k: report[k] for k in ("choice", "to85", "to90", "latency_ms")}, indent=1))
    return 0


def _methods(fit: Dataset, held: Dataset, encoder, sam, args, report: dict) -> tuple[dict, str]:
    """Every method's predictor (the full-image variants trained on ``fit``, the one that
    scores best on ``held`` chosen as ``full_image``), and the name of the chosen one."""
    train_config = FullImageTrainConfig(steps=args.train_steps, seed=args.seed)
    variants = {"full_image_scratch": FullImageConfig(backbone="scratch")}
    if encoder is not None:
        variants = {
            "full_image_pretrained": FullImageConfig(backbone="pretrained"),
            **variants,
            "full_image_sam_prior": FullImageConfig(backbone="pretrained", sam_prior=True),
        }
    methods = {}
    for name, config in variants.items():
        methods[name] = _model(name, config, fit, train_config, encoder, sam, args, report)
    scores = {name: _choice_score(model, held, args) for name, model in methods.items()}
    chosen = max(scores, key=scores.get)
    report["choice"] = {"full_image": chosen, "held_out_mIoU_steps_0_3_free": scores}
    single = replace(methods[chosen].config, loss="mask", share=False)
    methods["single_region"] = _model("single_region", single, fit, train_config, encoder, sam, args, report)
    if sam is not None:
        methods["sam_compete"] = SamCompete(sam)
    methods["box_fill"] = BoxFill()
    return methods, chosen


def _run_methods(methods: dict, records: list, truths: list, steps: int, args, report: dict) -> None:
    """Every method's sessions under each allocation, their mean curve into ``report``,
    which is written after each (what is done so far survives a crash later on)."""
    for name, predictor in methods.items():
        allocations = ("one_per_region",) if name == "single_region" else ALLOCATIONS
        for allocation in allocations:
            t0 = time.perf_counter()
            sessions = []
            for i, (record, (gt, _)) in enumerate(
                tqdm(list(zip(records, truths, strict=True)), desc=f"{name} {allocation}")
            ):
                rng = np.random.default_rng([args.seed, i])
                sessions.append(run_session(predictor, record.load_image(), gt, steps, allocation, rng))
            _record(report, name, allocation, np.mean(sessions, axis=0).tolist(), steps)
            report["seconds"].setdefault(name, {})[allocation] = round(time.perf_counter() - t0, 1)
            _write(args.out, report)


def _write(out: Path, report: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))


def _record(report: dict, name: str, allocation: str, curve: list[float], steps: int) -> None:
    report["curves"].setdefault(name, {})[allocation] = {
        "scribbles_per_region": list(range(steps + 1)),
        "mIoU": curve,
    }
    report["to85"].setdefault(name, {})[allocation] = _reach(curve, 0.85)
    report["to90"].setdefault(name, {})[allocation] = _reach(curve, 0.90)


def _reach(curve: list[float], level: float) -> int | None:
    return next((step for step, value in enumerate(curve) if value >= level), None)


def _model(name, config, fit: Dataset, train_config, encoder, sam, args, report) -> FullImageModel:
    """The model ``name`` trained on ``fit``, from ``--work`` when it was trained before."""
    digest = hashlib.blake2b(
        json.dumps(
            [
                sorted(image_key(r) for r in fit.images),
                config.to_dict(),
                asdict(train_config),
                args.min_region,
            ]
        ).encode(),
        digest_size=8,
    ).hexdigest()
    path = args.work / "models" / f"{name}-{digest}.pt"
    if not path.exists():
        t0 = time.perf_counter()
        images = prepare_records(fit.images, config, train_config.canvas, encoder, sam, args.min_region)
        train_fullimage(images, config, train_config, path)
        report["training"][name] = {"seconds": round(time.perf_counter() - t0, 1), "reused": False}
    else:
        report["training"][name] = {"reused": True}
    report["training"][name].update(path=str(path), steps=train_config.steps, images=len(fit.images))
    return FullImageModel.load(path, encoder, sam)


def _choice_score(model, held: Dataset, args) -> float:
    """Mean mIoU over steps 0..3 (free allocation) on the held-out part of the training part."""
    scores = []
    for i, record in enumerate(held.images[:CHOICE_IMAGES]):
        gt, _ = region_map(record, args.min_region)
        rng = np.random.default_rng([args.seed, 1000 + i])
        scores.append(np.mean(run_session(model, record.load_image(), gt, CHOICE_STEPS, "free", rng)))
    return round(float(np.mean(scores)), 4)


def _only_latency(args) -> int:
    """Re-measure ``latency_ms`` in the ``--out`` JSON of an earlier run, with the models
    that run trained (their files under ``--work``); every other key is kept."""
    if not args.out.is_file():
        raise SystemExit(f"--only-latency: {args.out} does not exist; run the benchmark without it first")
    report = json.loads(args.out.read_text())
    chosen = report["choice"]["full_image"]
    encoder, sam = _pretrained(args.work)
    methods = {}
    for name in (chosen, "single_region"):
        path = Path(report["training"][name]["path"])
        if not path.is_file():
            raise SystemExit(f"--only-latency: {path} (the {name} model of {args.out}) is missing")
        methods[name] = FullImageModel.load(path, encoder, sam)
    if sam is not None:
        methods["sam_compete"] = SamCompete(sam)
    records, truths = _scored(read_split(args.train, args.test, few="pairs")[1], args)
    report["latency_ms"] = _latencies(methods, chosen, records, truths, args)
    _write(args.out, report)
    print(json.dumps(report["latency_ms"], indent=1))
    return 0


def _scored(test_set: Dataset, args) -> tuple[list, list]:
    """The test images a run scores (at most QUICK_IMAGES with ``--quick``) and their
    (region map, void share): the same for the curves and for ``--only-latency``."""
    records = test_set.images[: QUICK_IMAGES if args.quick else None]
    return records, [region_map(r, args.min_region) for r in records]


def _latencies(methods: dict, chosen: str, records, truths, args) -> dict:
    """``latency_ms``: the chosen full-image model's, the others' beside it, and the load."""
    latency = {
        name: _latency(methods[name], records, truths, args.seed)
        for name in (chosen, "single_region", "sam_compete")
        if name in methods
    }
    return {
        "method": "full_image",
        "serves": chosen,
        **latency.pop(chosen),
        "others": latency,
        "threads": args.threads,
        "load_average": round(load_average(), 1),
    }


def _latency(predictor, records, truths, seed: int) -> dict:
    """The first prediction from extreme points, then one free step of scribbles added one
    at a time, each a new prediction: wall-clock ms after ``set_image`` (the encoding)."""
    from fewclick.protocols.fullimage import extreme_prompts

    first, update, regions = [], [], 0
    chosen = [
        (r, gt) for r, (gt, _) in zip(records, truths, strict=True) if int(gt.max()) + 1 <= LATENCY_REGIONS
    ]
    for i, (record, gt) in enumerate(chosen[:LATENCY_IMAGES]):
        rng = np.random.default_rng([seed, 2000 + i])
        prompts = extreme_prompts(gt, rng)
        regions = max(regions, len(prompts))
        predictor.set_image(record.load_image())
        t0 = time.perf_counter()
        pred = predictor.predict(prompts)
        first.append(time.perf_counter() - t0)
        for s in allocate_scribbles(gt, pred, rng, "free"):
            prompts[s.region].scribbles.append(s)
            t0 = time.perf_counter()
            predictor.predict(prompts)
            update.append(time.perf_counter() - t0)
    if not first:
        return {"regions": 0, "images": 0}
    return {
        "regions": regions,
        "images": len(first),
        "first": _percentiles(first),
        "update": _percentiles(update) if update else None,
    }


def _percentiles(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1000
    return {"p50": round(float(np.percentile(ms, 50)), 1), "p95": round(float(np.percentile(ms, 95)), 1)}


def _pretrained(work: Path):
    """(the image encoder, SAM) or (None, None) when the pretrained files are missing."""
    from fewclick.predict.encoder import ImageEncoder
    from fewclick.predict.pretrained import PretrainedModelError, default_model_files
    from fewclick.predict.sam import SamPredictor

    try:
        encoder_file, decoder_file = default_model_files()
    except PretrainedModelError as exc:
        print(f"full_image_pretrained and sam_compete left out: {exc}")
        return None, None
    encoder = ImageEncoder(encoder_file, cache_dir=work / "embeddings")
    return encoder, SamPredictor(encoder, decoder_file)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--train", type=Path, required=True, help="the training part (any readable format with masks)"
    )
    p.add_argument(
        "--test", type=Path, required=True, help="the held-out part (the same path: split by image)"
    )
    p.add_argument("--out", type=Path, required=True, help="the JSON to write")
    add_work(p, "where models and embeddings go", default=Path("out/fullimage"))
    p.add_argument(
        "--quick", action="store_true", help=f"at most {QUICK_IMAGES} test images, steps 0..{QUICK_STEPS}"
    )
    p.add_argument(
        "--train-steps", type=int, default=FullImageTrainConfig.steps, help="training steps per model"
    )
    p.add_argument(
        "--train-part",
        action="store_true",
        help="train on T's own training part only (every 4th image left out), as a run with --test T "
        "does, so its models in --work are re-used for another test set",
    )
    p.add_argument("--min-region", type=float, default=MIN_REGION, help="regions under this share are void")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--only-latency",
        action="store_true",
        help="re-measure latency_ms in --out with the models its run left in --work (on a quiet machine)",
    )
    return p


if __name__ == "__main__":
    raise SystemExit(main())
