"""Box-to-mask benchmark: train M_b and M_b+c, run the rounds and NoC protocols against the
model, GrabCut and the box, train and score the mask-quality ranker, measure latency.

    python benchmarks/segment.py --train PATH --test PATH --out FILE.json [--quick] [--budget-minutes N]

When ``--test`` is the same path as ``--train``, the dataset is split by image (sorted
names, every 4th image is test). Of the training part, every 5th image is kept apart for
the ranker (the "small part with ground truth"); the models train on the rest. With
``--noc-only`` and ``--models DIR`` an already trained model is scored with the per-click
protocol only (e.g. on ``grabcut_scribbles``). ``--encodings gaussians distance`` also
trains M_b+c with those click encodings on the same M_b and compares the rounds. The
mask-quality ranker is trained and scored on sessions of an annotator who stops when the
errors left are small (``ANNOTATOR``), with and without the model's score as a feature.
Models go to ``--work`` (default
``out/bench_segment/<dataset>``; an existing model there is resumed, and a run with another
budget stops rather than measure it). Writes FILE.json,
FILE.png (mIoU vs clicks) and FILE_ranker.png (the paper's Figure 8).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from _work import claim_work

from fewclick.io import read_dataset
from fewclick.io.dataset import Dataset, split_by_image
from fewclick.predict.grabcut import GrabCutPredictor
from fewclick.predict.segment import MaskPredictor
from fewclick.predict.segment_api import BoxPredictor
from fewclick.protocols import json_ready
from fewclick.protocols.segment import RoundsConfig, plot_miou_vs_clicks, run_noc, run_rounds, tight_box
from fewclick.protocols.segment_run import InstanceItems
from fewclick.quality.ranker import QualityRanker, plot_ranking, ranking_report
from fewclick.train.segment import SegmentTrainConfig, train_segmenter
from fewclick.types import Clicks


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(2)
    if args.noc_only:
        return _noc_only(args)
    train_set, test_set = _split(args.train, args.test)
    every = _every(len(train_set), 5, "ranker")
    model_set, ranker_set = (
        split_by_image(train_set, every, "train"),
        split_by_image(train_set, every, "test"),
    )
    minutes = args.budget_minutes if args.budget_minutes is not None else (3.0 if args.quick else 12.0)
    max_instances = args.max_instances or (150 if args.quick else 600)
    noc_instances = args.noc_instances or (40 if args.quick else 150)
    ranker_instances = args.ranker_instances or (300 if args.quick else 1000)
    work = args.work or Path("out/bench_segment") / Path(args.train).name
    claim_work(work, minutes)
    report = {
        "train": str(args.train),
        "test": str(args.test),
        "train_images": len(model_set),
        "ranker_images": len(ranker_set),
        "test_images": len(test_set),
        "budget_minutes": minutes,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or 'cpu'}, {torch.get_num_threads()} threads",
    }
    started = time.perf_counter()
    train_segmenter(
        model_set, work, train=SegmentTrainConfig(budget_minutes=minutes, seed=args.seed), clicks=args.clicks
    )
    report["train_minutes"] = round((time.perf_counter() - started) / 60, 2)
    model = MaskPredictor.load(work)
    predictors = {"model": model, "grabcut": GrabCutPredictor(), "box": BoxPredictor()}
    rounds_cfg = RoundsConfig(seed=args.seed, max_instances=max_instances)
    items = InstanceItems(test_set)
    rounds = {name: run_rounds(p, items, rounds_cfg) for name, p in predictors.items()}
    for name, result in rounds.items():
        print(f"{name}: mIoU per round " + " ".join(f"{m:.3f}" for m in result.miou), flush=True)
    report["instances"] = len(rounds["model"].ious)
    report["box_only"] = rounds["box"].miou[0]
    report["grabcut"] = rounds["grabcut"].miou[0]
    report["m_b"] = rounds["model"].miou[0]
    report["rounds"] = {name: r.miou for name, r in rounds.items()}
    report["boundary_F"] = {name: r.mean_boundary_f for name, r in rounds.items()}
    report["by_size"] = {name: r.by_size() for name, r in rounds.items()}
    report["mean_clicks"] = rounds["model"].clicks_curve()[0]
    noc = {
        name: run_noc(p, items, max_instances=noc_instances, seed=args.seed)
        for name, p in predictors.items()
        if name != "box"
    }
    report["noc_instances"] = len(noc["model"].ious)
    report["noc85"] = {name: r.noc["NoC@85"] for name, r in noc.items()}
    report["noc90"] = {name: r.noc["NoC@90"] for name, r in noc.items()}
    report["noc_mIoU_per_click"] = {name: r.miou_per_click for name, r in noc.items()}
    report["ranker"], report["ranker_paper_features"] = _ranker(
        model, ranker_set, ranker_instances, items, rounds_cfg, work, args.out
    )
    report["ranker_sessions"] = ANNOTATOR
    if args.encodings:
        report["encodings"] = _encodings(args, model_set, work, minutes, items, rounds_cfg, rounds["model"])
    report["latency_ms"] = {"predict": _latency(model, items)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(json_ready(report), indent=1))
    plot_miou_vs_clicks(
        {name: r.clicks_curve() for name, r in rounds.items()},
        out.with_suffix(".png"),
        title=f"{Path(args.test).name}: mIoU over 3 x 3 rounds",
    )
    print(f"wrote {out}, {out.with_suffix('.png')} and {_ranker_plot(out)}")
    return 0


# The ranker's sessions: an annotator who gives up to 4 clicks a round and ignores errors
# under 5% of the object (the paper's annotators gave 0-4 clicks a round and stopped when
# satisfied), so sessions end at different rounds; chosen on the ranker part, not the test part.
ANNOTATOR = dict(clicks_per_round=4, min_region_fraction=0.05)


def _ranker(
    model, ranker_set: Dataset, instances: int, items, cfg: RoundsConfig, work: Path, out: Path
) -> tuple[dict, dict]:
    """Train M_r on the ranker part's sessions and score it on the test part's, with the
    paper's five features and with the model's score added (fewclick's default)."""
    fit = run_rounds(model, InstanceItems(ranker_set), replace(cfg, max_instances=instances, **ANNOTATOR))
    test = run_rounds(model, items, replace(cfg, **ANNOTATOR))
    reports = {}
    for with_score in (True, False):
        ranker = QualityRanker(seed=cfg.seed, with_score=with_score).fit(
            fit.features, fit.final_ious, fit.scores
        )
        report = ranking_report(ranker.predict(test.features, test.scores), test.final_ious)
        report["train_instances"] = len(fit.final_ious)
        report["features"] = list(ranker.names)
        reports[with_score] = report
        if with_score:
            ranker.save(work / "ranker.pkl")
    plot_ranking(reports[True], _ranker_plot(out), title=f"{Path(out).stem}: mask-quality ranking")
    return reports[True], reports[False]


def _encodings(args, model_set, work: Path, minutes: float, items, cfg: RoundsConfig, main) -> dict:
    """M_b+c with each other click encoding (the same M_b, the same M_b+c budget), scored
    with the rounds protocol: ``{encoding: [mIoU per round]}``, the main one included."""
    out = {args.clicks: main.miou}
    for encoding in args.encodings:
        if encoding == args.clicks:
            continue
        folder = work.with_name(f"{work.name}_{encoding}")
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / "m_b.pt").exists():
            shutil.copy(work / "m_b.pt", folder / "m_b.pt")  # a finished M_b: only M_b+c trains
        train = SegmentTrainConfig(budget_minutes=minutes, seed=args.seed)
        train_segmenter(model_set, folder, train=train, clicks=encoding)
        out[encoding] = run_rounds(MaskPredictor.load(folder), items, cfg).miou
        print(f"{encoding}: mIoU per round " + " ".join(f"{m:.3f}" for m in out[encoding]), flush=True)
    return out


