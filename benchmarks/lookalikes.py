"""The first click with no training: one click, and how many objects like it the page boxes.

    python benchmarks/lookalikes.py --train T --test H --images N --out F.json --work W
        [--iou 0.7] [--calibrate 8] [--window auto|1024]

On each of the first ``--images`` test images by name, one click on the object of the image's
most frequent class nearest the centre of that class's objects, at the centre of its box. What
the page would show after it: the clicked object's own box (the proposal under the click,
:func:`fewclick.predict.lookalike.clicked_proposal`) and its look-alikes among the image's
SAM proposals (:mod:`fewclick.predict.proposals`, :mod:`fewclick.predict.lookalike`) at the
default threshold, each box moved by the edge offsets of its class
(:class:`~fewclick.predict.own_box.EdgeOffsets`, as a project learns them from its finished
images). The offsets and the threshold come from the first ``--calibrate`` images of the train
part only, clicked the same way: the offsets from their objects paired with their proposals,
the threshold the one of best F1 at ``--iou``. ``first_click_sam_boxes`` counts SAM's boxes
unmoved. When ``--test`` is the same
path as ``--train`` the dataset is split by image (every 4th is test).

Counted, for the clicked class, greedily by score (the clicked box first): a box is right
when it matches an unmatched object of the class at IoU >= 0.7 (``recall70``, ``precision``)
or >= 0.5 (``recall50``, ``precision50``); recall over the class's objects, the clicked one
included; precision over the boxes shown. ``opened`` counts the same before any click: what
the image opens with when the calibration images are the finished ones (the look-alikes of
their objects' proposals, at the threshold of best F1 on each calibration image opened with
the others' exemplars). Pooled over the images in ``first_click``, and per
image. ``latency``, per window of the images whose proposals were made (not read from
``--work``'s cache), one thread: ``window_s`` every stage of it, the encoder included
(``encode_s``); ``prepare_s`` the rest (prompts, SAM's decoder, selection, features);
``decode_ms_per_prompt`` the decoder's milliseconds per prompt asked; then a click's
matching in ms, and the load average. ``stages``: the seconds of each stage over all of
them, and its share (:mod:`fewclick.predict.stage_clock`). ``--window auto`` (the default)
sizes each image's windows to its objects (:func:`fewclick.predict.proposals.auto_window`);
``images[].window`` says what each got. Writes F.json and F.png (per-image recall and precision).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from _common import add_work, load_average, read_split, run_record, work_folder, write_report
from _proposals_cache import cached_proposals
from _stage_times import quantile, stage_table, window_latency
from tqdm import tqdm

from fewclick.metrics.detection import box_iou
from fewclick.predict.encoder import ImageEncoder
from fewclick.predict.lookalike import RELATIVE, clicked_proposal, look_alikes
from fewclick.predict.own_box import EdgeOffsets
from fewclick.predict.proposals import MAX_POINTS, ProposalMaker
from fewclick.predict.stage_clock import StageClock


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    train_set, test_set = read_split(args.train, args.test)
    work = work_folder(args.work, "lookalikes", args.train)
    encoder = ImageEncoder(threads=1)  # no disk cache: each window's encoding is timed
    maker = ProposalMaker(encoder, window=args.window, limit=args.limit)
    timing: dict[str, list[float]] = {"click_ms": []}
    clock = StageClock()
    calibrate = _clicks(
        maker, _first(train_set, args.calibrate), work / "proposals", timing, clock, "calibration images"
    )
    offsets = _offsets(calibrate)
    calibrate = [_moved(c, offsets) for c in calibrate]
    threshold = _best_threshold(calibrate, args.iou)
    tested = _clicks(maker, _first(test_set, args.images), work / "proposals", timing, clock, "test images")
    per_image = [_counted(_moved(c, offsets), threshold) for c in tested]
    sam_boxes = [_counted(c, threshold) for c in tested]
    # the image opened with no click: the look-alikes of the calibration images' objects
    opened_calibration = [
        _opened(c, _exemplars(calibrate[:i] + calibrate[i + 1 :]), offsets) for i, c in enumerate(calibrate)
    ]
    opened_threshold = _best_threshold(opened_calibration, args.iou)
    carried = _exemplars(calibrate)
    opened = [_counted(_opened(c, carried, offsets), opened_threshold) for c in tested]
    report = {
        "dataset": str(args.test),
        **run_record(),
        "window": args.window or "auto",
        "threshold": {"relative": threshold, "chosen_at_iou": args.iou, "calibration_images": len(calibrate)},
        "first_click": _pooled(per_image),
        "first_click_sam_boxes": _pooled(sam_boxes),
        "opened": {**_pooled(opened), "threshold": opened_threshold, "per_image": opened},
        "offsets": {test_set.classes[c]: v.round(4).tolist() for c, v in offsets.per_class.items()},
        "images": per_image,
        "latency": {
            **window_latency(clock),
            "click_ms_p95": quantile(timing["click_ms"], 0.95),
            "load": load_average(),
        },
        "stages": stage_table(clock),
    }
    report["command"] = " ".join(
        ["python benchmarks/lookalikes.py", *(argv if argv is not None else sys.argv[1:])]
    )
    write_report(report, args.out)
    _plot(per_image, args.out.with_suffix(".png"), Path(args.test).name)
    o = report["opened"]
    print(
        f"opened with the calibration images' exemplars, threshold {opened_threshold:.2f}: recall70 "
        f"{o['recall70'] or 0:.3f} recall50 {o['recall50'] or 0:.3f} precision {o['precision'] or 0:.3f} "
        f"precision50 {o['precision50'] or 0:.3f}"
    )
    f, lat = report["first_click"], report["latency"]
    print(
        f"{len(per_image)} images, threshold {threshold:.2f}: recall70 {f['recall70']:.3f} "
        f"recall50 {f['recall50']:.3f} precision {f['precision']:.3f} precision50 {f['precision50']:.3f}; "
        f"window p95 {lat['window_s_p95'] or float('nan'):.1f} s, encoder p95 "
        f"{lat['encode_s_p95'] or float('nan'):.1f} s (nan: from --work's cache), "
        f"click p95 {lat['click_ms_p95']:.0f} ms"
    )
    return 0


def _first(dataset, n: int) -> list:
    return sorted(dataset.images, key=lambda r: r.file_name)[:n]


def _clicks(
    maker: ProposalMaker, records: list, cache: Path, timing: dict, clock: StageClock, what: str
) -> list[dict]:
    """Per image of ``records`` with objects: the click (module docstring), what it shows at
    every threshold (the look-alikes with their scores), and the class's objects."""
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for rec in tqdm(records, desc=what, unit="image"):
        keep = (
            ~np.asarray(rec.objects.ignore, bool)
            if rec.objects.ignore is not None
            else np.ones(len(rec.objects), bool)
        )
        labels, boxes = np.asarray(rec.objects.labels)[keep], np.asarray(rec.objects.boxes)[keep]
        if not len(labels):
            continue
        label = int(np.bincount(labels).argmax())
        theirs = boxes[labels == label]
        centres = (theirs[:, :2] + theirs[:, 2:]) / 2
        target = theirs[np.argmin(((centres - centres.mean(0)) ** 2).sum(1))]
        x, y = (target[0] + target[2]) / 2, (target[1] + target[3]) / 2
        proposals = cached_proposals(maker, rec, cache, clock)
        started = time.perf_counter()
        index = clicked_proposal(proposals, x, y)
        if index is None:  # SAM's own object at the click, as the app gives it
            own = maker.click(rec.load_image(), x, y, key=rec.file_name)
            started = time.perf_counter()
            clicked, vector, area = own.boxes, own.vectors, own.areas()
        else:
            clicked, vector = proposals.boxes[index : index + 1], proposals.vectors[index : index + 1]
            area = proposals.areas()[index : index + 1]
        if not len(clicked):
            shown, scores = np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        else:
            found = look_alikes(
                proposals, {label: vector}, clicked=clicked, thresholds={label: -np.inf}, areas={label: area}
            )
            shown = np.concatenate([clicked, found.boxes])
            scores = np.concatenate([[np.inf], found.scores])
        timing["click_ms"].append((time.perf_counter() - started) * 1000)
        out.append(
            {
                "file_name": rec.file_name,
                "label": label,
                "objects": theirs,
                "boxes": shown,
                "scores": scores,
                "proposals": len(proposals),
                "found": proposals,
                "proposal_boxes": proposals.boxes,
                "prompts": proposals.prompts,
                "window": maker.window_for(rec.load_image()),
                "click": [float(x), float(y)],
            }
        )
    return out


