"""Shape priors offered beside SAM's candidate masks for a box.

A box dragged tight around a nucleus or a cell says most of its shape. On dsb2018's train
part, the ellipse inscribed in a nucleus's tight box is its mask at IoU >= 0.85 for over a
third of the nuclei; with it beside SAM's three candidates for the box, 74 % of the nuclei
have a candidate at 0.85, against 65 % without (issue 54: a mask right without clicks saves
the person its outline). So the answer to a box alone offers that ellipse last among the
candidates, one Shift+Tab away; the person takes it or not, as any candidate.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from fewclick.predict.segment_api import MaskPrediction

__all__ = ["box_ellipse", "with_ellipse", "with_proposal"]


def box_ellipse(box, shape: tuple[int, int], offset: tuple[int, int] | None = None) -> np.ndarray:
    """``bool[H, W]`` of ``shape``: the ellipse inscribed in the XYXY ``box`` (image pixels,
    edges at pixel borders, as :func:`fewclick.protocols.segment.tight_box` gives them), in a
    frame whose top-left pixel is ``offset`` (x, y) of the image (None: the image's own)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (np.isfinite([x0, y0, x1, y1]).all() and x1 > x0 and y1 > y0):
        raise ValueError(f"expected a box [x0, y0, x1, y1] with x1 > x0 and y1 > y0, got {list(box)}")
    dx, dy = offset or (0, 0)
    mask = np.zeros(shape, np.uint8)
    centre = ((x0 + x1) / 2 - 0.5 - dx, (y0 + y1) / 2 - 0.5 - dy)  # pixel k's centre at k
    # OpenCV fills every pixel its outline touches: axes half a pixel short cover the box's
    # pixels more closely (dsb2018's train nuclei: 38 % at IoU 0.85 against 34 % at full length)
    axes = (max(x1 - x0 - 0.5, 0.0), max(y1 - y0 - 0.5, 0.0))
    cv2.ellipse(mask, (centre, axes, 0.0), 1, thickness=-1)
    return mask.astype(bool)


def with_ellipse(pred: MaskPrediction, box) -> MaskPrediction:
    """``pred`` (an answer to ``box`` alone, with its candidates) with the box's ellipse
    offered last among them (``shape`` "ellipse"; no state: a click after it prompts SAM
    with the box and the clicks alone). An answer without candidates is returned as it is."""
    if not pred.candidates:
        return pred
    ellipse = box_ellipse(box, pred.mask.shape, pred.offset)
    if not ellipse.any():
        return pred
    shape = MaskPrediction(ellipse, 0.0, offset=pred.offset, shape="ellipse")
    return replace(pred, candidates=[*pred.candidates, shape])


def with_proposal(pred: MaskPrediction, found: MaskPrediction | None) -> MaskPrediction:
    """``pred`` (SAM's answer to a click alone, with its candidates) with ``found`` served
    first: the image's proposal under the click (``shape`` "proposal"; its score SAM's
    predicted IoU times the mask's stability; no state of SAM's: a click after it prompts SAM
    with the clicks and the proposal's box, :func:`fewclick.predict.zoom.framing_box`), SAM's
    own masks after it for Tab. The proposals were made in windows sized to the image's
    objects (:mod:`fewclick.predict.proposals`), where a
    small object spans more of SAM's input than in the whole image: on dsb2018's train part
    the proposal under a click in a nucleus's middle is its mask at IoU >= 0.85 for 54 % of
    the nuclei (issue 54). ``found`` None (no proposal holds the click, or none are made
    yet), or an answer in a window's frame, leaves ``pred`` as it is."""
    if found is None or pred.offset is not None:
        return pred
    first = replace(found, shape="proposal", offset=None, state=None, candidates=[])
    return replace(first, candidates=[first, *(pred.candidates or [pred])])
