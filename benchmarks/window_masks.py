"""Box-to-mask on a window against the whole image, object by object: is the protocol a
large image's masks use (:mod:`fewclick.predict.windows`) as good as a small image's?

A small image is encoded whole, brought to SAM's 1024 px input. A large image cannot be:
box-to-mask reads a window around the box (at least ``min_side`` px, twice the box's longer
side) and the encoder brings the window to 1024 px, so a small object is magnified. This
runs both on the same objects of a dataset's own images (the images are small, so the
whole-image mask is the app's answer for them), with the window's least side varied:

- ``whole``: SAM on the whole image's embedding, as the app does for a small image;
- ``sides[S]``: SAM on the window of :func:`fewclick.predict.windows.mask_window` with
  ``min_side`` S, through :class:`~fewclick.predict.windows.WindowedMasks`, as the app does
  for a large image (1024: hardly magnified).

Per method: ``mIoU`` against the object's mask (near the box, as ``large.py`` scores it) and,
for each side, the paired difference from ``whole`` (mean, its 95 % bootstrap interval, and
the standard error of a 50-object mean, which ``large.py``'s mask gap is), over all objects
and by the box's longer side. Objects come from the ``--part`` of the split by image (train
by default: sides are chosen here, never on the test part).

    python benchmarks/window_masks.py --data ../shared/data/isaid_samples --objects 150 --out F.json --work W
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
from _common import add_work, run_record, split_parts, work_folder, write_report
from tqdm import tqdm

from fewclick.io import read_dataset
from fewclick.io.rle import segmentation_to_mask
from fewclick.predict.windows import GRID

#: the margin around a box that the IoU is taken in (``large.py``'s)
MARGIN = 16
#: the longer-side buckets the differences are also given by (px)
SIZES = ((0, 32), (32, 64), (64, 128), (128, 10**9))
#: issue 54's size bins: the square root of the box's area (px), as COCO's small/medium/large
SIZE_BINS = {"under 32": (0, 32), "32-96": (32, 96), "over 96": (96, 10**9)}
#: ``large.py``'s objects per mask score
LARGE_OBJECTS = 50


def objects(data, n: int, seed: int) -> list[tuple[int, int]]:
    """Up to ``n`` (record, object) pairs with a mask and a box of at least 2 px a side."""
    pairs = []
    for i, rec in enumerate(data.images):
        segs = rec.objects.segmentations
        for j, b in enumerate(rec.objects.boxes):
            if segs is not None and segs[j] is not None and b[2] - b[0] >= 2 and b[3] - b[1] >= 2:
                pairs.append((i, j))
    random.Random(seed).shuffle(pairs)
    return sorted(pairs[:n])


def around(box, height: int, width: int) -> tuple[slice, slice]:
    x0, y0 = max(0, int(box[0]) - MARGIN), max(0, int(box[1]) - MARGIN)
    x1, y1 = min(width, int(np.ceil(box[2])) + MARGIN), min(height, int(np.ceil(box[3])) + MARGIN)
    return slice(y0, y1), slice(x0, x1)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def placed(pred, height: int, width: int) -> np.ndarray:
    """A prediction's mask in the image's pixels (a window's at its offset)."""
    if pred.offset is None:
        return pred.mask
    full = np.zeros((height, width), bool)
    x, y = pred.offset
    h, w = pred.mask.shape
    full[y : y + h, x : x + w] = pred.mask
    return full


def measure(data, pairs, sides: list[int], sam, grid: int | None = GRID) -> list[dict]:
    """Each object's IoU by every method (see the module's text)."""
    from fewclick.predict.windows import WindowedMasks, sam_window_embedding

    held, current = {}, {}  # current["key"]: the embedding SAM holds (a window's, or the image's)

    def show(pixels, window, image):
        sam.set_embedding(sam_window_embedding(sam.encoder, pixels, window, image))
        current["key"] = window.key(image)

    def shown(window, image) -> bool:
        return current.get("key") == window.key(image)

    for side in sides:
        held[side] = WindowedMasks(sam, show, level0=True, shown=shown, min_side=side, grid=grid)
    rows, by_record = [], {}
    for i, j in pairs:
        by_record.setdefault(i, []).append(j)
    progress = tqdm(total=len(pairs), desc="box-to-mask", unit="object")
    for i, js in by_record.items():
        rec = data.images[i]
        pixels = rec.load_image()
        h, w = pixels.shape[:2]
        for side in sides:
            held[side].set_image(f"{i}", w, h, lambda win, p=pixels: _read(p, win))
        for j in js:
            box = [float(v) for v in rec.objects.boxes[j]]
            truth = segmentation_to_mask(rec.objects.segmentations[j], h, w)
            near = around(box, h, w)
            row = {"image": Path(rec.file_name).name, "side": max(box[2] - box[0], box[3] - box[1])}
            row["size"] = float(np.sqrt((box[2] - box[0]) * (box[3] - box[1])))
            sam.set_image(pixels, key=f"{i}/whole")
            current["key"] = None
            pred = sam.predict(box, multimask=True)
            row["whole"], row["whole_score"] = iou(pred.mask[near], truth[near]), pred.score
            for side in sides:
                pred = held[side].predict(box, multimask=True)
                row[str(side)] = iou(placed(pred, h, w)[near], truth[near])
                row[f"{side}_score"] = pred.score
            rows.append(row)
            progress.update()
    progress.close()
    return rows


def _read(pixels: np.ndarray, window) -> np.ndarray:
    """The window's pixels at its scale (as a large image's regions give them)."""
    import cv2

    part = pixels[window.y0 : window.y1, window.x0 : window.x1]
    if window.scale == 1.0:
        return part
    h, w = part.shape[:2]
    size = (max(1, round(w * window.scale)), max(1, round(h * window.scale)))
    return cv2.resize(part, size, interpolation=cv2.INTER_AREA)


def summary(rows: list[dict], sides: list[int], seed: int) -> dict:
    """mIoU per method, and each side's paired difference from the whole image."""
    rng = np.random.default_rng(seed)
    whole = np.asarray([r["whole"] for r in rows])
    out = {"objects": len(rows), "mIoU": {"whole": round(float(whole.mean()), 4)}, "difference": {}}
    out["by_size"] = {}
    for name, (lo, hi) in SIZE_BINS.items():
        inside = [r for r in rows if lo <= r.get("size", r["side"]) < hi]
        if inside:
            out["by_size"][name] = {"objects": len(inside)} | {
                m: round(float(np.mean([r[m] for r in inside])), 4) for m in ["whole", *map(str, sides)]
            }
    for side in sides:
        got = np.asarray([r[str(side)] for r in rows])
        out["mIoU"][str(side)] = round(float(got.mean()), 4)
        diff = got - whole
        boot = [rng.choice(diff, len(diff)).mean() for _ in range(2000)]
        buckets = {}
        for (lo, hi), name in zip(SIZES, _buckets(), strict=True):
            inside = np.asarray([lo <= r["side"] < hi for r in rows])
            if inside.any():
                buckets[name] = {
                    "objects": int(inside.sum()),
                    "mean": round(float(diff[inside].mean()), 4),
                }
        out["difference"][str(side)] = {
            "mean": round(float(diff.mean()), 4),
            "ci95": [round(float(np.percentile(boot, 2.5)), 4), round(float(np.percentile(boot, 97.5)), 4)],
            "se_50": round(float(diff.std(ddof=1) / np.sqrt(LARGE_OBJECTS)), 4),
            "by_longer_side": buckets,
        }
    return out


def plot(report: dict, path: Path) -> None:
    """mIoU against the window's least side, one line per dataset, the whole image dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, d in report["datasets"].items():
        sides = [int(s) for s in d["mIoU"] if s != "whole"]
        line = ax.plot(sides, [d["mIoU"][str(s)] for s in sides], marker="o", label=name)[0]
        ax.axhline(d["mIoU"]["whole"], color=line.get_color(), ls="--", lw=1)
    ax.set_xlabel("window's least side, px (a large image's box-to-mask)")
    ax.set_ylabel("box-to-mask mIoU")
    ax.set_title("Windows against the whole image (dashed), same objects")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(report: dict) -> str:
    """The report as a page: mIoU by method, each side's paired difference from the whole
    image, and the app's side (:data:`fewclick.predict.windows.MIN_SIDE`) by box size."""
    from fewclick.predict.windows import MIN_SIDE

    sides = [str(s) for s in report["sides"]]
    lines = [
        "# Box-to-mask on windows against the whole image",
        "",
        f"`benchmarks/window_masks.py`, {report['date']}, {report['machine']}, load {report['load']}; "
        f"objects from each dataset's {report['part']} part. Windows of at least S px a side (the app's "
        f"large images use S = {MIN_SIDE}); the difference is the window's IoU less the whole image's, "
        "object by object (95 % bootstrap interval; SE 50: the standard error of a 50-object mean).",
        "",
        "| data | objects | whole | " + " | ".join(f"S {s}" for s in sides) + " |",
        "|---" * (3 + len(sides)) + "|",
    ]
    for name, d in report["datasets"].items():
        cells = []
        for s in sides:
            diff = d["difference"][s]
            cells.append(
                f"{d['mIoU'][s]:.3f} ({diff['mean']:+.3f} [{diff['ci95'][0]:+.3f}, {diff['ci95'][1]:+.3f}])"
            )
        lines.append(f"| {name} | {d['objects']} | {d['mIoU']['whole']:.3f} | " + " | ".join(cells) + " |")
    lines += ["", f"By the box's longer side, S = {MIN_SIDE} less the whole image (objects):", ""]
    lines += [
        "| data | " + " | ".join(f"{b} px" for b in _buckets()) + " | SE 50 |",
        "|---" * (2 + len(SIZES)) + "|",
    ]
    for name, d in report["datasets"].items():
        diff = d["difference"].get(str(MIN_SIDE))
        if diff is None:
            continue
        got = diff["by_longer_side"]
        cells = [f"{got[b]['mean']:+.3f} ({got[b]['objects']})" if b in got else "-" for b in _buckets()]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {diff['se_50']:.3f} |")
    lines += ["", "mIoU by the box's size (the square root of its area), whole image and each S:", ""]
    lines += ["| data | size | objects | whole | " + " | ".join(f"S {s}" for s in sides) + " |"]
    lines += ["|---" * (4 + len(sides)) + "|"]
    for name, d in report["datasets"].items():
        for size, got in d.get("by_size", {}).items():
            cells = " | ".join(f"{got[s]:.3f}" for s in sides)
            lines.append(f"| {name} | {size} px | {got['objects']} | {got['whole']:.3f} | {cells} |")
    return "\n".join(lines) + "\n"


def _buckets() -> list[str]:
    return [f"{lo}-{hi if hi < 10**9 else ''}" for lo, hi in SIZES]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, nargs="+", required=True, help="datasets with masks")
    parser.add_argument(
        "--part", choices=("train", "test"), default="train", help="the split's part to draw objects from"
    )
    parser.add_argument("--sides", type=int, nargs="+", default=[256, 384, 512, 768, 1024])
    parser.add_argument("--objects", type=int, default=150, help="objects per dataset")
    parser.add_argument(
        "--grid",
        type=int,
        default=GRID,
        help="windows on a grid of 1/N of their side (0: centred on the box)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="the encoder's and decoder's threads")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--markdown", type=Path, help="also write the report as a page here")
    parser.add_argument(
        "--from-json", action="store_true", help="only write --markdown and the plot from --out's JSON"
    )
    add_work(parser, help="the encoder's embedding cache")
    args = parser.parse_args(argv)
    if args.from_json:  # a run stopped after some datasets: their page and plot
        if args.markdown is None:
            raise SystemExit("--from-json writes --markdown: name the page")
        report = json.loads(args.out.read_text())
        args.markdown.write_text(markdown(report))
        plot(report, args.out.with_suffix(".png"))
        return

    from fewclick.predict.encoder import ImageEncoder
    from fewclick.predict.sam import SamPredictor

    report = {**run_record("load", threads=args.threads), "part": args.part, "sides": args.sides}
    report.update(grid=args.grid, datasets={})
    for data_path in args.data:
        if not data_path.exists():
            raise SystemExit(f"{data_path}: no such dataset")
        cache = (
            work_folder(args.work and args.work / data_path.name, "window_masks", data_path) / "embeddings"
        )
        sam = SamPredictor(ImageEncoder(threads=args.threads, cache_dir=cache), threads=args.threads)
        train, test = split_parts(read_dataset(data_path))
        data = train if args.part == "train" else test
        pairs = objects(data, args.objects, args.seed)
        if not pairs:
            print(f"{data_path}: no objects with masks in its {args.part} part, skipped")
            continue
        start = time.perf_counter()
        rows = measure(data, pairs, args.sides, sam, args.grid or None)
        report["datasets"][data_path.name] = {
            **summary(rows, args.sides, args.seed),
            "seconds": round(time.perf_counter() - start, 1),
            "images": sorted({r["image"] for r in rows}),
            "rows": rows,
        }
        write_report(report, args.out)
    plot(report, args.out.with_suffix(".png"))
    if args.markdown is not None:
        args.markdown.write_text(markdown(report))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
