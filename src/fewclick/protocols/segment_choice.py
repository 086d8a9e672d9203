"""Which box-to-mask backend serves: each candidate is scored on simulated sessions over
masks the user already finished (a noisy box, then rounds of corrective clicks: the
:func:`~fewclick.protocols.segment.run_rounds` protocol), and the one with the highest mIoU
after the last round serves (ties go to the earlier name in the table). The app does this
per project once :data:`MIN_MASKS` masks are finished; ``benchmarks/segment.py`` does it
as ``auto`` on the training part only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace

from fewclick.predict.segment_api import SegmentPredictor
from fewclick.protocols.segment import RoundsConfig, run_rounds

#: finished masks a project needs before its backends are compared
MIN_MASKS = 10

#: The quality ranker's sessions: an annotator who gives up to 4 clicks a round and ignores
#: errors under 5% of the object (the paper's annotators gave 0-4 clicks a round and stopped
#: when satisfied), so sessions end at different rounds. ``RoundsConfig`` fields.
RANKER_SESSIONS = dict(clicks_per_round=4, min_region_fraction=0.05)


def score_backends(
    predictors: dict[str, SegmentPredictor],
    items: Iterable,
    config: RoundsConfig | None = None,
    max_instances: int = 200,
    progress: bool = False,
) -> dict[str, dict]:
    """``{name: {"mIoU": [per round], "final": mIoU after the last round, "instances"}}``
    for every predictor on the same sessions (the same boxes and click streams)."""
    cfg = replace(RoundsConfig() if config is None else config, max_instances=max_instances)
    table = {}
    for name, predictor in predictors.items():
        result = run_rounds(predictor, items, cfg, progress=progress)
        miou = result.miou
        table[name] = {"mIoU": miou, "final": miou[-1], "instances": len(result.ious)}
    return table


def choose_backend(table: dict[str, dict]) -> str:
    """The name with the highest ``final`` mIoU in a :func:`score_backends` table."""
    scored = [(name, row["final"]) for name, row in table.items() if not math.isnan(row["final"])]
    if not scored:
        raise ValueError("no backend was scored on any finished mask: nothing to choose from")
    return max(scored, key=lambda item: item[1])[0]
