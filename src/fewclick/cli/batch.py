"""``fewclick encode``, ``predict`` and ``refine``: batch jobs over every image of a
dataset, in this process or on Ray (:mod:`fewclick.batch`)."""

from __future__ import annotations

import json
from pathlib import Path

from fewclick.cli.common import add_format, add_group, add_io, add_ray, workers


def add_commands(commands) -> None:
    _add_encode(commands)
    _add_predict(commands)
    refine = add_group(commands, "refine", "refine annotations with a trained model")
    rpts = refine.add_parser(
        "points", help="move every annotated point to its object's semantic centre (CPR)"
    )
    rpts.add_argument("--model", required=True, type=Path, help="cpr.pt from `fewclick train cpr`")
    add_io(rpts, "a dataset with one point per object", "refined points, written as a points JSON file")
    add_format(rpts)
    add_ray(rpts)
    rpts.set_defaults(run=_refine_points)


def _add_encode(commands) -> None:
    encode = commands.add_parser(
        "encode", help="the pretrained encoder over every image of a dataset, in this process or on Ray"
    )
    add_io(encode, "any dataset `fewclick data info` reads", "a folder: <image path>.npy each, summary.json")
    add_ray(encode, help="run on Ray: a new local Ray without ADDRESS, else the cluster at ADDRESS")
    add_format(encode)
    encode.add_argument("--encoder", type=Path, help="a SAM-format ONNX encoder (default: the checked pair)")
    encode.set_defaults(run=_encode)


def _add_predict(commands) -> None:
    predict = commands.add_parser(
        "predict", help="pre-annotate every image with a trained detector: COCO results with scores"
    )
    predict.add_argument(
        "--model", required=True, type=Path, help="a `fewclick train detect` folder or checkpoint"
    )
    add_io(predict, "any dataset `fewclick data info` reads", "the COCO results JSON")
    add_ray(predict)
    add_format(predict)
    predict.add_argument(
        "--score-threshold",
        type=float,
        default=None,
        help="keep detections scoring at least this (default 0.05)",
    )
    predict.set_defaults(run=_predict)


def _encode(args) -> int:
    from fewclick.batch import encode_dataset
    from fewclick.io import read_dataset

    count = workers(args)
    dataset = read_dataset(args.data, args.format)
    encoder = None if args.encoder is None else str(args.encoder)
    summary = encode_dataset(dataset, args.out, ray=args.ray, workers=count, encoder=encoder)
    print(json.dumps(summary))
    return 0


def _predict(args) -> int:
    from fewclick.batch import predict_dataset
    from fewclick.io import read_dataset

    count = workers(args)
    dataset = read_dataset(args.data, args.format)
    if args.score_threshold is not None and not 0 <= args.score_threshold <= 1:
        raise ValueError(f"--score-threshold must be within 0..1, got {args.score_threshold}")
    summary = predict_dataset(
        dataset, args.model, args.out, ray=args.ray, workers=count, score_threshold=args.score_threshold
    )
    print(json.dumps(summary))
    return 0


def _refine_points(args) -> int:
    from dataclasses import replace

    from fewclick.batch import refine_dataset
    from fewclick.io import read_dataset, write_dataset

    count = workers(args)
    dataset = read_dataset(args.data, args.format)
    refined, summary = refine_dataset(dataset, args.model, ray=args.ray, workers=count)
    for rec, points in zip(dataset.images, refined, strict=True):
        rec.objects = replace(rec.objects, points=points, boxes=rec.objects.boxes * float("nan"))
    write_dataset(dataset, args.out, "points")
    print(json.dumps({**summary, "out": str(args.out)}))
    return 0
