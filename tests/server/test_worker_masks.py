"""The worker's answer to a click start, with stand-ins for SAM, the image's proposals and
the quality ranker (fewclick.server.worker_masks._predicted)."""

import numpy as np

from fewclick.predict.segment_api import MaskPrediction
from fewclick.server import worker_masks, worker_proposals
from fewclick.server.serving import Serving


class _Sam:
    def predict(self, box, clicks, previous=None, **options):
        mask = np.zeros((40, 50), bool)
        mask[10:20, 10:20] = True
        first = MaskPrediction(mask, 0.9)
        return MaskPrediction(mask, 0.9, candidates=[first, MaskPrediction(~mask, 0.4)])


class _Ranker:
    def __init__(self):
        self.scores = []

    def predict(self, features, scores):
        self.scores += list(scores)
        return [0.5]


def test_a_proposal_served_first_gets_no_quality_estimate_from_a_ranker_of_sam_s_scores(monkeypatch):
    """The ranker learnt from SAM's predicted IoU; a proposal's score (SAM's predicted IoU times
    stability) is another measure, so the proposal under a click is served without an
    estimate; SAM's own mask for a click where no proposal lies gets one."""
    ranker, proposal = _Ranker(), np.zeros((40, 50), bool)
    proposal[12:18, 12:18] = True
    monkeypatch.setattr(worker_masks, "_mask_backend", lambda serving, path, sam: _Sam())
    monkeypatch.setattr(worker_masks, "_ranker", lambda file: ranker)
    found = {"at": MaskPrediction(proposal, 0.6)}
    monkeypatch.setattr(worker_proposals, "proposal_at", lambda folder, key, x, y: found["at"])
    serving = Serving("sam_tuned", "default", ranker="ranker.json")

    pred, quality, zoom = worker_masks._predicted(
        "a.png", ("f", "k"), serving, None, [[15.0, 15.0, True]], None, None
    )
    assert pred.shape == "proposal" and quality is None and zoom is None
    assert ranker.scores == [], "the ranker is not asked about the proposal"

    found["at"] = None
    pred, quality, _ = worker_masks._predicted(
        "a.png", ("f", "k"), serving, None, [[15.0, 15.0, True]], None, None
    )
    assert pred.shape is None and quality == 0.5 and ranker.scores == [0.9], "SAM's mask and SAM's score"


def test_corrective_clicks_after_a_click_start_keep_their_frame_through_tab_asked_again_undo_and_eviction(
    monkeypatch,
):
    """The box each request of a click start's mask prompts SAM with: none for the click
    alone, the mask corrected framed for the next click, joined with the candidate Tabbed
    to after it; asked again while its window was encoded, the same frame; the same
    answer asked again, without SAM; the frame kept after an undo;
    none once the answer was evicted by other masks in the making."""
    from fewclick.server import mask_answers

    asked, zooms = [], ["encoding"]  # the second request's window is being encoded
    masks = {1: (slice(10, 20), slice(10, 20)), 2: (slice(12, 18), slice(12, 40))}

    def predicted(path, sam, serving, box, made, before, large, project=None):
        asked.append(box)
        mask = np.zeros((480, 640), bool)
        mask[masks[min(len(made), 2)]] = True
        candidates = [MaskPrediction(mask, 0.9), MaskPrediction(np.roll(mask, 30, axis=1), 0.5)]
        zoom = (zooms.pop(0) if zooms else "window") if box else None
        return MaskPrediction(mask, 0.9, candidates=candidates), None, zoom

    monkeypatch.setattr(worker_masks, "_predicted", predicted)
    monkeypatch.setattr(worker_masks.worker, "image", lambda path: np.zeros((480, 640, 3), np.uint8))
    monkeypatch.setattr(mask_answers, "_LAST", type(mask_answers._LAST)())
    serving = Serving("sam", "default")
    one, two, three = [15.0, 15.0, True], [25.0, 25.0, False], [13.0, 13.0, True]

    def segment(clicks, candidate=0, path="a.png"):
        return worker_masks.segment(path, ("f", "k"), serving, None, clicks, candidate)

    segment([one])
    segment([one, two])
    segment([one, two])  # asked again once the window is encoded: the same frame
    segment([one, two, three], candidate=1)  # Tab to the mask 30 px right, then a click
    segment([one, two, three], candidate=1)  # asked again: as before, SAM not run
    segment([one, [14.0, 14.0, True]])  # two clicks undone, another made: the frame kept
    framed, joined = [10.0, 10.0, 20.0, 20.0], [10.0, 10.0, 70.0, 20.0]
    assert asked == [None, framed, framed, joined, joined]
    for k in range(mask_answers.KEPT):  # other masks in the making
        segment([one], path=f"other{k}.png")
    asked.clear()
    segment([one, two, three])
    assert asked == [None], "evicted: made anew from the clicks alone"


def test_strokes_sent_with_the_mask_they_paint_are_painted_on_it_without_an_answer_kept(monkeypatch):
    """The page sends the mask its strokes paint: an answer the worker no longer keeps (made
    before a restart, or evicted) is not made again, so the strokes land where the person
    saw them, on the candidate shown and with its score."""
    from fewclick.io.rle import mask_to_rle, rle_to_mask
    from fewclick.server import mask_answers

    def predicted(*args, **kwargs):
        raise AssertionError("no answer is made again")

    monkeypatch.setattr(worker_masks, "_predicted", predicted)
    monkeypatch.setattr(worker_masks.worker, "image", lambda path: np.zeros((48, 64, 3), np.uint8))
    monkeypatch.setattr(mask_answers, "_LAST", type(mask_answers._LAST)())
    shown = np.zeros((48, 64), bool)
    shown[10:20, 10:20] = True
    stroke = {"points": [[30.0, 15.0]], "radius": 2, "add": True}
    under = {"mask": mask_to_rle(shown), "score": 0.7}
    out = worker_masks.segment(
        "a.png",
        ("f", "k"),
        Serving("sam", "default"),
        None,
        [[15.0, 15.0, True]],
        2,
        [stroke],
        None,
        None,
        under,
    )
    painted = rle_to_mask(out["mask"])
    assert painted[10:20, 10:20].all() and painted[15, 30] and not painted[40, 5]
    assert out["score"] == 0.7 and out["candidates"] == [] and out["quality"] is None
