"""``fewclick data``: inspect, convert, draw and generate datasets."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

from fewclick.cli.common import add_format, add_group
from fewclick.io import FILE_WRITERS, WRITERS

SHOW_KINDS = ("centre", "corrective", "extreme", "scribble", "coarse", "oracle")


def add_commands(commands) -> None:
    data = add_group(commands, "data", "inspect, convert, draw and generate datasets")
    inputs = data.add_parser(
        "inputs", help="simulate every kind of annotator input on one image and write a picture of them"
    )
    inputs.add_argument("--data", type=Path, help="a dataset to use instead of a generated synthetic one")
    inputs.add_argument("--image", help="image name in --data (default: the one with most objects)")
    inputs.add_argument(
        "--out", type=Path, default=Path("out/inputs"), help="output folder (default: out/inputs)"
    )
    inputs.add_argument("--seed", type=int, default=0)
    inputs.set_defaults(run=_data_inputs)
    info = data.add_parser("info", help="detect a dataset's format and print a JSON summary")
    info.add_argument("path", type=Path)
    info.add_argument("--format", help="skip detection and read this format")
    info.set_defaults(run=_data_info)
    _add_convert(data)
    _add_show(data)
    _add_synth(data)


def _add_convert(data) -> None:
    writers = [name.replace("_", "-") for name in WRITERS]
    folders = [name.replace("_", "-") for name in WRITERS if name not in FILE_WRITERS]
    files = [name.replace("_", "-") for name in FILE_WRITERS]
    convert = data.add_parser("convert", help=f"write a dataset as one of: {', '.join(writers)}")
    convert.add_argument("path", type=Path)
    convert.add_argument("--to", required=True, choices=writers, type=lambda s: s.replace("_", "-"))
    convert.add_argument(
        "--out",
        required=True,
        type=Path,
        help=f"a file for {', '.join(files)} (.json; .csv or .json for points; coco-panoptic "
        f"puts its PNGs in the folder named after it), a folder for {', '.join(folders)}",
    )
    add_format(convert, "input")
    convert.set_defaults(run=_data_convert)


def _add_show(data) -> None:
    show = data.add_parser("show", help="draw one image with its ground truth and simulated inputs")
    show.add_argument("path", type=Path)
    show.add_argument("--image", required=True, help="image file name or stem")
    show.add_argument("--out", required=True, type=Path, help="output PNG")
    show.add_argument(
        "--clicks",
        default="",
        help=f"comma-separated simulated inputs to draw: {', '.join(SHOW_KINDS)} or all (default: none)",
    )
    add_format(show, "input")
    show.add_argument("--seed", type=int, default=0)
    show.set_defaults(run=_data_show)


def _add_synth(data) -> None:
    synth = data.add_parser("synth", help="generate a synthetic dataset (COCO JSON + PNG images)")
    synth.add_argument("--kind", choices=["aerial", "cells"], default="aerial")
    synth.add_argument("--images", type=int, default=8)
    synth.add_argument("--size", type=int, default=512, help="image width and height in pixels")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--out", required=True, type=Path)
    synth.set_defaults(run=_data_synth)


def _data_inputs(args) -> int:
    from fewclick.demo import run_demo

    for line in run_demo(args.out, data=args.data, image=args.image, seed=args.seed):
        print(line)
    return 0


def _data_info(args) -> int:
    from fewclick.io import read_dataset

    print(json.dumps(read_dataset(args.path, args.format).summary(), indent=2))
    return 0


def _data_convert(args) -> int:
    from fewclick.io import read_dataset, write_dataset
    from fewclick.io.parsing import FormatWarning

    dataset = read_dataset(args.path, args.format)
    with warnings.catch_warnings():  # the writer's messages are printed once, below
        warnings.simplefilter("ignore", FormatWarning)
        messages = write_dataset(dataset, args.out, args.to)
    n = sum(len(r.objects) for r in dataset.images)
    print(f"wrote {len(dataset)} images with {n} objects as {args.to} to {args.out}")
    for message in messages:
        print(f"warning: {message}", file=sys.stderr)
    return 0


def _data_show(args) -> int:
    from fewclick.demo import render_inputs
    from fewclick.io import read_dataset

    kinds = _show_kinds(args.clicks)
    dataset = read_dataset(args.path, args.format)
    path = render_inputs(dataset, dataset.image(args.image), kinds, args.out, seed=args.seed)
    print(f"wrote {path}")
    return 0


def _show_kinds(text: str) -> list[str]:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    if kinds == ["all"]:
        return list(SHOW_KINDS)
    unknown = [k for k in kinds if k not in SHOW_KINDS]
    if unknown:
        raise ValueError(f"unknown --clicks kind(s) {unknown}; expected some of {list(SHOW_KINDS)} or 'all'")
    return kinds


def _data_synth(args) -> int:
    from fewclick.data.synthetic import make_dataset

    dataset = make_dataset(
        args.kind, args.images, seed=args.seed, width=args.size, height=args.size, out_dir=args.out
    )
    n = sum(len(r.objects) for r in dataset.images)
    print(f"wrote {len(dataset)} {args.kind} images with {n} objects to {args.out}")
    return 0
