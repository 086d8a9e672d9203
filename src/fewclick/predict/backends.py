"""The box-to-mask backends behind one interface (:class:`SegmentPredictor`), by name.

- ``sam``: the pretrained promptable segmenter (:mod:`fewclick.predict.sam`);
- ``sam_tuned``: the same encoder, with the decoder fine-tuned on the project's finished
  masks (:mod:`fewclick.train.sam_decoder`; the file :data:`TUNED_DECODER` in the mask
  model's folder);
- ``model``: fewclick's own M_b / M_b+c trained on the project (:mod:`fewclick.predict.segment`);
- ``grabcut``: OpenCV GrabCut with clicks as hard seeds (:mod:`fewclick.predict.grabcut`);
- ``box``: the box itself, the baseline every backend must beat.

Every backend's ``predict`` returns its own ``score`` (SAM's IoU estimate, the model's mean
foreground probability, GrabCut's 1 / 0 for converged / fell back, 1 for the box), which
the quality ranker takes as a feature.
"""

from __future__ import annotations

from pathlib import Path

from fewclick.predict.segment_api import BoxPredictor, SegmentPredictor

BACKENDS = ("sam", "sam_tuned", "model", "grabcut", "box")
#: in a mask model's folder when the decoder tuned with it beat the pretrained one
TUNED_DECODER = "sam_decoder_tuned.onnx"


def make_backend(name: str, model_dir: str | Path | None = None, encoder=None) -> SegmentPredictor:
    """The backend ``name`` (one of :data:`BACKENDS`). ``model_dir`` holds ``m_b.pt`` /
    ``m_bc.pt`` for ``model`` and :data:`TUNED_DECODER` for ``sam_tuned``; ``encoder`` is a
    shared :class:`ImageEncoder` for SAM (None: the default pretrained pair)."""
    if name == "sam":
        from fewclick.predict.sam import SamPredictor

        return SamPredictor(encoder)
    if name == "sam_tuned":
        if model_dir is None:
            raise ValueError(f"the sam_tuned backend needs the mask model's folder with {TUNED_DECODER}")
        from fewclick.predict.sam import SamPredictor

        return SamPredictor(encoder, Path(model_dir) / TUNED_DECODER)
    if name == "model":
        if model_dir is None:
            raise ValueError("the model backend needs a folder with m_b.pt (fewclick train segment)")
        from fewclick.predict.segment import MaskPredictor

        return MaskPredictor.load(model_dir)
    if name == "grabcut":
        from fewclick.predict.grabcut import GrabCutPredictor

        return GrabCutPredictor()
    if name == "box":
        return BoxPredictor()
    raise ValueError(f"unknown mask backend {name!r}: expected one of {', '.join(BACKENDS)}")
