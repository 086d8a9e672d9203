"""A project's choice among SAM's four masks, fit on its first finished images: does it serve
the later images' objects better than SAM's own choice? (issue 54; what
:mod:`fewclick.server.worker_pick` does in the app)

The first ``--fit`` images of the part are the "finished" ones: every object is prompted as
the worker prompts it (its tight box alone; one click at its inmost point) and
:func:`fewclick.models.sam_pick.fit_offsets` fits the offsets. On the next ``--images``
images each object is prompted the same two ways, and the mask served is scored against it
with SAM's own choice and with the offsets: the mean IoU, and how often a person would Tab
away from the mask served (the best of the three shown beats it by more than
:data:`fewclick.protocols.segment.TAB_GAIN`, as the campaign's person does).

    python benchmarks/sam_pick.py --data ../shared/data/dsb2018_nuclei --fit 3 --images 9 \
        --out F.json --work DIR

Runs on the train part (``--part``): the offsets are a choice made on our own data.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import add_work, run_record, split_parts, work_folder, write_report
from tqdm import tqdm

from fewclick.io import read_dataset
from fewclick.io.rle import segmentation_to_mask
from fewclick.metrics.segmentation import mask_iou
from fewclick.models.sam_pick import fit_offsets
from fewclick.protocols.segment import tab_to
from fewclick.types import Clicks


def _masks(rec, h: int, w: int) -> list[np.ndarray]:
    segs = rec.objects.segmentations or []
    return [m for s in segs if s is not None and (m := segmentation_to_mask(s, h, w)).any()]


def _served(sam, box, click, truth: np.ndarray, offsets) -> tuple[float, bool]:
    """The IoU of the mask served and whether the person Tabs away from it."""
    pred = sam.predict(box, click, multimask=True, offsets=offsets)
    ious = [mask_iou(c.mask, truth) for c in (pred.candidates or [pred])]
    return ious[0], tab_to(ious) != 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from fewclick.predict.encoder import ImageEncoder
    from fewclick.predict.sam import SamPredictor, inmost_click

    train, test = split_parts(read_dataset(args.data))
    part = train if args.part == "train" else test
    work = work_folder(args.work, "sam_pick", args.data)
    sam = SamPredictor(ImageEncoder(threads=1, cache_dir=work / "embeddings"), threads=1)
    records, fit_objects = [], 0
    for rec in tqdm(part.images[: args.fit], desc="fit"):
        pixels = rec.load_image()
        sam.set_image(pixels)
        masks = _masks(rec, *pixels.shape[:2])
        records += sam.first_prompt_records(masks)
        fit_objects += len(masks)
    offsets = fit_offsets(records)
    rows = {k: {"own": [], "fitted": [], "tab_own": [], "tab_fitted": []} for k in ("box", "click")}
    for rec in tqdm(part.images[args.fit : args.fit + args.images], desc="score"):
        pixels = rec.load_image()
        sam.set_image(pixels)
        for truth in _masks(rec, *pixels.shape[:2]):
            ys, xs = np.nonzero(truth)
            box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
            click: Clicks = inmost_click(truth)
            for kind, prompt in (("box", (box, None)), ("click", (None, click))):
                for name, given in (("own", None), ("fitted", offsets or None)):
                    iou, tabbed = _served(sam, *prompt, truth, given)
                    rows[kind][name].append(iou)
                    rows[kind][f"tab_{name}"].append(tabbed)
    report = {
        "data": str(args.data),
        "part": args.part,
        "fit_images": args.fit,
        "fit_objects": fit_objects,
        "offsets": offsets,
        "scored_images": min(args.images, max(0, len(part.images) - args.fit)),
        **run_record("load_average_start"),
        "prompts": {
            kind: {
                "objects": len(r["own"]),
                "mIoU_own": round(float(np.mean(r["own"])), 4) if r["own"] else None,
                "mIoU_fitted": round(float(np.mean(r["fitted"])), 4) if r["fitted"] else None,
                "tab_share_own": round(float(np.mean(r["tab_own"])), 4) if r["own"] else None,
                "tab_share_fitted": round(float(np.mean(r["tab_fitted"])), 4) if r["fitted"] else None,
            }
            for kind, r in rows.items()
        },
    }
    write_report(report, Path(args.out))
    print(report["offsets"], report["prompts"])
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--part", default="train", choices=["train", "test"])
    p.add_argument("--fit", type=int, default=3, help="the first images, taken as finished")
    p.add_argument("--images", type=int, default=9, help="the images after them, scored")
    p.add_argument("--out", required=True, type=Path)
    add_work(p, "where the embeddings are kept")
    return p


if __name__ == "__main__":
    raise SystemExit(main())
