"""How noisy the background trainer's held-out score is, against the number of held-out objects.

    python benchmarks/heldout_spread.py DATA [DATA ...] --work DIR --out F.json
        [--objects 5 10 20 ...] [--draws 300] [--boot-draws 40] [--resamples 200]

The trainer (:mod:`fewclick.active.continual`) scores a detector on held-out finished images:
mAP@0.5 averaged over C3Det's clicks k = 1, 3, 5 (``_map``), and promotes a candidate when it
wins at least 84% of paired bootstrap resamples of those images. For each dataset, on the
train part of the split by image only (every 4th image by name is test; it is never read):

1. two models, kept in ``--work/<dataset>`` and reused: ``serving``, C3Det on the ImageNet
   backbone as the app's first detector trains it (``--serving-steps`` at the default rate,
   input scale "auto") on the first ``--serving-images`` train-part images with boxes; and
   ``candidate``, one round of :class:`ContinualTrainer` (its defaults: 200 steps at 1e-3)
   warm-started from it on the first ``--candidate-images``;
2. the pool: every other train-part image with an object; each model's detections at
   k = 1, 3, 5 with :func:`click_predictions` (one session, the same clicks for both), once;
3. for every ``--objects`` target N, ``--draws`` held-out sets: the pool's images in random
   order until they hold N objects, on at least ``--min-images`` (2: the trainer's
   ``min_held_out`` when the question was asked); the same for every ``--images`` count (that
   many images at random) and every ``--rules`` "N/M" (N objects on at least M images); no set
   above :data:`MOST` of the pool's objects or images. Per set, each model's score and their
   difference; their std over the sets (``std``: the noise a person sees between one held-out
   set and another; ``std_pool``: the same corrected for drawing without replacement from a
   finite pool, sqrt((P - 1) / (P - n)) for n of P images), and on the first ``--boot-draws``
   sets the std over ``--resamples`` bootstrap resamples of the images (``boot_std``, what the
   trainer's test sees) and the paired bootstrap's wins.

Objects are the non-ignored ones (what mAP counts). Boxes are axis-aligned (``--boxes``), as
the app's finished images hold them. The score is computed from per-image matches (VOC
matching is per image), checked against ``_map`` on ``--check`` sets per dataset.
Writes F.json and F.png (std of the score against held-out objects, a line per dataset).
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from _common import add_work, load_average, read_split, run_record, work_folder, write_report
from tqdm import tqdm

from fewclick.active.continual import ContinualConfig, ContinualTrainer, _map, click_predictions
from fewclick.io.dataset import Dataset
from fewclick.io.images import load_image
from fewclick.metrics.detection import ap_from_matches, match_image
from fewclick.predict.detect import ClickDetector
from fewclick.train.detect import TrainConfig, detector_config_for, train_detector
from fewclick.types import Objects, geometry_only

OBJECTS = (5, 10, 15, 20, 30, 40, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1000)
IMAGES = (2, 3, 4, 6, 8, 12, 16, 24, 32, 48)
OBJECT_TICKS = (5, 10, 20, 50, 100, 200, 500, 1000)
IMAGE_TICKS = (2, 4, 8, 16, 32, 48)
#: the JSON key of each sweep's rows
SWEEPS = {"objects": "spread", "images": "spread_images", "rules": "spread_rules"}
#: the largest held-out set drawn, as a share of the pool's objects or images
MOST = 0.4
MODELS = ("serving", "candidate")
BOUNDS = (0.05, 0.10)
CONTINUAL = ContinualConfig()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.plot_only:
        plot(json.loads(args.out.read_text()), args.out.with_suffix(".png"))
        return 0
    torch.set_num_threads(1)  # the trainer's share of the machine
    started = time.perf_counter()
    report = {
        **run_record("load_average_start", threads=1, three=True),
        "objects": list(args.objects),
        "images": list(args.images),
        "rules": list(args.rules),
        "min_images": args.min_images,
        "most": MOST,
        "draws": args.draws,
        "boot_draws": args.boot_draws,
        "resamples": args.resamples,
        "ks": list(CONTINUAL.ks),
        "confidence": CONTINUAL.confidence,
        "datasets": {},
    }
    for data in args.data:
        report["datasets"][Path(data).name] = _dataset(Path(data), args)
        write_report(report, args.out)
    report["load_average_end"] = load_average()
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["recommendation"] = recommend(report)
    write_report(report, args.out)
    plot(report, Path(args.out).with_suffix(".png"))
    for sweep in SWEEPS.values():
        print(table(report, sweep))
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.png')} in {report['seconds']:.0f} s")
    return 0


def _dataset(data: Path, args) -> dict:
    """One dataset's models, pool and spread (module docstring)."""
    train_set, _ = read_split(data, data, boxes=args.boxes)  # the test part is not used
    boxed = sorted((r for r in train_set.images if _count(r.objects)), key=lambda r: r.file_name)
    work = work_folder(args.work and args.work / data.name, "heldout_spread", data)
    first = max(args.serving_images, args.candidate_images)
    paths, seconds = _models(train_set, boxed, work, args)
    pool = boxed[first:]
    if args.pool:
        pool = pool[: args.pool]
    gts = [geometry_only(r.objects) for r in pool]
    preds = _predictions(pool, gts, paths, work)
    scorer = Scorer(gts, preds, len(train_set.classes))
    scorer.check(args.check, np.random.default_rng(args.seed + 1))
    rng = np.random.default_rng(args.seed)
    sweeps = _sweeps(scorer.counts, args)
    bar = tqdm(total=sum(len(s) for s in sweeps.values()), desc=data.name)
    rows = {name: {} for name in sweeps}
    for name, targets in sweeps.items():
        for key, (objects, images) in targets.items():
            rows[name][key] = spread(scorer, objects, images, rng, args)
            bar.update()
    bar.close()
    whole = np.arange(len(pool))
    return {
        "train_part_images": len(train_set),
        "classes": list(train_set.classes),
        "pool_images": len(pool),
        "pool_objects": int(scorer.counts.sum()),
        "train_seconds": seconds,
        "pool_score": {m: round(scorer.score(m, whole), 4) for m in MODELS},
        **{SWEEPS[name]: value for name, value in rows.items()},
    }