def _ranker_plot(out: Path) -> Path:
    return Path(out).with_name(Path(out).stem + "_ranker.png")


def _noc_only(args) -> int:
    if args.models is None:
        raise SystemExit("--noc-only needs --models DIR (a folder with m_b.pt and m_bc.pt)")
    data = read_dataset(args.test)
    items = InstanceItems(data)
    predictors = {"model": MaskPredictor.load(args.models), "grabcut": GrabCutPredictor()}
    noc = {name: run_noc(p, items, seed=args.seed) for name, p in predictors.items()}
    report = {
        "test": str(args.test),
        "models": str(args.models),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "instances": len(noc["model"].ious),
        "noc85": {name: r.noc["NoC@85"] for name, r in noc.items()},
        "noc90": {name: r.noc["NoC@90"] for name, r in noc.items()},
        "noc_mIoU_per_click": {name: r.miou_per_click for name, r in noc.items()},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(json_ready(report), indent=1))
    plot_miou_vs_clicks(
        {name: (list(range(len(m))), m) for name, m in report["noc_mIoU_per_click"].items()},
        out.with_suffix(".png"),
        title=f"{Path(args.test).name}: mIoU per click (NoC protocol)",
    )
    print(f"NoC@85 {report['noc85']}, NoC@90 {report['noc90']}; wrote {out}")
    return 0


