"""The test, then train record replayed on stored savings (issue 68): how often a level of
the test promotes a worse source. Shared by ``prequential.py``, which measures the savings,
and ``report_prequential.py``, which replays them at the levels and margins it tabulates.

A promotion is false when the source promoted saved less than the one it replaced over the
next :data:`AHEAD` images of the class; promotions with fewer than :data:`MIN_AHEAD` images
after them are not judged.
"""

from __future__ import annotations

from fewclick.active.prequential import NONE, Record

AHEAD = 8
MIN_AHEAD = 4
LEVELS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
MARGINS = (0.0, 0.5, 1.0, 2.0)


def false_promotions(runs: list[list[dict]], names: list[str], levels, pairs: int, margin: float) -> dict:
    """Per level ``z`` (a string key): the records replayed on each run's rows (``saved``:
    source -> class -> seconds, one row an image in the order finished), the promotions
    judged, how many were false, their rate, and the seconds the source serving saved."""
    out = {}
    for z in levels:
        judged = false = 0
        served = 0.0
        for rows in runs:
            record = Record(tuple(names), z, pairs, margin)
            for i, row in enumerate(rows):
                for c in row["saved"][names[0]]:
                    before = record.serves(c)
                    served += _of(row, before, c)
                    promoted = record.add(i, c, {n: row["saved"][n][c] for n in names})
                    if promoted is None:
                        continue
                    ahead = [r for r in rows[i + 1 : i + 1 + AHEAD] if c in r["saved"][names[0]]]
                    if len(ahead) < MIN_AHEAD:
                        continue
                    judged += 1
                    mine = sum(_of(r, promoted, c) for r in ahead)
                    theirs = sum(_of(r, before, c) for r in ahead)
                    false += int(mine < theirs)
        out[str(z)] = {
            "judged": judged,
            "false": false,
            "rate": round(false / judged, 3) if judged else None,
            "served_seconds": round(served, 1),
        }
    return out


def every_order(report: dict) -> list[list[dict]]:
    """A ``prequential.py`` report's rows of every order of the images, the name order first."""
    return [report["per_image"], *report.get("orders_per_image", [])]


def _of(row: dict, source: str, c: int) -> float:
    return 0.0 if source == NONE else row["saved"][source][c]