def _sweeps(counts: np.ndarray, args) -> dict[str, dict[str, tuple[int, int]]]:
    """Per sweep, its held-out sets' (objects, at least images) by key: the object counts (on
    at least ``--min-images``), the image counts and the rules "objects/images"; none larger
    than :data:`MOST` of the pool, whose correction would then be most of the std."""
    most_objects, most_images = MOST * counts.sum(), MOST * len(counts)
    rules = [tuple(int(v) for v in r.split("/")) for r in args.rules]
    return {
        "objects": {str(n): (n, args.min_images) for n in args.objects if n <= most_objects},
        "images": {str(n): (0, n) for n in args.images if n <= most_images},
        "rules": {f"{o}/{i}": (o, i) for o, i in rules if o <= most_objects and i <= most_images},
    }


def _count(objects: Objects) -> int:
    return int((~np.asarray(objects.ignore, bool)).sum())


def _models(train_set: Dataset, boxed: list, work: Path, args) -> tuple[dict[str, Path], dict[str, float]]:
    """The serving model and the trainer's candidate from it (trained once, then reused),
    and the seconds each took to train (0 when reused)."""
    first = Dataset(train_set.classes, boxed[: args.serving_images], train_set.format)
    more = Dataset(train_set.classes, boxed[: args.candidate_images], train_set.format)
    config = detector_config_for(first, "c3det", backbone="imagenet")
    seconds = {}
    serving = work / "serving" / "last.pt"
    tick = time.perf_counter()
    if not serving.is_file():
        train = TrainConfig(steps=args.serving_steps, input_scale="auto", threads=1, val_every=10**9)
        serving = train_detector(first, serving.parent, config, train, log=lambda _: None)
    seconds["serving"] = round(time.perf_counter() - tick, 1)
    rounds = replace(CONTINUAL, round_steps=args.round_steps)
    trainer = ContinualTrainer(work / "trainer", config, rounds, start=serving)
    tick = time.perf_counter()
    if not trainer.state.rounds:
        trainer.round(more, held=[])  # too few held-out images: trained, not scored
    seconds["candidate"] = round(time.perf_counter() - tick, 1)
    return {"serving": serving, "candidate": Path(trainer.state.rounds[0].path)}, seconds


