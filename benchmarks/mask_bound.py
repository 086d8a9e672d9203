"""What the mask campaign could save with the masks the app offers at once: per object, the
cheapest way to its mask at IoU >= 0.85 for a person who knew in advance which candidate is
right (an oracle over first shots), priced as ``campaign.py`` prices each step.

    python benchmarks/mask_bound.py --data PATH --out F.json [--part train|test|all]
        [--images N] [--work DIR]

On the first ``--images`` images of the part (split by image as ``campaign.py`` splits it),
per object of the image with an outline, the ways the app offers, each kept when one of
its masks reaches IoU 0.85 with the object:

- ``proposal``: any of the image's proposals (made as the app makes them, in windows sized
  to the image's objects, :class:`~fewclick.predict.proposals.ProposalMaker`) is its mask,
  whether or not the app would show it (it shows the look-alikes of finished images' objects
  above a threshold, once an image is finished: generous here): it is
  looked at (1.6 s; a look is no interaction) and saved with the image's one Enter (1.63 s,
  one interaction, shared by the image's objects saved so).
- ``click``: a click at its inmost point (2.55 s): the proposal under the click first, then
  SAM's three masks for the click in SAM's own order (a project's offsets may reorder them
  in the app); Tab to the first at 0.85 (1.63 s a press, the shorter way
  round), Enter.
- ``box``: its tight box dragged (7.0 s) and SAM's three masks for it, zoomed in on a small
  box as the app does (:class:`~fewclick.predict.zoom.ZoomedSam`), then the box's ellipse;
  Tab, Enter.
- ``polygon``: its outline by hand (``campaign.polygon_seconds``: a second a vertex and
  Enter), always there.

The oracle takes the cheapest way per object, in seconds (``oracle``) or in interactions
(``oracle_interactions``); ``without_proposals`` leaves the proposals out (an image opened
before any image is finished). No corrective click, stroke or outline edit is counted, so
this is no upper bound where they pay: an object no first shot gets is priced as its
polygon. Where few objects need them (dsb2018's nuclei, which SAM's clicks barely move), the
ratio of the polygons' seconds to the oracle's is about the most the seconds target can reach
with these candidates: a campaign's person, who does not know in advance, gets less.
Shares at 0.85 per way, and by object size (small, medium, large as ``segment.py`` bins
them). Writes F.json and F.png.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from _common import add_work, run_record, split_parts, work_folder, write_report
from campaign import _required_masks, polygon_seconds, size_of
from tqdm import tqdm

from fewclick.io import read_dataset
from fewclick.metrics.segmentation import mask_iou
from fewclick.predict.encoder import ImageEncoder
from fewclick.predict.lookalike import clicked_proposal, proposal_mask
from fewclick.predict.proposals import ProposalMaker
from fewclick.predict.sam import SamPredictor, inmost_click
from fewclick.predict.shapes import box_ellipse
from fewclick.predict.zoom import ZoomedSam
from fewclick.protocols.segment import tight_box
from fewclick.simulate.annotator import COST_SECONDS, MASK_IOU, polygon_outlines

WAYS = ("proposal", "click", "box", "polygon")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    data = read_dataset(args.data)
    if args.part != "all":
        train, test = split_parts(data)
        data = test if args.part == "test" else train
    records = sorted(data.images, key=lambda r: r.file_name)[: args.images]
    if not records:
        raise SystemExit(f"{args.data}: no images in its {args.part} part")
    work = work_folder(args.work, "mask_bound", args.data)
    encoder = ImageEncoder(threads=1, cache_dir=work / "embeddings", disk_mb=4096)
    maker, sam = ProposalMaker(encoder, window=None), SamPredictor(encoder, multimask=True)
    zoomed = ZoomedSam(SamPredictor(encoder, multimask=True))
    report = {"data": str(args.data), "part": args.part, **run_record("load_average_start")}
    objects, images = [], []
    for record in tqdm(records, desc="images", unit="image"):
        rows = _image_rows(record, maker, sam, zoomed)
        images.append({"file_name": record.file_name, **_totals(rows)})
        objects += rows
    report.update(
        totals=_totals(objects),
        by_size={
            size: _totals([o for o in objects if o["size"] == size]) for size in ("small", "medium", "large")
        },
        images=images,
        cost_seconds={k: COST_SECONDS[k] for k in ("verify", "accept", "click", "draw", "tab", "vertex")},
        **run_record("load_average_end"),
        command=" ".join(["python", *sys.argv]),
    )
    write_report(report, args.out)
    _plot(report, Path(args.out).with_suffix(".png"))
    t = report["totals"]
    print(
        f"{t['objects']} objects: oracle {t['oracle_ratio']}x fewer seconds than polygons "
        f"({t['without_proposals_ratio']}x without proposals), {t['oracle_interactions_ratio']}x fewer "
        f"interactions; at 0.85: {t['share']}"
    )
    return 0


def _image_rows(record, maker: ProposalMaker, sam: SamPredictor, zoomed: ZoomedSam) -> list[dict]:
    """Per object of ``record`` with an outline: its size, and the seconds and interactions of
    each way that reaches MASK_IOU (None where none does)."""
    _, segmentations, masks, _ = _required_masks(record)
    if not masks:
        return []
    image = record.load_image()
    key = Path(record.file_name).stem
    proposals = maker(image, key=key)
    sam.set_image(image, key=key)
    zoomed.set_image(image, key=key)
    height, width = image.shape[:2]
    pool = [proposal_mask(proposals, i) for i in range(len(proposals))]
    rows = []
    for segmentation, truth in zip(segmentations, masks):
        if not truth.any():
            continue
        rings = polygon_outlines(truth, segmentation)
        box = tight_box(truth)
        click = inmost_click(truth)
        under = clicked_proposal(proposals, *map(float, click.xy[0]))
        clicked = ([] if under is None else [pool[under]]) + [
            c.mask for c in sam.predict(None, click).candidates
        ]
        framed = zoomed.predict(box, None)
        boxed = [c.mask for c in (framed.candidates or [framed])] + [box_ellipse(box, (height, width))]
        right = {
            "proposal": any(mask_iou(m, truth) >= MASK_IOU for m in pool),
            "click": _first_right(clicked, truth),
            "box": _first_right(boxed, truth),
        }
        rows.append({"size": size_of(truth), **_costs(right, rings, len(clicked), len(boxed))})
    _oracles(rows)
    return rows


def _first_right(masks: list, truth: np.ndarray) -> int | None:
    """The index of the first of ``masks`` at MASK_IOU with ``truth`` (None: none)."""
    return next((i for i, m in enumerate(masks) if mask_iou(m, truth) >= MASK_IOU), None)


def _costs(right: dict, rings: list, clicked: int, boxed: int) -> dict:
    """Each way's (seconds, interactions) for one object, None where it does not get there;
    a Tab press costs "tab", the shorter way round among the candidates offered."""
    tab, enter = COST_SECONDS["tab"], COST_SECONDS["accept"]
    ways: dict[str, tuple | None] = {"proposal": (COST_SECONDS["verify"], 0) if right["proposal"] else None}
    for way, start, offered in (("click", "click", clicked), ("box", "draw", boxed)):
        index = right[way]
        presses = None if index is None else min(index, offered - index)
        ways[way] = None if presses is None else (COST_SECONDS[start] + presses * tab + enter, 2 + presses)
    vertices = sum(max(len(r), 3) for r in rings)
    ways["polygon"] = (polygon_seconds(rings), vertices + len(rings))
    return {"ways": ways}


def _oracles(rows: list[dict]) -> None:
    """Each row's cheapest way in seconds (``oracle``; ``without_proposals``) and in
    interactions, as (seconds, interactions); the image's one Enter for the proposals an
    oracle saves, on the first of them."""
    for row in rows:
        row["oracle"] = min((w for w in row["ways"].values() if w), key=lambda w: w[0])
        row["without_proposals"] = min(
            (w for k, w in row["ways"].items() if w and k != "proposal"), key=lambda w: w[0]
        )
        row["oracle_interactions"] = min((w for w in row["ways"].values() if w), key=lambda w: (w[1], w[0]))
    for key in ("oracle", "oracle_interactions"):
        taken = [r for r in rows if r["ways"]["proposal"] is not None and r[key] == r["ways"]["proposal"]]
        if taken:
            seconds, interactions = taken[0][key]
            taken[0][key] = (seconds + COST_SECONDS["accept"], interactions + 1)


def _totals(rows: list[dict]) -> dict:
    """Seconds and interactions of polygons by hand and of the oracles over ``rows``, their
    ratios, and each way's share of the objects at MASK_IOU."""
    n = len(rows)
    manual = [sum(r["ways"]["polygon"][k] for r in rows) for k in (0, 1)]
    out = {"objects": n, "polygon_seconds": round(manual[0], 1), "polygon_interactions": manual[1]}
    for key in ("oracle", "without_proposals", "oracle_interactions"):
        spent = [sum(r[key][k] for r in rows) for k in (0, 1)]
        out[f"{key}_seconds"], out[f"{key}_interactions"] = round(spent[0], 1), spent[1]
        measure = 1 if key == "oracle_interactions" else 0
        out[f"{key}_ratio"] = round(manual[measure] / spent[measure], 3) if spent[measure] else None
    out["share"] = {
        w: round(sum(r["ways"][w] is not None for r in rows) / n, 3) if n else None for w in WAYS[:3]
    }
    out["share"]["any"] = round(sum(any(r["ways"][w] for w in WAYS[:3]) for r in rows) / n, 3) if n else None
    return out


