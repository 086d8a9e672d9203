"""Which click part of a trained C3Det model makes its gain: mAP with clicks as trained,
with the C3 maps set to zero, and with Late Fusion given no clicks.

    python benchmarks/ablate_detect.py --model out/bench_detect/bccd/c3det/last.pt --data ../shared/data/bccd

Scores the validation part that ``benchmarks/detect.py`` held out while training (every
10th image of its training part, which is every image but each 4th of ``--data``), never
the test part. One session of centre clicks per k, as the training log's validation.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from _common import split_parts

from fewclick.io import read_dataset
from fewclick.io.dataset import split_by_image
from fewclick.models.clicks import ClickTensors
from fewclick.predict.detect import ClickDetector
from fewclick.protocols.detect import evaluate_at_clicks


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, type=Path, help="a c3det checkpoint (last.pt)")
    p.add_argument("--data", required=True, type=Path, help="the dataset benchmarks/detect.py split")
    p.add_argument("--ks", type=int, nargs="+", default=[0, 1, 5, 10, 20])
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    val = split_by_image(split_parts(read_dataset(args.data))[0], 10, "test")
    items = [(rec.load_image(), rec.objects) for rec in val.images]
    predictor = ClickDetector.load(args.model)
    net = predictor.net
    if net.c3 is None or net.late_fusion is None:
        raise SystemExit(f"{args.model}: expected a c3det model, got {net.config.method}")
    c3, late_fusion = net.c3.forward, net.late_fusion.forward
    variants = {
        "as trained": (c3, late_fusion),
        "C3 maps zero": (lambda unit, clicks: torch.zeros_like(c3(unit, clicks)), late_fusion),
        "Late Fusion without clicks": (
            c3,
            lambda clicks, b, size: late_fusion(ClickTensors.empty(), b, size),
        ),
    }
    kind = "point mAP (CPR rule)" if net.config.points_only else "VOC07 mAP@0.5"
    print(f"{len(items)} validation images; {kind} at k = {args.ks}")
    for name, (c3_forward, lf_forward) in variants.items():
        net.c3.forward, net.late_fusion.forward = c3_forward, lf_forward
        scores = evaluate_at_clicks(predictor, items, args.ks, seed=0)
        print(f"{name:28s} " + " ".join(f"{s:.3f}" for s in np.round(scores, 3)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
