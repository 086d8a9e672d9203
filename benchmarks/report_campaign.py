"""Render docs/benchmarks/campaign.md from the JSON files benchmarks/campaign.py wrote.

python benchmarks/report_campaign.py docs/benchmarks/campaign_bccd.json [...] \\
    --out docs/benchmarks/campaign.md [--notes docs/benchmarks/campaign_notes.md]

Each JSON's plot (the same name, ``.png``) is linked; put it beside the page. Runs of the
same data and settings with one annotator and with several are compared (click-to-result
p95). ``--notes``: a hand-written reading of the runs, appended.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _common import run_on

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


def render(reports: list[dict], notes: str = "") -> str:
    out = [HEAD]
    model = {"seconds": {}, "sources": {}}  # every run's actions (a newer run's prices win)
    for r in reports:
        for part in model:
            model[part].update(r["cost_model"][part])
    out.append("Cost model (seconds): " + ", ".join(f"{k} {v}" for k, v in model["seconds"].items()) + ".")
    out += [f"- {k}: {v}" for k, v in model["sources"].items()]
    out.append(_summary(reports))
    for r in reports:
        out.append(_dataset(r))
    out.append(_load_comparison(reports))
    if notes:
        out.append("\n" + notes.strip())
    return "\n".join(line for line in out if line) + "\n"


def _summary(reports: list[dict]) -> str:
    lines = [
        "\n## Summary\n",
        "| data | mode | part | images | annotators | interactions | by hand | ratio to manual | "
        "seconds | by hand (s) | manual quality |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        t = r["totals"]
        lines.append(
            f"| {Path(r['data']).name} | {r['mode']} | {r.get('part', 'all')} | {r['images']} | "
            f"{r.get('load', {}).get('annotators', 1)} | {t['interactions']} | {t['manual_interactions']} | "
            f"{t['ratio_to_manual']} | {t['seconds']} | {t.get('manual_seconds')} | {t['manual_quality']} |"
        )
    return "\n".join(lines)


PACE = {True: " at a person's pace", False: " without pauses"}


def _load_comparison(reports: list[dict]) -> str:
    """Click-to-result p95 with several annotators against one, for runs of the same data,
    mode, part, training and pace (a person's, or none)."""

    def key(r):
        return (r["data"], r["mode"], r.get("part"), r["retrain_every"], bool(r.get("think")))

    single = {key(r): r for r in reports if "load" not in r}
    lines = []
    for r in reports:
        one = single.get(key(r))
        if "load" not in r or one is None:
            continue
        many, alone = r["latency_ms"].get("p95"), one["latency_ms"].get("p95")
        ratio = f"{many / alone:.2f}x" if many and alone else "-"
        lines.append(
            f"- {Path(r['data']).name}, {r['load']['annotators']} annotators"
            f"{PACE[bool(r.get('think'))]}: "
            f"click-to-result p95 {many} ms against {alone} ms for one annotator ({ratio}; "
            f"{r['images']} and {one['images']} images)."
        )
    return "\n## Several annotators against one\n\n" + "\n".join(lines) if lines else ""


def _dataset(r: dict) -> str:
    name = Path(r["data"]).name
    t, a, n = r["totals"], r["analytics"], max(r["images"], 1)
    plot = Path(r.get("file", f"campaign_{name}_{r['mode']}.json")).with_suffix(".png").name
    training = f"trains every {r['retrain_every']} finished images" if r["retrain_every"] else "never trains"
    if r.get("trainer_seconds_per_step"):
        training += (
            f" by a training job; its background trainer runs, given the person's seconds at "
            f"{r['trainer_seconds_per_step']} s a step"
        )
    part = f", {r['part']} part" if r.get("part", "all") != "all" else ""
    people = f", {r['load']['annotators']} annotators" if r.get("load") else ""
    lines = [
        f"\n## {name}, {r['mode']} mode{part}{people}\n",
        f"- command: `{r['command']}`" if r.get("command") else "",
        f"- {run_on(r)}; {r['images']} images; the app {training}; load average "
        f"{r.get('load_average_start')} at the start, {r.get('load_average_end')} at the end.",
        f"- every image at manual quality: **{t['manual_quality']}**; waits for the model "
        f"{t.get('waited_seconds')} s in all (p50 {r['latency_ms'].get('p50')} ms, "
        f"p95 {r['latency_ms'].get('p95')} ms a request).",
        f"- the app's analytics: {a['interactions']} interactions, {a['seconds']} s "
        f"(off by {100 * a['interactions_difference']:.1f}% and "
        f"{100 * a['seconds_difference']:.1f}% from the campaign's own count).",
        f"- plot: ![interactions per image]({plot})\n",
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
    if "seconds_accepted_looked" in t:
        looked = sum(row.get("looked_at", 0) for row in r["per_image"])
        accepted = sum(row.get("accepted", 0) for row in r["per_image"])
        lines.append(
            f"\nSeconds count a look (1.6 s) at each of the {looked} proposals shown, accepted or "
            f"dropped; priced only for the {accepted} accepted (the rule before issue 52), "
            f"fewclick took {t['seconds_accepted_looked']} s."
        )
    if r.get("trainer_seconds_per_step"):
        lines.append(_trainer(r["per_image"]))
    if r["mode"] == "mask":
        outlined = sum(row.get("polygons", 0) for row in r["per_image"])
        objects = sum(row["objects"] for row in r["per_image"])
        lines.append(
            f"\n{outlined} of {objects} objects outlined as polygons "
            "(corrective clicks did not bring them to IoU 0.85)."
        )
    load = r.get("load")
    if load:
        lines.append(
            f"\nLoad: {load['annotators']} annotators at once; {len(load['errors'])} errors, "
            f"{load['lost_writes']} lost writes, {load['conflicts']} conflicts (409, reloaded). "
            "p95 per endpoint (ms): " + ", ".join(f"`{k}` {v}" for k, v in load["p95_ms"].items())
        )
    return "\n".join(line for line in lines if line)


def _trainer(rows: list[dict]) -> str:
    """Per image: the trainer's steps by its end and the detector version serving, with the
    interactions beside drawing by hand's."""
    lines = [
        "\n| image | objects | trainer steps | detector serving | proposals on open | fewclick | by hand |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        version = row.get("serving_version")
        lines.append(
            f"| {row['file_name']} | {row['objects']} | {row.get('trainer_steps')} | "
            f"{'training-free start' if version is None else f'v{version}'} | "
            f"{'-' if row.get('proposals_on_open') is None else row['proposals_on_open']} | "
            f"{row['interactions']} | {row['manual']['interactions']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("reports", type=Path, nargs="+")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--notes", type=Path, help="a hand-written reading of the runs, appended")
    args = p.parse_args(argv)
    notes = args.notes.read_text() if args.notes else ""
    reports = [{**json.loads(path.read_text()), "file": path.name} for path in args.reports]
    args.out.write_text(render(reports, notes))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
