"""``fewclick eval``: evaluate results against ground truth (detection AP)."""

from __future__ import annotations

import json
from pathlib import Path

from fewclick.cli.common import add_format, add_group


def add_commands(commands) -> None:
    ev = add_group(commands, "eval", "evaluate results against ground truth")
    det = ev.add_parser("detections", help="detection AP of a COCO-format results file")
    det.add_argument("--gt", required=True, type=Path, help="the ground-truth dataset (any readable format)")
    det.add_argument("--pred", required=True, type=Path, help="COCO results JSON")
    det.add_argument("--iou", type=float, default=0.5)
    det.add_argument("--ap", choices=["voc07", "coco"], default="voc07")
    det.add_argument(
        "--oriented",
        action="store_true",
        help="match oriented boxes by polygon IoU (needs 'poly' results and oriented GT)",
    )
    add_format(det, "ground-truth")
    det.set_defaults(run=_eval_detections)


def _eval_detections(args) -> int:
    from fewclick.io import read_dataset
    from fewclick.io.results import read_results
    from fewclick.metrics import evaluate_detections

    dataset = read_dataset(args.gt, args.format)
    preds = read_results(args.pred, dataset)
    if args.oriented and any(r.objects.rboxes is None for r in dataset.images if len(r.objects)):
        raise ValueError(
            f"{args.gt}: --oriented needs oriented ground truth; this dataset has axis-aligned boxes"
        )
    if args.oriented and any(p.rboxes is None for p in preds if len(p)):
        raise ValueError(f"{args.pred}: --oriented needs 'poly' entries in the results")
    result = evaluate_detections(
        [r.objects for r in dataset.images],
        preds,
        num_classes=len(dataset.classes),
        iou_threshold=args.iou,
        ap_method=args.ap,
        oriented=args.oriented,
        class_names=dataset.classes,
    )
    print(json.dumps(result.to_dict(), indent=2))
    return 0
