"""``fewclick protocol``: the papers' evaluation protocols (C3Det's clicks-to-mAP curve,
box-to-mask rounds and NoC, CPR's point refinement), each writing a results JSON."""

from __future__ import annotations

import json
from pathlib import Path

from fewclick.cli.common import add_format, add_group

RESULTS_HELP = "results JSON (a PNG plot is written beside it)"


def add_commands(commands) -> None:
    protocol = add_group(commands, "protocol", "run a paper's evaluation protocol")
    # the protocols that compare models on a dataset: their --models, --data and own options,
    # then --seed, --out and --format
    for name, help, add_options, run in (
        (
            "detect",
            "C3Det's protocol: mAP vs 0..20 simulated centre clicks",
            _detect_options,
            _protocol_detect,
        ),
        ("segment", "box-to-mask: rounds x corrective clicks, and NoC", _segment_options, _protocol_segment),
    ):
        parser = protocol.add_parser(name, help=help)
        add_options(parser)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--out", required=True, type=Path, help=RESULTS_HELP)
        add_format(parser)
        parser.set_defaults(run=run)
    _add_points(protocol)


def _detect_options(parser) -> None:
    parser.add_argument(
        "--models",
        required=True,
        nargs="+",
        type=Path,
        help="model folders (last.pt) or files; 'passthrough:PATH' runs a plain model as Passthrough",
    )
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--sessions", type=int, default=5)


def _segment_options(parser) -> None:
    parser.add_argument(
        "--models",
        required=True,
        nargs="+",
        help="model folders (m_b.pt, m_bc.pt), 'grabcut' or 'box' (the training-free baselines)",
    )
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clicks-per-round", type=int, default=3)
    parser.add_argument("--strategy", default="center", choices=["center", "boundary", "random"])
    parser.add_argument("--click-noise", type=float, default=3.0, help="click noise std in pixels")
    parser.add_argument("--min-region", type=int, default=9, help="ignore error regions under this many px")
    parser.add_argument("--box-noise", type=float, default=0.2, help="box noise std, fraction of object size")
    parser.add_argument("--max-instances", type=int, help="stop after this many objects")
    parser.add_argument("--noc", action="store_true", help="also run the per-click NoC@85/90 protocol")


def _add_points(protocol) -> None:
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


def _protocol_segment(args) -> int:
    from fewclick.protocols.segment import RoundsConfig
    from fewclick.protocols.segment_run import run_segment_models

    # the options named as RoundsConfig's fields, and --min-region
    named = ("rounds", "clicks_per_round", "strategy", "click_noise", "box_noise", "seed", "max_instances")
    config = RoundsConfig(min_region_px=args.min_region, **{name: getattr(args, name) for name in named})
    results = run_segment_models(args.models, args.data, args.out, config, args.noc, data_format=args.format)
    for name, r in results["methods"].items():
        noc = f"; NoC@85 {r['noc']['NoC@85']:.2f}, NoC@90 {r['noc']['NoC@90']:.2f}" if "noc" in r else ""
        print(f"{name}: mIoU per round " + " ".join(f"{m:.3f}" for m in r["mIoU"]) + noc)
    print(f"wrote {args.out}")
    return 0


def _protocol_points(args) -> int:
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
    keys = [f"mAP_{t:.1f}" for t in config.taus]
    for name in ("pseudo_box", *VARIANTS):
        print(f"{name}: " + ", ".join(f"{k} {results[name][k]:.3f}" for k in keys))
    print(f"RSV: {results['rsv']}")
    print(f"wrote {args.out}")
    return 0
