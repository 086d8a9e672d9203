"""Render docs/benchmarks/active.md from the JSON files benchmarks/active.py wrote.

python benchmarks/report_active.py docs/benchmarks/active_bccd.json [...] --out docs/benchmarks/active.md
    [--notes docs/benchmarks/active_notes.md]

``--notes``: a markdown file appended as it is (what was tried, on which split, and why).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _common import run_on

HEAD = """# Box-level active learning

`benchmarks/active.py` (tables by `benchmarks/report_active.py`). Per seed, an initial detector
(the plain detector, no clicks; its backbone is named per dataset: by default EfficientNet-Lite0
from its ImageNet weights, fine-tuned end to end) trains on a random 10% of the training part's
images, fully labeled; then every method runs
the same episodes from it (`fewclick.active`): the box-level methods ask the simulated oracle
about boxes until their answers obtained K ground-truth boxes an episode (K = 10% of the
training part's; fewer when the pool runs out), the image-level ones label whole images until
they reach K boxes. Each
episode warm-starts from the last model and trains on every labeled image (the initial ones and
every partly labeled one) for the run's `episode_steps`, the unqueried predictions on
partly labeled images as noisy labels at lambda_d = 0.5, and scores it on the test part
(VOC07 mAP@0.5, no clicks). The paper's loss averages over the anchors assigned to a
labeled or a noisy box; on our dense head the cells inside a box are the ones assigned to
it: in a partly labeled image only they train (a cell on a Gaussian weighs as the object
whose Gaussian is highest there, a box answered background is a labeled negative at
weight 1), its cells of no box do not. `boxes` counts the ground-truth boxes obtained, the
paper's measure of effort ("the number of ground truth bounding boxes obtained"): the initial
images' boxes, every object an answer named (a background answer obtains none) or a person
drew, and for image-level methods the ground-truth boxes of the images labeled. `questions`
counts the boxes asked, background answers included, and `seconds` is what all of it costs
a person under the cost model below: read the curves against boxes and against seconds
(the plot's two panels). Until session 47 `boxes` counted every question.
Full supervision is the same detector on every training image for the same total steps. The
consistency check asks every predicted box of a random 10% of the images not labeled at the
start, a box at a time, through the box-level path, then draws every object no answer named
(the image is then complete: it trains as a fully labeled one); its training data must equal
the image-level path's target for target, and the two detectors, trained alike from the initial
model, must score within 0.02.
"""


def render(reports: list[dict], notes: str = "") -> str:
    out = [HEAD]
    first = reports[0]
    model = first["cost_model"]
    out.append("Cost model (seconds): " + ", ".join(f"{k} {v}" for k, v in model["seconds"].items()) + ".")
    out += [f"- {k}: {v}" for k, v in model["sources"].items()]
    for r in reports:
        out.append(_dataset(r))
    if notes:
        out.append("\n" + notes.strip())
    return "\n".join(out) + "\n"


def _dataset(r: dict) -> str:
    name = Path(r["train"]).name
    full = r["full_supervision_mAP"]
    backbone = r.get("backbone", "pretrained")
    seeds = f"seeds {r['seeds']} (core-set methods {r.get('coreset_seeds', r['seeds'])})"
    steps = f"; {r['episode_steps']} steps an episode" if "episode_steps" in r else ""
    lines = [
        f"\n## {name}\n",
        f"- {run_on(r)}; backbone `{backbone}` ({r['detector']}); "
        f"box features for core-set: {r['box_features']}.",
        f"- training part {r['train_images']} images, {r['total_boxes']} boxes; "
        f"test {r['test_images']} images; {r['episodes']} episodes of {r['boxes_per_episode']} boxes; "
        f"{seeds}{steps}; config {json.dumps(r['config'])}.",
        f"- full supervision: mAP {full:.3f} ({r.get('full_supervision_steps')} steps); "
        f"85% of it: {0.85 * full:.3f}.",
        f"- load average {r.get('load_average_start')} at the start, {r.get('load_average_end')} at the end; "
        f"{r.get('seconds', 0) / 60:.0f} minutes in all.",
        *_consistency(r.get("consistency")),
        *_old_count(r),
        f"- plot: ![mAP against boxes and seconds](active_{name}.png)\n",
        "| method | seeds | boxes | questions | mAP mean ± std | % of full | seconds (cost model) "
        "| s per episode |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, c in r["curves"].items():
        cells = [
            " / ".join(str(b) for b in c["boxes"]),
            " / ".join(str(q) for q in c["questions"]) if "questions" in c else "-",
            " / ".join(f"{m:.3f}±{s:.3f}" for m, s in zip(c["mAP_mean"], c["mAP_std"])),
            " / ".join(f"{p:.0f}" for p in c["percent_of_full"]),
            " / ".join(f"{s:.0f}" for s in c["seconds"]),
            f"{c.get('episode_seconds_mean', 0):.0f}",
        ]
        lines.append(f"| {method} | {c['seeds']} | " + " | ".join(cells) + " |")
    targets = r.get("targets")
    if targets:
        lines.append("\nTargets:")
        for name_, t in targets.items():
            verdict = "met" if t.get("met") else "**missed**"
            detail = {k: v for k, v in t.items() if k != "met"}
            lines.append(f"- {name_}: {verdict} ({json.dumps(detail)})")
    return "\n".join(lines)


def _old_count(r: dict) -> list[str]:
    """A run from before session 47, whose ``boxes`` counted every question."""
    if any("questions" in c for c in r["curves"].values()):
        return []
    return [
        "- **measured before session 47:** its `boxes` count every question asked (background "
        "answers included) and its box-level episodes asked K questions, not K boxes obtained."
    ]


def _consistency(check: dict | None) -> list[str]:
    if not check:
        return []
    answers = json.dumps(check["answers"])
    return [
        f"- consistency ({check['units']} images, {check['boxes']} boxes; answers {answers}): "
        f"targets equal {check['equal_targets']} (lambda_d = 0: {check['equal_targets_lambda0']}; "
        f"before the missed objects are drawn: {check['equal_targets_before_drawing']}); "
        f"mAP box_all {check['box_all']:.3f}, image {check['image']:.3f} ({check['steps']} steps each)."
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("reports", type=Path, nargs="+")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--notes", type=Path, help="a markdown file appended as it is")
    args = p.parse_args(argv)
    reports = [json.loads(path.read_text()) for path in args.reports]
    args.out.write_text(render(reports, args.notes.read_text() if args.notes else ""))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
