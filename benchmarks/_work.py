"""The benchmarks' work folders: a folder's models belong to one training budget."""

from __future__ import annotations

import json
from pathlib import Path


def claim_work(work: Path, minutes: float) -> None:
    """Record ``minutes`` as the budget of the models in ``work``, or stop when the models
    already there were trained with another budget (a resumed run would silently measure
    them under the new run's name)."""
    work.mkdir(parents=True, exist_ok=True)
    stamp = work / "budget.json"
    if stamp.is_file():
        stored = json.loads(stamp.read_text()).get("budget_minutes")
        if stored != minutes:
            raise SystemExit(
                f"{work} holds models trained with a {stored}-minute budget, not {minutes}: "
                "pass another --work or delete the folder"
            )
    stamp.write_text(json.dumps({"budget_minutes": minutes}))


def load_average() -> float:
    """The machine's 1-minute load average, which the reports name beside timings."""
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def write_report(report: dict, out: Path) -> None:
    """``report`` as indented JSON at ``out`` (NaN as null), its folder made."""
    from fewclick.protocols import json_ready

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(json_ready(report), indent=1))