def _predictions(pool: list, gts: list[Objects], paths: dict[str, Path], work: Path) -> dict:
    """Each model's ``[k][image]`` detections on the pool with C3Det's clicks (cached in
    ``work``, keyed by the pool's file names)."""
    cache = work / "predictions.pkl"
    names = [r.file_name for r in pool]
    if cache.is_file():
        stored = pickle.loads(cache.read_bytes())
        if stored["names"] == names:
            return stored["preds"]
    held = [(load_image(r.path), gt) for r, gt in zip(pool, gts)]
    preds = {}
    for model in MODELS:
        print(f"{work.name}: {model} on {len(held)} pool images", flush=True)
        predictor = ClickDetector.load(paths[model])
        preds[model] = click_predictions(predictor, held, CONTINUAL.ks, CONTINUAL.seed)
    cache.write_bytes(pickle.dumps({"names": names, "preds": preds}))
    return preds


class Scorer:
    """The trainer's score (``_map``: VOC07 mAP@0.5 averaged over the ks, NaN as 0) of each
    model on any multiset of pool images, from per-image matches computed once: VOC matching
    is within an image, so a set's AP needs only its images' matches put together, in order."""

    def __init__(self, gts: list[Objects], preds: dict, num_classes: int) -> None:
        self.gts, self.preds, self.num_classes = gts, preds, num_classes
        self.counts = np.array([_count(g) for g in gts])
        self.per_class = np.array([_per_class(g, num_classes) for g in gts])  # [image, class]
        self.matches = {
            m: [[_matches(g, p) for g, p in zip(gts, per_k)] for per_k in preds[m]] for m in MODELS
        }

    def score(self, model: str, picks: np.ndarray) -> float:
        positives = self.per_class[picks].sum(0)
        values = [self._map(self.matches[model][j], picks, positives) for j in range(len(CONTINUAL.ks))]
        return float(np.mean([0.0 if np.isnan(v) else v for v in values]))

    def _map(self, matches: list[dict], picks: np.ndarray, positives: np.ndarray) -> float:
        aps = []
        for c in np.flatnonzero(positives):
            found = [matches[i][c] for i in picks if c in matches[i]]
            if not found:
                aps.append(0.0)
                continue
            scores, tp, absorbed = (np.concatenate([f[j] for f in found]) for j in range(3))
            aps.append(ap_from_matches(scores, tp, absorbed, int(positives[c]), "voc07"))
        return float(np.mean(aps)) if aps else float("nan")

    def check(self, sets: int, rng: np.random.Generator) -> None:
        """Compare :meth:`score` with the trainer's ``_map`` on ``sets`` random multisets."""
        for _ in range(sets):
            picks = rng.integers(0, len(self.gts), int(rng.integers(2, min(len(self.gts), 30) + 1)))
            for m in MODELS:
                mine = self.score(m, picks)
                theirs = _map(
                    [self.gts[i] for i in picks],
                    [[p[i] for i in picks] for p in self.preds[m]],
                    self.num_classes,
                )
                if abs(mine - theirs) > 1e-9:
                    raise RuntimeError(f"expected the trainer's score {theirs}, got {mine} on images {picks}")


def _per_class(gt: Objects, num_classes: int) -> np.ndarray:
    keep = ~(np.asarray(gt.ignore, bool) | (np.asarray(gt.difficult) > 0))
    return np.bincount(gt.labels[keep], minlength=num_classes)


def _matches(gt: Objects, pred) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per class with detections: (scores, true positive, absorbed) of one image, as
    :func:`~fewclick.metrics.detection.evaluate_detections` matches them."""
    out = {}
    for c in np.union1d(gt.labels, pred.labels):
        g, p = gt[gt.labels == c], pred[pred.labels == c]
        if not len(p):
            continue
        p = p[np.argsort(-p.scores, kind="mergesort")]
        ignored = g.ignore | (g.difficult > 0)
        scores, tp, absorbed = match_image(p, g, ignored, (0.5,), False, "devkit")
        out[int(c)] = (scores, tp[0], absorbed[0])
    return out


def draw(counts: np.ndarray, objects: int, images: int, rng: np.random.Generator) -> np.ndarray:
    """A held-out set: pool images in random order until they hold ``objects`` objects on
    at least ``images`` images."""
    order = rng.permutation(len(counts))
    n = int(np.searchsorted(np.cumsum(counts[order]), objects)) + 1 if objects else 0
    return order[: max(n, images)]


@dataclass(frozen=True)
class _Set:
    """One held-out set's scores: ``serving``, ``candidate`` and their difference."""

    serving: float
    candidate: float

    @property
    def difference(self) -> float:
        return self.candidate - self.serving


