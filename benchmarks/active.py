"""Box-level active learning against image-level querying: mAP against boxes labeled.

    python benchmarks/active.py --train T --test H --out F.json [--quick] [--seeds 3]
        [--work DIR] [--methods ...] [--coreset-seeds N] [--backbone imagenet]
        [--episode-steps N] [--validation] [--threads N] [--first-seed S] [--noisy-weight W]

Every method starts, per seed, from the same initial model (trained on a random 10% of the
training part's images, fully labeled) and runs the same episodes
(:mod:`fewclick.active.loop`): the box-level methods ask the simulated oracle about boxes
until their answers obtained K ground-truth boxes an episode (K = 10% of the training
part's; background answers obtain none, the paper's measure of effort: "the number of
ground truth bounding boxes obtained"), the image-level ones label whole images until they
reach K boxes. The seconds a person spends, background answers included, are the cost
model's (``cost_model``), and every curve is plotted against both. The detector is the
plain one (no clicks), by default on an ImageNet-pretrained EfficientNet-Lite0 fine-tuned
end to end (``--backbone``: ``imagenet``, ``scratch`` or ``pretrained``, the frozen maps
of the pretrained encoder); each episode warm-starts from the last episode's model and
trains on everything labeled so far. ``consistency`` asks every predicted and every missed
box of some images through the box-level path and compares its training data and its model
with the image-level path's (:mod:`fewclick.active.consistency`). ``--validation`` holds
out every 5th training image by name as the test part (the test part is not read): where
the step budget is chosen. ``full_supervision_mAP`` is the same detector trained on every
training image for the same total steps (initial + every episode's). When ``--test`` is
the same path as ``--train`` the dataset is split by image (every 4th is test). The
encoder's maps are cached in ``--work`` (default ``out/bench_active/<dataset>``), where
the models go too. Writes F.json and F.png (mAP against boxes obtained and against
seconds, mean and std over seeds). ``--first-seed S`` runs seeds S .. S + seeds - 1 (the
consistency check with seed 0): seeds run apart, one process each, are joined by
``benchmarks/active_merge.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from _common import add_work, load_average, read_split, run_record, split_parts, work_folder, write_report
from tqdm import tqdm

from fewclick.active.consistency import consistency
from fewclick.active.learners import BACKBONES, Fit, PixelLearner, PretrainedLearner, test_map
from fewclick.active.loop import (
    ACCEPT_IOU,
    COST_SECONDS,
    METHODS,
    ActiveConfig,
    decode_config,
    initial_units,
    run_method,
    train_initial,
)
from fewclick.io.images import load_image
from fewclick.predict.encoder import ImageEncoder
from fewclick.predict.features import training_tiles
from fewclick.train.detect_pretrained import FeatureTile
from fewclick.types import geometry_only

DETECTORS = {
    "imagenet": "plain CenterNet detector on EfficientNet-Lite0 from ImageNet weights, fine-tuned end to end",
    "scratch": "plain CenterNet detector from scratch on the pixels (fewclick.models.backbone.Backbone)",
    "pretrained": "plain CenterNet head on the pretrained encoder's frozen maps (TinyViT-5M, SAM)",
}
BOX_FEATURES = {
    "imagenet": "the episode's detector's stride-4 features averaged in the box (roi_align), unit-normalised",
    "scratch": "the episode's detector's stride-4 features averaged in the box (roi_align), unit-normalised",
    "pretrained": "pretrained encoder maps (stride 8 and coarser, unit-normalised) averaged in the box",
}

#: --quick: a smaller random pool of unlabeled images predicted an episode and the core-set
#: methods on the first seed only. The episode's steps were chosen on --validation (bccd, one
#: seed, image_random, ImageNet Lite0, 2026-11-26): 60 steps gave 0.789 -> 0.799 / 0.814 /
#: 0.811 / 0.804 and 150 steps 0.824 / 0.826 / 0.806 / 0.826; 150 it is, at about 2.5 times
#: the minutes of an episode
QUICK = {"episode_steps": 150, "candidates": 60, "coreset_seeds": 1}
#: full supervision must beat the initial model by this much for the curves to be read
MEASURABLE_GAIN = 0.05
#: the box-level path with every box asked scores within this of the image-level path
CONSISTENCY_GAP = 0.02
#: --validation: every VALIDATION_EVERY-th training image by name is held out to score on
VALIDATION_EVERY = 5
COST_SOURCES = {
    "draw": "extreme clicking, 7.0 s a box (Papadopoulos et al., ICCV 2017; about 35 s drawn the usual way)",
    "verify": "box verification, 1.6 s per yes/no (Papadopoulos et al., CVPR 2016)",
    "fix": f"looked at and redrawn by extreme clicking (1.6 + 7.0 s): other class or IoU < {ACCEPT_IOU}",
    "background": "a box looked at and answered background (one verification)",
}


def main(argv: list[str] | None = None) -> int:
    args = _fill_defaults(_parser().parse_args(argv))
    torch.set_num_threads(args.threads)
    train_set, test_set = read_split(args.train, args.test)
    if args.validation:  # the step budget is chosen here, never on the test part
        train_set, test_set = split_parts(train_set, every=VALIDATION_EVERY, held="validation")
    train_set.images = sorted(train_set.images, key=lambda r: r.file_name)[: args.limit_train]
    work = work_folder(args.work, "active", args.train)
    test_images = test_set.images[: args.quick_images] if args.quick else test_set.images
    learner = _learner(args, train_set, test_images, work)
    units = learner.ground_truth
    config = ActiveConfig(
        episodes=args.episodes,
        initial_steps=args.initial_steps,
        episode_steps=args.episode_steps
        or (QUICK["episode_steps"] if args.quick else ActiveConfig.episode_steps),
        candidates=QUICK["candidates"] if args.quick else ActiveConfig.candidates,
        noisy_weight=args.noisy_weight,
        background_weight=args.background_weight,
    )
    total_boxes = sum(int((~o.ignore).sum()) for o in units)
    report = {
        "train": str(args.train),
        "test": str(args.test),
        "train_images": len(train_set),
        "units": len(units),
        "test_images": len(test_images),
        "total_boxes": total_boxes,
        "episodes": config.episodes,
        "boxes_per_episode": max(int(round(config.episode_fraction * total_boxes)), 1),
        "config": config.__dict__,
        "backbone": args.backbone,
        "episode_steps": config.episode_steps,
        "validation": args.validation,
        "detector": DETECTORS[args.backbone],
        "box_features": BOX_FEATURES[args.backbone],
        "cost_model": {"seconds": COST_SECONDS, "sources": COST_SOURCES},
        "seeds": args.seeds,
        "coreset_seeds": min(args.coreset_seeds, args.seeds),
        "quick": args.quick,
        **run_record("load_average_start", threads=torch.get_num_threads()),
        "runs": {m: {} for m in args.methods},
    }
    started = time.perf_counter()
    models = work / args.backbone  # each backbone's models apart; the encoder's cache is shared
    for seed in range(
        args.first_seed, args.first_seed + args.seeds
    ):  # the curves first: the report is written as they come
        _run_seed(seed, learner, config, models, args, report)
    report["curves"] = mean_curves(report)
    if args.no_full_supervision:  # a lever's search: the curves are what is compared
        report["seconds"] = round(time.perf_counter() - started, 1)
        write_report(report, args.out)
        print(f"wrote {args.out} (no full supervision, no targets)")
        return 0
    report["full_supervision_mAP"] = _full_supervision(learner, config, models)
    report["full_supervision_steps"] = config.initial_steps + config.episodes * config.episode_steps
    print(f"full supervision: mAP {report['full_supervision_mAP']:.3f}", flush=True)
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["load_average_end"] = load_average()
    report["curves"] = mean_curves(report)
    report["targets"] = targets(report)
    write_report(report, args.out)
    plot(report, Path(args.out).with_suffix(".png"), Path(args.train).name)
    print(json.dumps(report["targets"], indent=1))
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.png')}")
    return 0


def _run_seed(seed: int, learner, config: ActiveConfig, models: Path, args, report: dict) -> None:
    """Every method from the same initial model of ``seed``, the report written after each."""
    chosen = initial_units(len(learner.ground_truth), config.initial_fraction, seed)
    model = train_initial(learner, chosen, models / f"seed{seed}" / "initial", config, seed)
    if seed == 0 and not args.no_consistency:
        report["consistency"] = consistency(learner, (chosen, model), config, seed, models / "seed0")
        print(f"consistency: {report['consistency']}", flush=True)
        write_report(report, args.out)
    for method in args.methods:
        if method.endswith("coreset") and seed >= args.coreset_seeds:
            continue
        curve = run_method(method, learner, (chosen, model), config, seed, models / f"seed{seed}", log=_say)
        report["runs"][method][str(seed)] = curve.__dict__
        report["curves"] = mean_curves(report)
        write_report(report, args.out)


def _say(line: str) -> None:
    print(line, flush=True)


def _learner(args, train_set, test_records, work: Path):
    """The learner of ``args.backbone`` over the training part and the test images (ground
    truth axis-aligned): images in memory, or for the pretrained one every image's encoder
    tiles (the encoder's maps cached under ``work``)."""
    if args.backbone != "pretrained":
        images = _images(train_set.images, "training"), _images(test_records, "test")
        return PixelLearner(*images, train_set.classes, args.backbone, args.input_scale, args.threads)
    encoder = ImageEncoder(threads=2, cache_dir=work / "embeddings")
    units = _tiles(encoder, train_set.images, "training")
    return PretrainedLearner(units, _tiles(encoder, test_records, "test"), train_set.classes)


def _images(records, what: str) -> list:
    out = []
    for rec in tqdm(records, desc=f"loading {what} images", unit="image"):
        pixels = rec.extra["pixels"] if rec.extra.get("pixels") is not None else load_image(rec.path)
        out.append(replace(rec, objects=geometry_only(rec.objects, oriented=False), extra={"pixels": pixels}))
    return out


def _tiles(encoder: ImageEncoder, records, what: str) -> list[FeatureTile]:
    """Every image's encoder tiles as units, the ground truth axis-aligned."""
    out = []
    for rec in tqdm(records, desc=f"encoding {what} images", unit="image"):
        pixels = rec.extra["pixels"] if rec.extra.get("pixels") is not None else load_image(rec.path)
        objects = geometry_only(rec.objects, oriented=False)
        for maps, inside, valid in training_tiles(encoder, pixels, objects, rec.file_name):
            out.append(FeatureTile(maps, inside, valid))
    return out


def _full_supervision(learner, config: ActiveConfig, work: Path) -> float:
    """The same detector on every training unit, for the steps a whole run gets."""
    steps = config.initial_steps + config.episodes * config.episode_steps
    model = work / "full" / "last.pt"
    units = len(learner.ground_truth)
    if not _trained_for(model, steps, units):
        objects = dict(enumerate(learner.ground_truth))
        learner.train(objects, work / "full", Fit(steps=steps))
        (work / "full" / "units.json").write_text(json.dumps({"units": units}))
    return test_map(learner, model, decode_config(config))


def _trained_for(path: Path, steps: int, units: int) -> bool:
    """Whether ``path`` holds a model of ``steps`` steps on ``units`` units (a re-run keeps it)."""
    stamp = path.parent / "units.json"
    if not (path.is_file() and stamp.is_file()):
        return False
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    return ckpt.get("step") == steps and json.loads(stamp.read_text()).get("units") == units


def mean_curves(report: dict) -> dict:
    """Per method, the mean over seeds of boxes, mAP (and its std) and seconds, by episode."""
    out = {}
    full = report.get("full_supervision_mAP") or float("nan")
    for method, runs in report["runs"].items():
        if not runs:
            continue
        n = min(len(r["mAP"]) for r in runs.values())
        keys = ("boxes", "mAP", "seconds") + (
            ("questions",) if all("questions" in r for r in runs.values()) else ()
        )
        stack = {k: np.array([r[k][:n] for r in runs.values()], float) for k in keys}
        out[method] = {
            "boxes": [int(round(v)) for v in stack["boxes"].mean(0)],
            **(
                {"questions": [int(round(v)) for v in stack["questions"].mean(0)]}
                if "questions" in stack
                else {}
            ),
            "mAP_mean": [round(float(v), 4) for v in stack["mAP"].mean(0)],
            "mAP_std": [round(float(v), 4) for v in stack["mAP"].std(0)],
            "seconds": [round(float(v), 1) for v in stack["seconds"].mean(0)],
            "percent_of_full": [round(100 * float(v) / full, 1) for v in stack["mAP"].mean(0)],
            "seeds": len(runs),
            "episode_seconds_mean": round(
                float(np.mean([s for r in runs.values() for s in r["episode_seconds"]] or [0.0])), 1
            ),
        }
    return out


def targets(report: dict) -> dict:
    """The issue's targets, read off the mean curves. A box-level method reaches a level at
    one of its own episodes (not at the initial model every method shares); nothing is met
    unless full supervision beats the initial model by :data:`MEASURABLE_GAIN` (below that
    the detector learns too little more from more boxes for the curves to tell the methods
    apart)."""
    curves, full, total = report["curves"], report["full_supervision_mAP"], report["total_boxes"]
    initial = next(iter(curves.values()))["mAP_mean"][0] if curves else float("nan")
    measurable = bool(full >= initial + MEASURABLE_GAIN)
    out = {"measurable": {"initial_mAP": initial, "full_supervision_mAP": full, "met": measurable}}
    box_methods = [m for m in ("box_random", "box_uncertainty", "box_coreset") if m in curves]
    out.update(_consistency_target(report.get("consistency")))
    if box_methods:
        below = {m: [round(v - initial, 4) for v in curves[m]["mAP_mean"][1:]] for m in box_methods}
        out["box_above_initial_from_episode_1"] = {
            "gain_over_initial": below,
            "met": measurable and all(v > 0 for gains in below.values() for v in gains),
        }
    rand = curves.get("image_random")
    if rand:
        out.update(_image_random_targets(curves, rand, box_methods, measurable))
    reach85 = {m: _boxes_to_reach(curves[m], 0.85 * full) for m in box_methods}
    out["85_percent_of_full_with_half_the_boxes"] = {
        "full_supervision_mAP": full,
        "boxes_to_reach": reach85,
        "half_of_total_boxes": total / 2,
        "met": measurable and any(b is not None and b <= total / 2 for b in reach85.values()),
    }
    if "box_uncertainty" in curves and "box_random" in curves:
        u, r = curves["box_uncertainty"]["mAP_mean"], curves["box_random"]["mAP_mean"]
        out["uncertainty_above_random_after_episode_1"] = {
            "difference": [round(a - b, 4) for a, b in zip(u[2:], r[2:])],
            "met": measurable and len(u) > 2 and len(r) > 2 and all(a > b for a, b in zip(u[2:], r[2:])),
        }
    return out


def _consistency_target(check: dict | None) -> dict:
    if not check:
        return {}
    gap = abs(check["box_all"] - check["image"])
    return {
        "consistency": {
            "equal_targets": check["equal_targets"],
            "gap": round(gap, 4),
            "met": bool(check["equal_targets"]) and gap <= CONSISTENCY_GAP,
        }
    }


def _image_random_targets(curves: dict, rand: dict, box_methods: list[str], measurable: bool) -> dict:
    """The best box-level method reaches image_random's final mAP with at most 60% of its
    boxes; and it is above image_random at the same episode (about the same boxes: K an
    episode either way) in at least 3 of 4 episodes."""
    final, spent = rand["mAP_mean"][-1], rand["boxes"][-1]
    reach = {m: _boxes_to_reach(curves[m], final) for m in box_methods}
    best = min((b for b in reach.values() if b is not None), default=None)
    above = {
        m: sum(a > b for a, b in zip(curves[m]["mAP_mean"][1:], rand["mAP_mean"][1:])) for m in box_methods
    }
    episodes = len(rand["mAP_mean"]) - 1
    return {
        "box_reaches_image_random_final": {
            "image_random_final_mAP": final,
            "image_random_boxes": spent,
            "boxes_to_reach": reach,
            "best_ratio": None if best is None else round(best / spent, 3),
            "met": measurable and best is not None and best <= 0.6 * spent,
        },
        "box_above_image_random_at_equal_boxes": {
            "episodes_above": above,
            "episodes": episodes,
            "met": measurable and any(n >= min(3, episodes) for n in above.values()),
        },
    }


def _boxes_to_reach(curve: dict, level: float) -> int | None:
    """The first number of boxes at which the mean curve reaches ``level`` after the initial
    model (None: never)."""
    for boxes, value in list(zip(curve["boxes"], curve["mAP_mean"]))[1:]:
        if value >= level:
            return boxes
    return None


STYLE = {
    "box_random": ("#1f77b4", "-", "o"),
    "box_uncertainty": ("#d62728", "-", "o"),
    "box_coreset": ("#2ca02c", "-", "o"),
    "image_random": ("#1f77b4", "--", "s"),
    "image_uncertainty": ("#d62728", "--", "s"),
    "image_coreset": ("#2ca02c", "--", "s"),
}


def plot(report: dict, path: Path, name: str) -> Path:
    """mAP against ground-truth boxes obtained and against a person's seconds under the cost
    model (mean and std over seeds), every method, with the fully supervised mAP and 85% of it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    full = report["full_supervision_mAP"]
    for ax, x, label in (
        (axes[0], "boxes", "ground-truth boxes obtained (initial images included)"),
        (axes[1], "seconds", "a person's seconds under the cost model (background answers included)"),
    ):
        for method, c in report["curves"].items():
            colour, line, marker = STYLE[method]
            ax.errorbar(
                c[x],
                c["mAP_mean"],
                yerr=c["mAP_std"],
                color=colour,
                ls=line,
                marker=marker,
                ms=4,
                capsize=2,
                label=f"{method} ({c['seeds']} seeds)",
            )
        ax.axhline(full, color="k", lw=1, label=f"full supervision ({report['total_boxes']} boxes)")
        ax.axhline(0.85 * full, color="k", lw=1, ls=":", label="85% of full supervision")
        ax.set_xlabel(label, fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].axvline(report["total_boxes"] / 2, color="grey", lw=1, ls=":", label="half of the boxes")
    axes[0].set_ylabel("test mAP@0.5 (VOC07)")
    axes[0].legend(fontsize=7)
    fig.suptitle(
        f"{name}: box-level vs image-level active learning ({report['test_images']} test images)", fontsize=9
    )
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True, type=Path)
    p.add_argument("--test", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    add_work(p, "where the encoder's cache and the models go")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument(
        "--backbone",
        choices=BACKBONES,
        default="imagenet",
        help="the detector: EfficientNet-Lite0 from ImageNet (default), from scratch, or the pretrained maps",
    )
    p.add_argument(
        "--input-scale",
        type=lambda t: t if t == "auto" else float(t),
        default="auto",
        help="factor the images are resized by (imagenet, scratch): a number, or auto (small objects larger)",
    )
    p.add_argument("--threads", type=int, default=2, help="torch's threads (1 for a run beside others)")
    p.add_argument(
        "--validation",
        action="store_true",
        help=f"score on every {VALIDATION_EVERY}th training image by name instead of the test part",
    )
    p.add_argument("--no-consistency", action="store_true", help="skip the consistency check")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=0, help="run seeds from this one (seeds run apart)")
    p.add_argument(
        "--coreset-seeds",
        type=int,
        default=None,
        help="run the core-set methods on only the first N seeds (default: all)",
    )
    p.add_argument("--episodes", type=int, default=ActiveConfig.episodes)
    p.add_argument("--initial-steps", type=int, default=ActiveConfig.initial_steps)
    p.add_argument(
        "--episode-steps",
        type=int,
        help=f"default {ActiveConfig.episode_steps}, --quick {QUICK['episode_steps']}",
    )
    p.add_argument(
        "--noisy-weight",
        type=float,
        default=ActiveConfig.noisy_weight,
        help=f"lambda_d, the loss weight of an unanswered prediction on a partly labeled image "
        f"(default {ActiveConfig.noisy_weight}, the paper's)",
    )
    p.add_argument(
        "--background-weight",
        type=float,
        default=ActiveConfig.background_weight,
        help=f"the loss weight of a partly labeled image's cells of no box, background nobody "
        f"named (default {ActiveConfig.background_weight})",
    )
    p.add_argument(
        "--no-full-supervision",
        action="store_true",
        help="stop after the curves: no full-supervision model, no targets, no plot (lever searches)",
    )
    p.add_argument("--limit-train", type=int, help="use only the first N training images (smoke runs)")
    p.add_argument(
        "--quick", action="store_true", help=f"score on the first --quick-images test images, {QUICK}"
    )
    p.add_argument("--quick-images", type=int, default=30)
    return p


def _fill_defaults(args: argparse.Namespace) -> argparse.Namespace:
    if args.coreset_seeds is None:
        args.coreset_seeds = QUICK["coreset_seeds"] if args.quick else args.seeds
    return args


if __name__ == "__main__":
    sys.exit(main())
