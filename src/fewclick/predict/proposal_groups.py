"""Groups among an image's proposals: a proposal that holds two or more smaller ones is a
group of objects, not one, and goes (:mod:`fewclick.predict.proposals`, "Groups")."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from fewclick.predict.proposals import Proposals

GROUP_INSIDE = 0.8  # a proposal this much inside a larger one is held by it
GROUP_MEMBERS = 2  # a proposal holding this many is a group


def without_groups(proposals: Proposals) -> Proposals:
    """``proposals`` without those holding :data:`GROUP_MEMBERS` or more smaller ones, each
    at least :data:`GROUP_INSIDE` of its mask inside (module docstring: "Groups")."""
    n = len(proposals)
    if n <= GROUP_MEMBERS:
        return proposals
    boxes = proposals.boxes
    areas = proposals.areas()
    groups = []
    for i in range(n):
        x0, y0, x1, y1 = boxes[i] + [-1, -1, 1, 1]
        held = (boxes[:, 0] >= x0) & (boxes[:, 1] >= y0) & (boxes[:, 2] <= x1) & (boxes[:, 3] <= y1)
        held &= areas < areas[i]
        members = [
            j
            for j in np.nonzero(held)[0]
            if _shared(proposals.masks[i], proposals.masks[j]) >= GROUP_INSIDE * areas[j]
        ]
        if len(members) >= GROUP_MEMBERS:
            groups.append(i)
    if not groups:
        return proposals
    return proposals.take(np.setdiff1d(np.arange(n), groups))


def _shared(a: tuple, b: tuple) -> int:
    """The pixels two mask crops ``(x0, y0, bool[h, w])`` share."""
    (ax, ay, am), (bx, by, bm) = a, b
    x0, y0 = max(ax, bx), max(ay, by)
    x1, y1 = min(ax + am.shape[1], bx + bm.shape[1]), min(ay + am.shape[0], by + bm.shape[0])
    if x1 <= x0 or y1 <= y0:
        return 0
    return int((am[y0 - ay : y1 - ay, x0 - ax : x1 - ax] & bm[y0 - by : y1 - by, x0 - bx : x1 - bx]).sum())
