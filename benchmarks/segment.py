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
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from _common import (
    add_work,
    claim_work,
    load_averages,
    read_split,
    run_record,
    split_parts,
    work_folder,
    write_report,
)
from _segment_latency import latencies

from fewclick.io import read_dataset
from fewclick.io.dataset import Dataset
from fewclick.predict.backends import BACKENDS, TUNED_DECODER, make_backend
from fewclick.predict.segment import MaskPredictor
from fewclick.protocols.segment import (
    SIZE_EDGES,
    RoundsConfig,
    plot_miou_vs_clicks,
    run_noc,
    run_rounds,
)
from fewclick.protocols.segment_choice import RANKER_SESSIONS, choose_backend, score_backends
from fewclick.protocols.segment_edit import edit_summary, outline_finish
from fewclick.protocols.segment_run import InstanceItems
from fewclick.quality.ranker import QualityRanker, plot_ranking, ranking_report
from fewclick.train.segment import SegmentTrainConfig, train_segmenter


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(2)
    if args.noc_only:
        return _noc_only(args)
    train_set, test_set = read_split(args.train, args.test, few="last")
    model_set, ranker_set = split_parts(train_set, 5, few="last", held="ranker")
    minutes = args.budget_minutes if args.budget_minutes is not None else (3.0 if args.quick else 12.0)
    max_instances = args.max_instances or (150 if args.quick else 600)
    noc_instances = args.noc_instances or (40 if args.quick else 150)
    ranker_instances = args.ranker_instances or (300 if args.quick else 1000)
    work = work_folder(args.work, "segment", args.train, make=False)
    report = {
        "train": str(args.train),
        "test": str(args.test),
        "train_images": len(model_set),
        "ranker_images": len(ranker_set),
        "test_images": len(test_set),
        "budget_minutes": minutes,
        "methods": list(args.methods),
        **run_record("load_average_start", threads=torch.get_num_threads(), three=True),
    }
    backends = _backends(args.methods)
    _train(args, backends, model_set, work, minutes, report)
    predictors = _predictors(backends, work)
    rounds_cfg = RoundsConfig(seed=args.seed, max_instances=max_instances)
    if "auto" in args.methods:  # the per-project pick, on the training part only
        report["auto"] = _auto(predictors, ranker_set, rounds_cfg, max_instances)
    items = InstanceItems(test_set)
    rounds = _rounds(predictors, items, rounds_cfg, report)
    report.update(_noc(predictors, items, noc_instances, args.seed))
    _alias_auto(report, report, keys=NOC_KEYS)
    report["ranker_by_method"] = _rankers_by_method(
        predictors, ranker_set, ranker_instances, items, rounds_cfg, work, args.out
    )
    _alias_auto(report["ranker_by_method"], report)
    if "model" in predictors:
        report["ranker"], report["ranker_paper_features"] = _ranker(
            predictors["model"], ranker_set, ranker_instances, items, rounds_cfg, work, args.out
        )
        report["ranker_sessions"] = ANNOTATOR
        if args.encodings:
            report["encodings"] = _encodings(
                args, model_set, work, minutes, items, rounds_cfg, rounds["model"]
            )
    report["latency_ms"] = latencies(predictors, items)
    report["load_average_end"] = load_averages()
    out = Path(args.out)
    write_report(report, out)
    plot_miou_vs_clicks(
        {name: r.clicks_curve() for name, r in rounds.items() if name != "auto"},
        out.with_suffix(".png"),
        title=f"{Path(args.test).name}: mIoU over 3 x 3 rounds",
    )
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


def _train(args, backends: list, model_set: Dataset, work: Path, minutes: float, report: dict) -> None:
    """Train M_b and M_b+c, and tune SAM's decoder, when the backends ask for them."""
    if "model" in backends:
        claim_work(work, minutes)
        started = time.perf_counter()
        train_segmenter(
            model_set,
            work,
            train=SegmentTrainConfig(budget_minutes=minutes, seed=args.seed),
            clicks=args.clicks,
        )
        report["train_minutes"] = round((time.perf_counter() - started) / 60, 2)
    if TUNED in backends:
        report[TUNED] = _tune_sam(model_set, Path(work), minutes, args.seed)
        report["tune_seconds"], report["tune_steps"] = (
            report[TUNED]["tune_seconds"],
            report[TUNED]["tune_steps"],
        )


