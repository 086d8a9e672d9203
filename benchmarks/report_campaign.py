"""Render docs/benchmarks/campaign.md from the JSON files benchmarks/campaign.py wrote.

python benchmarks/report_campaign.py docs/benchmarks/campaign_bccd.json [...] \\
    --out docs/benchmarks/campaign.md

Each JSON's plot (the same name, ``.png``) is linked; put it beside the page.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HEAD = """# Annotation campaigns through the app

`benchmarks/campaign.py` (tables by `benchmarks/report_campaign.py`): the real server, a user
made with the CLI, then the HTTP API only; a simulated annotator takes every image to
manual quality (detect mode: every object's box at IoU >= 0.7 with its class, no false
positive, ignore-type objects neither; mask mode: every object's mask at IoU >= 0.85), the
app training by itself every `retrain_every` finished images. Drawing by hand and
pre-annotation without clicks are priced on the same images, with the detector as it stood
when each image was annotated. Interactions count every click, drag and key press the same
way for every method (a class key only when the class changes); seconds follow the cost
model below plus the measured waits for the model's answers.
"""


def render(reports: list[dict]) -> str:
    out = [HEAD]
    model = reports[0]["cost_model"]
    out.append("Cost model (seconds): " + ", ".join(f"{k} {v}" for k, v in model["seconds"].items()) + ".")
    out += [f"- {k}: {v}" for k, v in model["sources"].items()]
    for r in reports:
        out.append(_dataset(r))
    return "\n".join(out) + "\n"


def _dataset(r: dict) -> str:
    name = Path(r["data"]).name
    t, a, n = r["totals"], r["analytics"], max(r["images"], 1)
    lines = [
        f"\n## {name}, {r['mode']} mode\n",
        f"- run {r['date']} on {r['machine']}; {r['images']} images; the app trains every "
        f"{r['retrain_every']} finished images; load average {r.get('load_average_start')} at the start, "
        f"{r.get('load_average_end')} at the end.",
        f"- every image at manual quality: **{t['manual_quality']}**; waits for the model "
        f"{t.get('waited_seconds')} s in all (p50 {r['latency_ms'].get('p50')} ms, "
        f"p95 {r['latency_ms'].get('p95')} ms a request).",
        f"- the app's analytics: {a['interactions']} interactions, {a['seconds']} s "
        f"(off by {100 * a['interactions_difference']:.1f}% and "
        f"{100 * a['seconds_difference']:.1f}% from the campaign's own count).",
        f"- plot: ![interactions per image](campaign_{name}_{r['mode']}.png)\n",
        "| method | interactions | per image | seconds | ratio to manual (interactions) |",
        "|---|---|---|---|---|",
        f"| fewclick | {t['interactions']} | {t['interactions'] / n:.1f} | {t['seconds']} | "
        f"{t['ratio_to_manual']} |",
    ]
    for method, b in r.get("baselines", {}).items():
        ratio = t["manual_interactions"] / b["interactions"] if b["interactions"] else float("nan")
        lines.append(
            f"| {method.replace('_', ' ')} | {b['interactions']} | {b['interactions'] / n:.1f} | "
            f"{b['seconds']} | {ratio:.3f} |"
        )
    load = r.get("load")
    if load:
        lines.append(
            f"\nLoad: {load['annotators']} annotators at once; {len(load['errors'])} errors, "
            f"{load['lost_writes']} lost writes, {load['conflicts']} conflicts (409, reloaded). "
            "p95 per endpoint (ms): " + ", ".join(f"`{k}` {v}" for k, v in load["p95_ms"].items())
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("reports", type=Path, nargs="+")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    args.out.write_text(render([json.loads(path.read_text()) for path in args.reports]))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