def _plot(report: dict, out: Path) -> None:
    """Shares at 0.85 per way and size, and the seconds of polygons, the oracle and the oracle
    without proposals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    groups = {"all": report["totals"], **report["by_size"]}
    names = [*WAYS[:3], "any"]
    for i, way in enumerate(names):
        shares = [g["share"][way] or 0 if g["objects"] else 0 for g in groups.values()]
        left.bar(np.arange(len(groups)) + 0.2 * (i - 1.5), shares, 0.2, label=way)
    left.set_xticks(range(len(groups)), [f"{k} (n={g['objects']})" for k, g in groups.items()])
    left.set_ylabel(f"share of objects with a mask at IoU >= {MASK_IOU}")
    left.legend()
    keys = ("polygon_seconds", "without_proposals_seconds", "oracle_seconds")
    t = report["totals"]
    right.bar(["polygons by hand", "oracle, no proposals", "oracle"], [t[k] for k in keys])
    right.set_ylabel("seconds (campaign.py's cost model)")
    right.set_title(f"{Path(report['data']).name}, {report['part']}: oracle {t['oracle_ratio']}x")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--data", type=Path, required=True, help="a dataset with outlines (COCO, or any fewclick reads)"
    )
    p.add_argument("--out", type=Path, required=True, help="the JSON report (a PNG beside it)")
    p.add_argument(
        "--part", choices=("train", "test", "all"), default="train", help="the part of the split by image"
    )
    p.add_argument("--images", type=int, default=12, help="the first N images of the part by name")
    add_work(p, "where the embeddings are cached (default out/bench_mask_bound/<data>)")
    return p


if __name__ == "__main__":
    raise SystemExit(main())