def spread(scorer: Scorer, objects: int, images: int, rng: np.random.Generator, args) -> dict:
    """The spread of the score over held-out sets of ``objects`` objects on at least
    ``images`` images (module docstring)."""
    sets = [draw(scorer.counts, objects, images, rng) for _ in range(args.draws)]
    scored = [_Set(scorer.score("serving", s), scorer.score("candidate", s)) for s in sets]
    images = np.mean([len(s) for s in sets])
    pool = len(scorer.counts)
    correction = np.sqrt((pool - 1) / max(pool - images, 1))
    boot = [_bootstrap(scorer, s, rng, args.resamples) for s in sets[: args.boot_draws]]
    row = {
        "images_mean": round(float(images), 2),
        "objects_mean": round(float(np.mean([scorer.counts[s].sum() for s in sets])), 1),
        "pool_correction": round(float(correction), 3),
        "wins_mean": round(float(np.mean([b["wins"] for b in boot])), 3),
        "promoted_share": round(float(np.mean([b["wins"] >= CONTINUAL.confidence for b in boot])), 3),
    }
    for name in (*MODELS, "difference"):
        values = np.array([getattr(s, name) for s in scored])
        row[name] = {
            "mean": round(float(values.mean()), 4),
            "std": round(float(values.std(ddof=1)), 4),
            "std_pool": round(float(values.std(ddof=1) * correction), 4),
            "boot_std": round(float(np.mean([b[name] for b in boot])), 4),
        }
    return row


def _bootstrap(scorer: Scorer, picks: np.ndarray, rng: np.random.Generator, resamples: int) -> dict:
    """Over ``resamples`` resamples of ``picks`` (the same for both models, as
    :func:`paired_bootstrap`): each score's std and the share the candidate wins."""
    rows = []
    for _ in range(resamples):
        again = picks[rng.integers(0, len(picks), len(picks))]
        rows.append(_Set(scorer.score("serving", again), scorer.score("candidate", again)))
    out = {name: float(np.std([getattr(r, name) for r in rows], ddof=1)) for name in (*MODELS, "difference")}
    wins = [1.0 if r.difference > 0 else 0.5 if r.difference == 0 else 0.0 for r in rows]
    return {**out, "wins": float(np.mean(wins))}


def recommend(report: dict) -> dict:
    """Per bound, for the object and the image sweeps: per dataset the fewest held-out objects
    (images) from which on both models' score std between held-out sets (``std_pool``) and
    bootstrap std stay at or under the bound, and "all", the most of those (None: a dataset
    never gets there in the sets measured); and the rules within the bound on every dataset."""
    out = {}
    for bound in BOUNDS:
        entry = {}
        for sweep in ("spread", "spread_images"):
            each = {name: _smallest(data[sweep], bound) for name, data in report["datasets"].items()}
            known = [v for v in each.values() if v is not None]
            entry[sweep] = {**each, "all": max(known) if len(known) == len(each) else None}
        rules = [set(d["spread_rules"]) for d in report["datasets"].values()]
        entry["rules"] = [
            key
            for key in sorted(set.intersection(*rules), key=lambda k: [int(v) for v in k.split("/")])
            if all(_within(d["spread_rules"][key], bound) for d in report["datasets"].values())
        ]
        out[str(bound)] = entry
    return out


def _smallest(rows: dict, bound: float) -> int | None:
    """The fewest of ``rows``' targets from which on every row is within ``bound``."""
    keys = sorted(rows, key=int)
    fine = [k for i, k in enumerate(keys) if all(_within(rows[m], bound) for m in keys[i:])]
    return int(fine[0]) if fine else None


def _within(row: dict, bound: float) -> bool:
    return all(max(row[m]["std_pool"], row[m]["boot_std"]) <= bound for m in MODELS)