def _auto(predictors: dict, ranker_set: Dataset, rounds_cfg: RoundsConfig, max_instances: int) -> dict:
    """The backend ``auto`` picks, scored on the ranker part of the training part."""
    table = score_backends(
        {k: p for k, p in predictors.items() if k in BACKENDS},
        InstanceItems(ranker_set),
        rounds_cfg,
        max_instances=max_instances,
    )
    auto = {"chosen": choose_backend(table), "table": table, "on": "ranker part of the training part"}
    print(f"auto: {auto['chosen']} ({_finals(table)})", flush=True)
    return auto


def _rounds(predictors: dict, items: InstanceItems, rounds_cfg: RoundsConfig, report: dict) -> dict:
    """The rounds protocol for every predictor, its numbers into ``report``; the results."""
    finish = {EDIT: outline_finish()}
    rounds = {
        name: run_rounds(p, items, rounds_cfg, finish=finish.get(name)) for name, p in predictors.items()
    }
    if EDIT in rounds:
        report["edits"] = edit_summary(rounds[EDIT], SIZE_EDGES)
        print(f"{EDIT}: " + str(report["edits"]["all"]), flush=True)
    for name, result in rounds.items():
        print(f"{name}: mIoU per round " + " ".join(f"{m:.3f}" for m in result.miou), flush=True)
    _alias_auto(rounds, report)
    report["instances"] = len(next(iter(rounds.values())).ious)
    for key, name in (("box_only", "box"), ("grabcut", "grabcut"), ("m_b", "model")):
        if name in rounds:
            report[key] = rounds[name].miou[0]
    report["rounds"] = {name: r.miou for name, r in rounds.items()}
    report["boundary_F"] = {name: r.mean_boundary_f for name, r in rounds.items()}
    report["by_size"] = {name: r.by_size() for name, r in rounds.items()}
    report["mean_clicks"] = rounds.get("model", next(iter(rounds.values()))).clicks_curve()[0]  # as before
    report["mean_clicks_by_method"] = {name: r.clicks_curve()[0] for name, r in rounds.items()}
    return rounds


#: SAM whose candidate masks the annotator may Tab through (protocols.segment)
MULTIMASK = "sam_multimask"
#: SAM with its decoder fine-tuned on the training part (train.sam_decoder), on one core
TUNED = "sam_tuned"
#: SAM zoomed in on small boxes (fewclick.predict.zoom), over the backend named
ZOOMED = {"sam_zoom": "sam", "sam_tuned_zoom": TUNED}
#: the app's served SAM (zoomed), finished by outline edits after the rounds (protocols.segment_edit)
EDIT = "sam_edit"
METHODS = (*BACKENDS, MULTIMASK, *ZOOMED, EDIT, "auto")
NOC_KEYS = ("noc85", "noc90", "noc_mIoU_per_click", "noc85_clicks", "noc90_clicks")


def _backends(methods: list[str]) -> list[str]:
    """The single backends to build: those asked for, and every one when ``auto`` picks;
    SAM with candidates when asked for."""
    based = {ZOOMED[m] for m in methods if m in ZOOMED} | ({"sam"} if EDIT in methods else set())
    picked = [b for b in BACKENDS if b in methods or b in based or ("auto" in methods and b != TUNED)]
    return picked + [m for m in methods if m == MULTIMASK or m in ZOOMED or m == EDIT]


def _predictors(backends: list[str], work: Path, model_dir: Path | None = None) -> dict:
    """Built once, so SAM's embeddings are cached (in memory and under ``work``) across passes."""
    encoder = None
    if {"sam", MULTIMASK, TUNED, EDIT, *ZOOMED} & set(backends):
        from fewclick.predict.encoder import ImageEncoder

        encoder = ImageEncoder(threads=2, cache_dir=Path(work) / "embeddings", memory_items=4)
    model_dir = work if model_dir is None else model_dir
    predictors = {
        name: make_backend(name, model_dir=model_dir if name == "model" else work, encoder=encoder)
        for name in backends
        if name in BACKENDS
    }
    from fewclick.predict.zoom import ZoomedSam

    for name in backends:
        if name in ZOOMED:
            predictors[name] = ZoomedSam(make_backend(ZOOMED[name], model_dir=work, encoder=encoder))
    if EDIT in backends:  # its edits run after the rounds (_rounds)
        predictors[EDIT] = ZoomedSam(make_backend("sam", encoder=encoder))
    if MULTIMASK in backends:
        from fewclick.predict.sam import SamPredictor

        predictors[MULTIMASK] = SamPredictor(encoder, multimask=True)
    return predictors


