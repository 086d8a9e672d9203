"""Join runs of ``benchmarks/active.py`` made apart (``--first-seed``, one process a seed)
into one report, with its curves, targets and plot.

    python benchmarks/active_merge.py A.json B.json [...] --out F.json

The parts must share the dataset, the test images, the configuration and the backbone;
their runs are joined by method and seed (a method's seed in two parts is refused; one seed's
methods may come from several parts), the consistency check is taken from the part that
ran it, and full supervision must agree.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _common import write_report

from active import mean_curves, plot, targets

#: keys that must be equal in every part
SAME = (
    "train",
    "test",
    "test_images",
    "total_boxes",
    "episodes",
    "config",
    "backbone",
    "validation",
    "quick",
)


def merge(parts: list[dict]) -> dict:
    """One report of ``parts`` (each a report of ``benchmarks/active.py``)."""
    if not parts:
        raise ValueError("nothing to merge")
    first = parts[0]
    for key in SAME:
        differ = [i for i, p in enumerate(parts) if p.get(key) != first.get(key)]
        if differ:
            raise ValueError(f"part {differ[0]} differs from part 0 in {key!r}: runs of different set-ups")
    fulls = {round(p["full_supervision_mAP"], 6) for p in parts if "full_supervision_mAP" in p}
    if len(fulls) > 1:
        raise ValueError(f"the parts disagree on full supervision: {sorted(fulls)}")
    out = {k: v for k, v in first.items() if k not in ("runs", "curves", "targets", "consistency")}
    out["runs"] = {}
    for i, part in enumerate(parts):
        for method, runs in part["runs"].items():
            for seed, run in runs.items():
                if seed in out["runs"].setdefault(method, {}):
                    raise ValueError(f"seed {seed} of {method} is in two parts (part {i} and an earlier one)")
                out["runs"][method][seed] = run
    checks = [p["consistency"] for p in parts if "consistency" in p]
    if checks:
        out["consistency"] = checks[0]
    out["seeds"] = len({seed for runs in out["runs"].values() for seed in runs})
    coreset = [runs for method, runs in out["runs"].items() if method.endswith("coreset")]
    out["coreset_seeds"] = len({seed for runs in coreset for seed in runs})
    out["seconds"] = max(p.get("seconds", 0.0) for p in parts)
    out["merged_from"] = len(parts)
    out["curves"] = mean_curves(out)
    out["targets"] = targets(out)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("parts", nargs="+", type=Path)
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)
    report = merge([json.loads(path.read_text()) for path in args.parts])
    write_report(report, args.out)
    plot(report, args.out.with_suffix(".png"), Path(report["train"]).name)
    print(json.dumps(report["targets"], indent=1))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