def table(report: dict, sweep: str = "spread") -> str:
    """A markdown table of ``sweep``: per dataset and held-out set size, the candidate's and
    the serving model's std between sets (pool-corrected), their bootstrap std, and the
    difference's."""
    lines = [
        "| dataset | set | objects | images | candidate mAP | std (cand / serv) | boot std (cand / serv) "
        "| diff mean | diff std | diff boot std | promoted |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, data in report["datasets"].items():
        for n, row in data[sweep].items():
            c, s, d = row["candidate"], row["serving"], row["difference"]
            lines.append(
                f"| {name} | {n} | {row['objects_mean']:.0f} | {row['images_mean']:.1f} | {c['mean']:.3f} "
                f"| {c['std_pool']:.3f} / {s['std_pool']:.3f} | {c['boot_std']:.3f} / {s['boot_std']:.3f} "
                f"| {d['mean']:+.3f} | {d['std_pool']:.3f} | {d['boot_std']:.3f} "
                f"| {row['promoted_share']:.0%} |"
            )
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    """The score's std between held-out sets (pool-corrected), a line per dataset (candidate
    solid, serving dashed), against held-out objects and against held-out images; and the
    std of their difference (between sets solid, bootstrap dotted) against objects."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), sharey=True)
    for i, (name, data) in enumerate(report["datasets"].items()):
        colour = f"C{i}"
        for ax, sweep in zip(axes, ("spread", "spread_images")):
            n, rows = [int(k) for k in data[sweep]], list(data[sweep].values())
            for model, style in zip(MODELS, ("--", "-")):
                std = [r[model]["std_pool"] for r in rows]
                ax.plot(n, std, style, marker=".", color=colour, label=f"{name} {model}")
        n, rows = [int(k) for k in data["spread"]], list(data["spread"].values())
        for key, style, what in (("std_pool", "-", "between sets"), ("boot_std", ":", "bootstrap")):
            std = [r["difference"][key] for r in rows]
            axes[2].plot(n, std, style, marker=".", color=colour, label=f"{name} {what}")
    titles = ("std of the held-out score", "std of the held-out score", "std of candidate - serving")
    ticks = (OBJECT_TICKS, IMAGE_TICKS, OBJECT_TICKS)
    for ax, title, x, at in zip(
        axes, titles, ("held-out objects", "held-out images", "held-out objects"), ticks
    ):
        for bound in BOUNDS:
            ax.axhline(bound, color="grey", lw=0.8)
        ax.set(xscale="log", xlabel=x, title=title)
        ax.set_xticks(at, [str(t) for t in at])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("std (mAP@0.5, mean of k = 1, 3, 5)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", type=Path, nargs="+", help="dataset folders (their train part is used)")
    add_work(
        p, "folder of each dataset's models and predictions (default out/bench_heldout_spread/<dataset>)"
    )
    p.add_argument("--out", type=Path, default=Path("docs/benchmarks/heldout_spread.json"))
    p.add_argument("--objects", type=int, nargs="+", default=OBJECTS, help="held-out object counts")
    p.add_argument("--images", type=int, nargs="+", default=IMAGES, help="held-out image counts")
    p.add_argument("--rules", nargs="*", default=[], help='held-out sets of "objects/images" at least')
    p.add_argument("--min-images", type=int, default=2, help="the fewest images of a set of the object sweep")
    p.add_argument("--draws", type=int, default=300, help="held-out sets per object count")
    p.add_argument("--boot-draws", type=int, default=40, help="of them, how many are bootstrapped")
    p.add_argument("--resamples", type=int, default=CONTINUAL.resamples)
    p.add_argument("--serving-images", type=int, default=5)
    p.add_argument("--serving-steps", type=int, default=300)
    p.add_argument("--candidate-images", type=int, default=8)
    p.add_argument("--round-steps", type=int, default=CONTINUAL.round_steps, help="the candidate's round")
    p.add_argument("--pool", type=int, default=0, help="at most this many pool images (0: all)")
    p.add_argument("--boxes", choices=("aligned", "auto"), default="aligned")
    p.add_argument("--check", type=int, default=20, help="sets the fast score is checked on")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot-only", action="store_true", help="draw F.png again from F.json")
    return p


if __name__ == "__main__":
    raise SystemExit(main())