def _tune_sam(model_set: Dataset, work: Path, minutes: float, seed: int) -> dict:
    """Fine-tune SAM's decoder on the training part's objects for ``minutes`` on one core
    (train.sam_decoder); the tuned decoder is written to ``work``. Returns what it took."""
    from fewclick.models.sam_decoder import SamDecoder
    from fewclick.predict.encoder import ImageEncoder
    from fewclick.predict.pretrained import default_model_files
    from fewclick.train.sam_decoder import TuneConfig, examples_from, tune_decoder

    encoder = ImageEncoder(threads=2, cache_dir=Path(work) / "embeddings", memory_items=4)

    def encode(image):
        e = encoder.encode(image)
        return e.embedding, e.input_size

    started = time.perf_counter()
    examples = examples_from(InstanceItems(model_set), encode)
    encoded = time.perf_counter() - started
    decoder = SamDecoder.from_onnx(default_model_files()[1])
    result = tune_decoder(decoder, examples, TuneConfig(budget_minutes=minutes, seed=seed, threads=1))
    decoder.write_onnx(default_model_files()[1], Path(work) / TUNED_DECODER)
    offsets = result.decoder.iou_offsets or {}
    print(
        f"{TUNED}: {result.steps} steps in {result.seconds:.0f} s on {len(examples)} objects; "
        f"offsets for the mask served {offsets or 'none'} (fit on {result.fit_prompts} prompts)",
        flush=True,
    )
    return {
        "tune_seconds": round(result.seconds, 1),
        "tune_steps": result.steps,
        "tune_objects": len(examples),
        "encode_seconds": round(encoded, 1),
        "offsets": offsets,
        "offset_prompts": result.fit_prompts,
    }


def _alias_auto(table: dict, report: dict, keys: tuple | None = None) -> None:
    """``table["auto"] = table[chosen]`` (in each of ``keys`` of ``table`` when given)."""
    if "auto" not in report:
        return
    chosen = report["auto"]["chosen"]
    for sub in [table] if keys is None else [table[k] for k in keys if k in table]:
        if chosen in sub:
            sub["auto"] = sub[chosen]


def _finals(table: dict) -> str:
    return ", ".join(f"{name} {row['final']:.3f}" for name, row in table.items())


def _noc(predictors: dict, items, instances: int, seed: int) -> dict:
    """NoC from a box (every backend but the box) and from clicks alone (backends that can)."""
    from_box = {
        name: run_noc(p, items, max_instances=instances, seed=seed)
        for name, p in predictors.items()
        if name not in ("box", EDIT)  # sam_edit clicks as sam_zoom does
    }
    clicks = {
        name: run_noc(p, items, max_instances=instances, seed=seed, start="click")
        for name, p in predictors.items()
        if name in CLICKS_ONLY
    }
    out = {
        "noc_instances": len(next(iter(from_box.values())).ious) if from_box else 0,
        "noc85": {name: r.noc["NoC@85"] for name, r in from_box.items()},
        "noc90": {name: r.noc["NoC@90"] for name, r in from_box.items()},
        "noc_mIoU_per_click": {name: r.miou_per_click for name, r in from_box.items()},
        "noc85_clicks": {name: r.noc["NoC@85"] for name, r in clicks.items()},
        "noc90_clicks": {name: r.noc["NoC@90"] for name, r in clicks.items()},
    }
    for name, r in out.items():
        if name.startswith("noc") and isinstance(r, dict):
            print(f"{name}: " + ", ".join(f"{k} {v:.2f}" for k, v in r.items() if isinstance(v, float)))
    return out


#: backends that segment from clicks alone (the clicks-only NoC protocol)
CLICKS_ONLY = ("sam", MULTIMASK, TUNED)