def _exemplars(clicks: list[dict]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per class, the unit vectors and mask areas of the proposals that box the objects of
    ``clicks``' images (each object's best proposal, at IoU >= 0.7): what the finished images
    teach the next one before any click on it."""
    vectors: dict[int, list] = {}
    areas: dict[int, list] = {}
    for c in clicks:
        found = c["found"]
        if not len(found) or not len(c["objects"]):
            continue
        overlap = box_iou(c["objects"], found.boxes)
        best = overlap.argmax(1)[overlap.max(1) >= 0.7]
        vectors.setdefault(c["label"], []).append(found.vectors[best])
        areas.setdefault(c["label"], []).append(found.areas()[best])
    return {k: (np.concatenate(vectors[k]), np.concatenate(areas[k])) for k in vectors}


def _opened(click: dict, exemplars: dict, offsets: EdgeOffsets) -> dict:
    """What ``click``'s image opens with before its click: the look-alikes of ``exemplars``
    of its class (every score), moved by ``offsets``."""
    found, label = click["found"], click["label"]
    if label not in exemplars or not len(found):
        boxes, scores = np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    else:
        vectors, areas = exemplars[label]
        alike = look_alikes(found, {label: vectors}, thresholds={label: -np.inf}, areas={label: areas})
        boxes, scores = alike.boxes, alike.scores
    return _moved({**click, "boxes": boxes, "scores": scores}, offsets)


def _offsets(clicks: list[dict]) -> EdgeOffsets:
    """The edge offsets of the calibration images: every object of the clicked class paired
    with the proposal of best IoU (what a project learns from its finished images)."""
    labels, theirs, sam = [], [], []
    for c in clicks:
        if len(c["proposal_boxes"]) and len(c["objects"]):
            best = box_iou(c["objects"], c["proposal_boxes"]).argmax(1)
            theirs.append(c["objects"])
            sam.append(c["proposal_boxes"][best])
            labels.append(np.full(len(best), c["label"]))
    if not labels:
        return EdgeOffsets({})
    return EdgeOffsets.fit(np.concatenate(labels), np.concatenate(theirs), np.concatenate(sam))


def _moved(click: dict, offsets: EdgeOffsets) -> dict:
    """``click`` with its shown boxes moved by ``offsets``, as the page shows them."""
    boxes = offsets.apply(click["boxes"], np.full(len(click["boxes"]), click["label"]))
    return {**click, "boxes": boxes}


def _matched(objects: np.ndarray, boxes: np.ndarray, iou: float) -> np.ndarray:
    """``bool[len(boxes)]``: each box (in score order) matching a still unmatched object at ``iou``."""
    right = np.zeros(len(boxes), bool)
    if not len(boxes) or not len(objects):
        return right
    overlap = box_iou(boxes, objects)
    free = np.ones(len(objects), bool)
    for i in range(len(boxes)):
        cand = np.where(free, overlap[i], -1.0)
        j = int(cand.argmax())
        if cand[j] >= iou:
            right[i], free[j] = True, False
    return right


def _best_threshold(clicks: list[dict], iou: float) -> float:
    """The relative threshold of best pooled F1 at ``iou`` over ``clicks`` (RELATIVE when none)."""
    if not clicks:
        return RELATIVE
    scores = np.concatenate([c["scores"] for c in clicks])
    right = np.concatenate([_matched(c["objects"], c["boxes"], iou) for c in clicks])
    objects = sum(len(c["objects"]) for c in clicks)
    best = (-1.0, RELATIVE)
    for t in np.round(np.arange(0.0, 1.0, 0.02), 2):
        shown = scores >= t
        f1 = 2 * right[shown].sum() / max(objects + shown.sum(), 1)
        if f1 > best[0]:
            best = (float(f1), float(t))
    return best[1]


def _counted(click: dict, threshold: float) -> dict:
    shown = click["scores"] >= threshold
    boxes, objects = click["boxes"][shown], click["objects"]
    r70, r50 = _matched(objects, boxes, 0.7).sum(), _matched(objects, boxes, 0.5).sum()
    return {
        "file_name": click["file_name"],
        "label": click["label"],
        "objects": len(objects),
        "shown": int(shown.sum()),
        "right70": int(r70),
        "right50": int(r50),
        "proposals": click["proposals"],
        "prompts": click["prompts"],
        "window": click["window"],
        "click": click["click"],
        **_rates(len(objects), int(shown.sum()), r70, r50),
    }


def _rates(objects: int, shown: int, r70: int, r50: int) -> dict:
    return {
        "recall70": r70 / objects if objects else None,
        "recall50": r50 / objects if objects else None,
        "precision": r70 / shown if shown else None,
        "precision50": r50 / shown if shown else None,
    }


def _pooled(per_image: list[dict]) -> dict:
    total = {k: sum(p[k] for p in per_image) for k in ("objects", "shown", "right70", "right50")}
    return {
        **_rates(total["objects"], total["shown"], total["right70"], total["right50"]),
        **total,
        "images": len(per_image),
    }


def _plot(per_image: list[dict], path: Path, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 0.4 * len(per_image) + 2), 4))
    x = np.arange(len(per_image))
    for key, offset in (("recall70", -0.3), ("recall50", -0.1), ("precision", 0.1), ("precision50", 0.3)):
        ax.bar(x + offset, [p[key] or 0 for p in per_image], width=0.2, label=key)
    ax.set_xticks(
        x, [f"{p['file_name'][:10]}\n{p['objects']} obj" for p in per_image], rotation=90, fontsize=7
    )
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{name}: one click, no training")
    ax.legend(fontsize=8, ncol=4, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train", required=True, type=Path)
    p.add_argument("--test", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--images", type=int, default=20, help="the first N test images by name")
    p.add_argument("--calibrate", type=int, default=8, help="the first N train images choose the threshold")
    p.add_argument("--iou", type=float, default=0.7, help="the IoU the threshold is chosen at")
    p.add_argument(
        "--window",
        type=_window,
        default=None,
        help="image pixels a side of the windows proposals are made on; auto (the default): sized to "
        "each image's objects",
    )
    p.add_argument("--limit", type=int, default=MAX_POINTS, help="SAM's prompts a window at most")
    add_work(p, "where the encoder's cache and the proposals go")
    return p


def _window(text: str) -> int | None:
    if text == "auto":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto or a number of pixels, got {text!r}") from None


if __name__ == "__main__":
    sys.exit(main())
