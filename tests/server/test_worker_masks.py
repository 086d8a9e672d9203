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