def _rankers_by_method(predictors: dict, ranker_set, instances: int, items, cfg, work: Path, out) -> dict:
    """Per backend: M_r (with the backend's own score) trained on the ranker part's
    sessions and scored on the test part's: ``{"spearman", "top70_mIoU", "all_mIoU"}``."""
    report = {}
    for name, predictor in predictors.items():
        if name == EDIT:  # its sessions are sam_zoom's
            continue
        fit = run_rounds(
            predictor, InstanceItems(ranker_set), replace(cfg, max_instances=instances, **ANNOTATOR)
        )
        test = run_rounds(predictor, items, replace(cfg, **ANNOTATOR))
        ranker = QualityRanker(seed=cfg.seed, with_score=True).fit(fit.features, fit.final_ious, fit.scores)
        r = ranking_report(ranker.predict(test.features, test.scores), test.final_ious)
        report[name] = {k: r[k] for k in ("spearman", "top70_mIoU", "all_mIoU", "count")}
        print(f"ranker {name}: Spearman {r['spearman']:.3f}", flush=True)
        if name == "sam":
            ranker.save(Path(work) / "ranker_sam.pkl")
    return report


ANNOTATOR = RANKER_SESSIONS  # the ranker's sessions (protocols.segment_choice)


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
    """NoC (from a box, and from clicks alone where a backend can) on ``--test`` without any
    training: ``model`` needs ``--models DIR``; ``auto`` is not available (nothing to pick on)."""
    if "auto" in args.methods:
        raise SystemExit("--noc-only scores backends as they are: auto needs a training part to pick on")
    if "model" in args.methods and args.models is None:
        raise SystemExit(
            "--noc-only with the model method needs --models DIR (a folder with m_b.pt and m_bc.pt)"
        )
    items = InstanceItems(read_dataset(args.test))
    work = args.work or Path("out/bench_segment") / f"{Path(args.test).name}_noc"
    backends = _backends([m for m in args.methods if m != "auto"])
    if TUNED in backends and not (work / TUNED_DECODER).is_file():
        raise SystemExit(
            f"--noc-only with {TUNED} needs {work / TUNED_DECODER} (a run without --noc-only makes it)"
        )
    predictors = _predictors(backends, work, model_dir=args.models)
    report = {
        "test": str(args.test),
        "models": None if args.models is None else str(args.models),
        "methods": backends,
        **run_record("load_average_start", threads=torch.get_num_threads(), three=True),
    }
    report.update(_noc(predictors, items, args.noc_instances, args.seed))
    report["instances"] = report["noc_instances"]
    report["latency_ms"] = latencies(predictors, items)
    report["load_average_end"] = load_averages()
    out = Path(args.out)
    write_report(report, out)
    plot_miou_vs_clicks(
        {name: (list(range(len(m))), m) for name, m in report["noc_mIoU_per_click"].items()},
        out.with_suffix(".png"),
        title=f"{Path(args.test).name}: mIoU per click (NoC protocol, from a box)",
    )
    print(
        f"NoC@85 {report['noc85']}, NoC@90 {report['noc90']}; "
        f"clicks only {report['noc90_clicks']}; wrote {out}"
    )
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", type=Path, help="training dataset (not needed with --noc-only)")
    p.add_argument("--test", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--budget-minutes", type=float, help="minutes for M_b and M_b+c together (default 12)")
    p.add_argument("--quick", action="store_true", help="3 min training, fewer test objects")
    p.add_argument("--max-instances", type=int, help="test objects in the rounds protocol (default 600)")
    p.add_argument(
        "--noc-instances",
        type=int,
        help="test objects in the NoC protocol (default 150; all with --noc-only)",
    )
    p.add_argument("--ranker-instances", type=int, help="ranker-part objects to train M_r on (default 1000)")
    p.add_argument("--clicks", default="disks", choices=["disks", "gaussians", "distance"])
    p.add_argument(
        "--encodings",
        nargs="*",
        default=[],
        choices=["disks", "gaussians", "distance"],
        help="also train M_b+c with these click encodings and compare them over the rounds",
    )
    p.add_argument(
        "--methods",
        nargs="+",
        default=list(METHODS),
        choices=METHODS,
        help="backends to score (default: all); auto is the pick made on the training part",
    )
    p.add_argument(
        "--noc-only", action="store_true", help="score the methods on --test with NoC only, no training"
    )
    p.add_argument("--models", type=Path, help="a trained model folder (for --noc-only)")
    add_work(p, "where the models go")
    p.add_argument("--seed", type=int, default=0)
    return p


if __name__ == "__main__":
    sys.exit(main())
