"""Test, then train, without the app (issue 68): each source of proposals on open scored on
every image before it learns from it, and the level of the test that lets one serve.

    python benchmarks/prequential.py --data D [--part train|test|all] [--images N]
        [--orders K] [--z 1.5 0 0.5 1 2] [--margin 0.5 0 1 2] --work W --out F.json

The first ``--images`` images of the part by name (then ``--orders`` - 1 shuffles of them,
seeded) go one at a time, as a person finishes them. On each, before it joins the history,
every source (:mod:`fewclick.active.sources`: the look-alikes, the look-alikes moved by the
E key's offsets, and the fast learner with and without SAM's feature vectors and its box
regressor) shows its proposals of each class at the threshold the images before chose
(:func:`~fewclick.active.prequential.best_threshold`), and is scored by the seconds it saved
(:func:`~fewclick.active.prequential.savings`). The :class:`~fewclick.active.prequential.Record`
picks the source serving each class from those scores, and ``served`` is what the person
would have saved with the source that served each image. Proposals are SAM's, as the app
makes them (``--work``/proposals keeps them).

``false_promotions``: per level ``z`` of the test (and ``false_promotions_by_pairs``: per
least number of paired images, ``--pairs``; ``false_promotions_by_margin``: per least gain
in seconds an image, ``--margin``), the records replayed on the same scores;
a promotion is false when the source promoted saved less than the one it replaced over the
next 8 images (``_prequential_replay``). Writes F.json and F.png (each source's savings so
far, the served one marked).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

import numpy as np
from _common import add_work, load_average, read_split, run_record, work_folder, write_report
from _prequential_plot import plot
from _prequential_replay import LEVELS, MARGINS, false_promotions
from _proposals_cache import cached_proposals
from tqdm import tqdm

from fewclick.active.prequential import (
    MARGIN,
    NONE,
    Record,
    Z,
    at_threshold,
    best_threshold,
    objects_of,
    savings,
)
from fewclick.active.sources import Learned, LookAlikes
from fewclick.predict.encoder import ImageEncoder
from fewclick.predict.learner import LearnerConfig
from fewclick.predict.proposals import ProposalMaker


def sources() -> list:
    return [
        LookAlikes(),
        LookAlikes(edges=True),
        Learned(LearnerConfig(), "learner"),
        Learned(LearnerConfig(regress=False), "learner, no regressor"),
        Learned(LearnerConfig(vectors=False), "learner, geometry only"),
    ]


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = _parser().parse_args(argv)
    records = _part(args.data, args.part)[: args.images]
    work = work_folder(args.work, "prequential", args.data)
    maker = ProposalMaker(ImageEncoder(threads=1, cache_dir=work / "embeddings", disk_mb=4096), window=None)
    rng = np.random.default_rng(0)
    orders = [np.arange(len(records))] + [rng.permutation(len(records)) for _ in range(args.orders - 1)]
    runs = []
    for k, order in enumerate(orders):
        ordered = [records[i] for i in order]
        found = _proposals(maker, ordered, work / "proposals", f"order {k + 1}, proposals")
        gts = [objects_of(r.objects) for r in ordered]
        runs.append(_run(found, gts, (args.z[0], args.pairs[0], args.margin[0]), f"order {k + 1}"))
    names = [s.name for s in sources()]
    rows = [r["per_image"] for r in runs]
    report = {
        "dataset": str(args.data),
        "part": args.part,
        **run_record(),
        "images": len(records),
        "file_names": [records[i].file_name for i in orders[0]],
        "z": args.z[0],
        "sources": names,
        "per_image": runs[0]["per_image"],
        # the other orders' rows (their savings), for replaying the test at other levels
        "orders_per_image": [[{"saved": row["saved"]} for row in r["per_image"]] for r in runs[1:]],
        "totals": _totals(runs[0]["per_image"], names),
        "promotions": runs[0]["promotions"],
        "false_promotions": false_promotions(rows, names, args.z, args.pairs[0], args.margin[0]),
        "false_promotions_by_pairs": {
            str(n): false_promotions(rows, names, args.z, n, args.margin[0]) for n in args.pairs
        },
        "false_promotions_by_margin": {
            str(m): false_promotions(rows, names, args.z, args.pairs[0], m) for m in args.margin
        },
        "pairs": args.pairs[0],
        "margin": args.margin[0],
        "orders": len(orders),
        "learner_fit_s": _quantiles([s for r in runs for s in r["fit_s"]]),
        "load": load_average(),
    }
    report["command"] = " ".join(
        ["python benchmarks/prequential.py", *(argv if argv is not None else sys.argv[1:])]
    )
    write_report(report, args.out)
    plot(report, args.out.with_suffix(".png"), Path(args.data).name)
    t = report["totals"]
    for name in [*names, "served"]:
        print(f"{name:24s} saved {t[name]['seconds_saved']:8.1f} s: {t[name]['ratio_seconds']:.2f}x seconds, "
              f"{t[name]['ratio_interactions']:.2f}x interactions")  # fmt: skip
    for z, f in report["false_promotions"].items():
        print(f"z {z}: {f['false']} false of {f['judged']} judged promotions ({f['rate']}), "
              f"served {f['served_seconds']:.0f} s")  # fmt: skip
    return 0


def _part(data: Path, part: str) -> list:
    train, test = read_split(data, data)
    chosen = {"train": train.images, "test": test.images, "all": train.images + test.images}[part]
    return sorted(chosen, key=lambda r: r.file_name)


def _proposals(maker: ProposalMaker, records: list, cache: Path, what: str) -> list:
    """Each image's proposals as the app makes them (windows sized by the image's own look)."""
    return [cached_proposals(maker, r, cache) for r in tqdm(records, desc=what)]


def _run(found: list, gts: list, test: tuple[float, int, float], what: str) -> dict:
    """Every image in turn: each source scored on it (then fit on it and the ones before);
    ``test``: the record's ``(z, pairs, margin)``."""
    made = sources()
    names = [s.name for s in made]
    record = Record(tuple(names), *test)
    scored = {name: [] for name in names}  # per source: (objects, scored proposals) of the images so far
    per_image, fit_s = [], []
    for i, (f, gt) in enumerate(tqdm(list(zip(found, gts)), desc=what, unit="image")):
        classes = sorted(set(np.asarray(gt.labels).tolist()))
        saved: dict[str, dict[int, float]] = {}
        actions: dict[str, dict[int, int]] = {}
        for source in made:
            shown = source.propose(f)
            history = scored[source.name]
            for c in classes:
                cut = best_threshold(history[-16:], c)
                s = savings(gt, at_threshold(shown, c, cut), c)
                saved.setdefault(source.name, {})[c] = s.seconds
                actions.setdefault(source.name, {})[c] = s.interactions
            history.append((gt, shown))
        served = {c: record.serves(c) for c in classes}
        row = {
            "objects": len(gt),
            "hand_seconds": _hand_seconds(gt),
            "hand_interactions": _hand_interactions(gt),
            "saved": saved,
            "saved_interactions": actions,
            "served": served,
            "served_seconds": sum(0.0 if served[c] == NONE else saved[served[c]][c] for c in classes),
            "served_interactions": sum(0 if served[c] == NONE else actions[served[c]][c] for c in classes),
        }
        for c in classes:
            record.add(i, c, {name: saved[name][c] for name in names})
        per_image.append(row)
        history_now = list(zip(found[: i + 1], gts[: i + 1]))
        for source in made:
            source.fit(history_now)
            if isinstance(source, Learned) and source.name == "learner":
                fit_s.append(source.fit_s)
    return {"per_image": per_image, "promotions": record.promotions, "fit_s": fit_s}


