"""The rounds protocol finished by outline edits (``benchmarks/segment.py``'s ``sam_edit``).

After the 3 x 3 corrective clicks, a mask still under the IoU asked for is turned into an
editable outline and fixed as the simulated annotator of the campaign fixes it
(:func:`fewclick.simulate.outline.plan_edits`: the cheapest deletes, drags and redraws, by
the issue's keystroke-level prices, until the filled outline reaches the IoU); a mask the
edits cannot bring there keeps its IoU, and costs nothing more here (the campaign's person
would draw a polygon). :func:`edit_summary` reports what the edits gave, by object size.
"""

from __future__ import annotations

import numpy as np

from fewclick.metrics.segmentation import mask_iou
from fewclick.simulate.annotator import MASK_IOU
from fewclick.simulate.outline import plan_edits


def outline_finish(target: float = MASK_IOU):
    """``finish(mask, gt, void) -> (iou, seconds)`` for :func:`run_rounds`: the IoU after the
    outline edits that bring ``mask`` to ``target`` (its own IoU, and 0 s, when it is there
    already or the edits do not get there) and their seconds."""

    def finish(mask: np.ndarray, gt: np.ndarray, void) -> tuple[float, float]:
        iou = mask_iou(mask, gt, void)
        if iou >= target:
            return iou, 0.0
        plan = plan_edits(mask, gt, target)
        if plan is None or plan.iou <= iou:
            return iou, 0.0
        return float(plan.iou), float(plan.seconds)

    return finish


def edit_summary(result, edges: tuple[float, float], target: float = MASK_IOU) -> dict:
    """What the outline edits gave over ``result`` (a :class:`RoundsResult` with
    ``finished``): mIoU and the share of objects at ``target`` after the clicks and after the
    edits, the edits' mean seconds an object (over all objects, and over those edited), all
    and by object size (``edges``: small under the first, large over the second)."""
    if result.finished is None:
        raise ValueError("the rounds ran without a finish step: no edits to summarise")
    before, (after, seconds) = result.final_ious, result.finished.T
    sizes = result.sizes
    groups = {
        "all": np.ones(len(sizes), bool),
        "small": sizes < edges[0],
        "medium": (sizes >= edges[0]) & (sizes <= edges[1]),
        "large": sizes > edges[1],
    }
    out = {}
    for name, m in groups.items():
        edited = m & (seconds > 0)
        out[name] = {
            "count": int(m.sum()),
            "mIoU_clicks": _mean(before[m]),
            "mIoU_edited": _mean(after[m]),
            "at_target_clicks": _mean(before[m] >= target),
            "at_target_edited": _mean(after[m] >= target),
            "edited": int(edited.sum()),
            "edit_seconds_per_object": _mean(seconds[m]),
            "edit_seconds_per_edited": _mean(seconds[edited]),
        }
    return out


def _mean(values: np.ndarray) -> float | None:
    values = np.asarray(values, np.float64)
    return round(float(values.mean()), 4) if len(values) else None


__all__ = ["edit_summary", "outline_finish"]
