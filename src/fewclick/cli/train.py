"""``fewclick train``: train the detectors, box-to-mask models, full-image segmenters and
CPRNet point refiners on a dataset."""

from __future__ import annotations

from pathlib import Path

from fewclick.cli.common import add_format, add_group, add_io


def add_commands(commands) -> None:
    train = add_group(commands, "train", "train models on a dataset")
    # every command: its --data, --out and own options, then --format; its function as run
    for name, help, add_options, run in (
        ("detect", "train a click-to-detect model (C3Det or a baseline)", _detect_options, _train_detect),
        ("segment", "train the box-to-mask models M_b and M_b+c", _segment_options, _train_segment),
        (
            "fullimage",
            "train a full-image segmentation model (extreme points and scribbles)",
            _fullimage_options,
            _train_fullimage,
        ),
        (
            "cpr",
            "train CPRNet on a dataset's annotated points (coarse point refinement)",
            _cpr_options,
            _train_cpr,
        ),
    ):
        parser = train.add_parser(name, help=help)
        add_options(parser)
        add_format(parser)
        parser.set_defaults(run=run)


def _detect_options(parser) -> None:
    add_io(parser, "training dataset (any readable format)", "folder for checkpoints (resumes from last.pt)")
    parser.add_argument(
        "--method", default="c3det", choices=["c3det", "late-fusion", "early-fusion", "plain"]
    )
    parser.add_argument("--budget-minutes", type=float, default=10.0)
    parser.add_argument("--steps", type=int, help="exact number of steps (overrides --budget-minutes)")
    parser.add_argument("--val", type=Path, help="validation dataset (default: every 10th training image)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crop", type=int, default=256, help="training crop size in pixels")
    parser.add_argument(
        "--init",
        type=Path,
        help="start from this checkpoint's weights (e.g. a plain detector of the same data)",
    )
    parser.add_argument("--no-uel", action="store_true", help="train without the User-input Enforcing Loss")


def _segment_options(parser) -> None:
    add_io(parser, "a dataset with instance masks", "folder for m_b.pt and m_bc.pt (resumes)")
    parser.add_argument("--budget-minutes", type=float, default=12.0, help="both models together")
    parser.add_argument("--steps", type=int, help="exact steps per model (overrides --budget-minutes)")
    parser.add_argument("--clicks", default="disks", choices=["disks", "gaussians", "distance"])
    parser.add_argument("--seed", type=int, default=0)


def _fullimage_options(parser) -> None:
    add_io(parser, "a dataset with instance or region masks", "the model file to write")
    parser.add_argument(
        "--backbone",
        default="pretrained",
        choices=["pretrained", "scratch"],
        help="the SAM encoder's maps (needs `fewclick models fetch`) or a backbone trained from scratch",
    )
    parser.add_argument("--sam-prior", action="store_true", help="start each region from SAM's mask")
    parser.add_argument(
        "--single-region",
        action="store_true",
        help="the single-region baseline: per-mask loss, nothing shared",
    )
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)


def _cpr_options(parser) -> None:
    add_io(parser, "a dataset with one point per object", "folder for cpr.pt")
    parser.add_argument("--budget-minutes", type=float, default=3.0)
    parser.add_argument("--steps", type=int, help="exact number of steps (overrides --budget-minutes)")
    parser.add_argument("--radius", type=int, default=5, help="bag radius R in feature cells")
    parser.add_argument("--level", type=int, default=4, choices=[4, 8], help="feature stride")
    parser.add_argument("--seed", type=int, default=0)


def _train_detect(args) -> int:
    from fewclick.io import read_dataset
    from fewclick.io.dataset import split_by_image
    from fewclick.protocols.detect import validation
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
    validate = validation(val_set, train_set.classes, config.uses_clicks)
    path = train_detector(train_set, args.out, config, train, validate=validate)
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
        encoder, sam = _pretrained_sam()
    train = FullImageTrainConfig(steps=args.steps, seed=args.seed)
    images = prepare_records(read_dataset(args.data, args.format).images, config, train.canvas, encoder, sam)
    print(f"wrote {train_fullimage(images, config, train, args.out)}")
    return 0


def _pretrained_sam():
    """The default pretrained SAM pair: ``(ImageEncoder, SamPredictor)``."""
    from fewclick.predict.encoder import ImageEncoder
    from fewclick.predict.pretrained import default_model_files
    from fewclick.predict.sam import SamPredictor

    encoder_file, decoder_file = default_model_files()
    encoder = ImageEncoder(encoder_file)
    return encoder, SamPredictor(encoder, decoder_file)


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
    path = train_cpr(images, dataset.classes, args.out, config, net)
    print(f"wrote {path}")
    return 0


def _point_images(dataset):
    """A ``PointImage`` per image: each object's annotated point (its box centre when it
    has no point); objects with neither are refused by name."""
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
        out.append(PointImage(rec.load_image() if image is None else image, xy, objs.labels, objs.ignore))
    return out