def _hand_seconds(gt) -> float:
    from fewclick.simulate.annotator import manual

    return manual(gt, None).seconds()


def _hand_interactions(gt) -> int:
    from fewclick.simulate.annotator import manual

    return manual(gt, None).interactions


def _totals(rows: list[dict], names: list[str]) -> dict:
    hand_s = sum(r["hand_seconds"] for r in rows)
    hand_i = sum(r["hand_interactions"] for r in rows)
    out = {}
    for name in [*names, "served"]:
        if name == "served":
            s, i = sum(r["served_seconds"] for r in rows), sum(r["served_interactions"] for r in rows)
        else:
            s = sum(sum(r["saved"][name].values()) for r in rows)
            i = sum(sum(r["saved_interactions"][name].values()) for r in rows)
        out[name] = {
            "seconds_saved": round(s, 1),
            "interactions_saved": int(i),
            "ratio_seconds": round(hand_s / max(hand_s - s, 1e-6), 3),
            "ratio_interactions": round(hand_i / max(hand_i - i, 1e-6), 3),
        }
    out["hand"] = {"seconds": round(hand_s, 1), "interactions": int(hand_i)}
    return out


def _quantiles(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p95": None}
    return {
        "p50": round(float(np.quantile(values, 0.5)), 3),
        "p95": round(float(np.quantile(values, 0.95)), 3),
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--part", choices=("train", "test", "all"), default="train")
    p.add_argument("--images", type=int, default=40)
    p.add_argument(
        "--orders", type=int, default=1, help="the name order, then shuffles (the false-promotion count)"
    )
    p.add_argument(
        "--z", type=float, nargs="+", default=[Z, *LEVELS], help="the test's level; the first runs"
    )
    p.add_argument(
        "--margin",
        type=float,
        nargs="+",
        default=[MARGIN, *MARGINS],
        help="the least gain in seconds an image a source must show to win; the first runs",
    )
    p.add_argument(
        "--pairs",
        type=int,
        nargs="+",
        default=[2, 3, 4],
        help="images before a source can win; the first runs",
    )
    p.add_argument("--out", type=Path, required=True)
    add_work(p, "where SAM's embeddings and proposals of the images go")
    return p


if __name__ == "__main__":
    sys.exit(main())