def _latency(model: MaskPredictor, items) -> dict:
    """predict with 1..9 clicks on the first test objects: p50 / p95 in ms."""
    rng = np.random.default_rng(0)
    times = []
    for image, masks, *_ in items:
        model.set_image(image)
        for gt in masks[:10]:
            if not gt.any():
                continue
            box = tight_box(gt)
            ys, xs = np.nonzero(gt)
            for n in range(1, 10):
                pick = rng.integers(0, len(xs), n)
                clicks = Clicks(np.stack([xs[pick], ys[pick]], 1), np.zeros(n), rng.random(n) < 0.5)
                t = time.perf_counter()
                model.predict(box, clicks)
                times.append(time.perf_counter() - t)
        if len(times) >= 90:
            break
    ms = np.asarray(times) * 1000
    return {"p50": round(float(np.percentile(ms, 50)), 1), "p95": round(float(np.percentile(ms, 95)), 1)}


def _split(train: Path, test: Path) -> tuple[Dataset, Dataset]:
    if Path(train).resolve() == Path(test).resolve():
        data = read_dataset(train)
        every = _every(len(data), 4, "test")
        return split_by_image(data, every, "train"), split_by_image(data, every, "test")
    return read_dataset(train), read_dataset(test)


def _every(images: int, every: int, part: str) -> int:
    """``every``, or fewer for a dataset too small to have an ``every``-th image (such as
    the 3 images of ``isaid_samples``), so that the last image still goes to ``part``."""
    if images < 2:
        raise SystemExit(f"expected at least 2 images to split off a {part} part, got {images}")
    if images < every:
        print(f"only {images} images: the last one goes to the {part} part (not 1 in {every})")
        return images
    return every


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", type=Path, help="training dataset (not needed with --noc-only)")
    p.add_argument("--test", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--budget-minutes", type=float, help="minutes for M_b and M_b+c together (default 12)")
    p.add_argument("--quick", action="store_true", help="3 min training, fewer test objects")
    p.add_argument("--max-instances", type=int, help="test objects in the rounds protocol (default 600)")
    p.add_argument("--noc-instances", type=int, help="test objects in the NoC protocol (default 150)")
    p.add_argument("--ranker-instances", type=int, help="ranker-part objects to train M_r on (default 1000)")
    p.add_argument("--clicks", default="disks", choices=["disks", "gaussians", "distance"])
    p.add_argument(
        "--encodings",
        nargs="*",
        default=[],
        choices=["disks", "gaussians", "distance"],
        help="also train M_b+c with these click encodings and compare them over the rounds",
    )
    p.add_argument("--noc-only", action="store_true", help="score --models on --test with NoC only")
    p.add_argument("--models", type=Path, help="a trained model folder (for --noc-only)")
    p.add_argument("--work", type=Path, help="where the models go")
    p.add_argument("--seed", type=int, default=0)
    return p


if __name__ == "__main__":
    sys.exit(main())
