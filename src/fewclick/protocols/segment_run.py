"""``fewclick protocol segment``: the rounds x clicks and NoC protocols over a dataset for
one or more predictors, written to JSON with a plot of mIoU vs clicks.

A model spec is a folder with ``m_b.pt`` / ``m_bc.pt`` (from ``fewclick train segment``),
or ``grabcut`` / ``box`` for the training-free baselines.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fewclick.io import read_dataset, rle
from fewclick.io.dataset import Dataset
from fewclick.predict.segment_api import BoxPredictor, SegmentPredictor
from fewclick.protocols import json_ready
from fewclick.protocols.segment import RoundsConfig, plot_miou_vs_clicks, run_noc, run_rounds


class InstanceItems:
    """``(image, mask bool[1, H, W], void bool[H, W] | None)`` per non-ignored object with a
    segmentation, decoded afresh on each pass and one mask at a time (large images hold
    hundreds of objects); the objects of one image share its array, so a predictor takes
    each image once. ``void`` is the image's unlabelled pixels (``extra["void"]``, e.g.
    GrabCut's boundary band), which the protocols leave out of the scores."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        for rec in self.dataset.images:
            objects = rec.objects
            if not len(objects) or objects.segmentations is None:
                continue
            image = rec.load_image()
            h, w = image.shape[:2]
            void = rec.extra.get("void")
            void = None if void is None else rle.segmentation_to_mask(void, h, w)
            for i in np.flatnonzero(~objects.ignore):
                if objects.segmentations[i] is not None:
                    yield image, rle.objects_masks(objects[[i]], h, w), void


def load_segment_predictor(spec: str | Path) -> tuple[str, SegmentPredictor]:
    """``(name, predictor)`` for a model spec (module docstring)."""
    text = str(spec)
    if text == "grabcut":
        from fewclick.predict.grabcut import GrabCutPredictor

        return "grabcut", GrabCutPredictor()
    if text == "box":
        return "box", BoxPredictor()
    from fewclick.predict.segment import MaskPredictor

    return Path(text).name, MaskPredictor.load(text)


def run_segment_models(
    specs: list[str | Path],
    data: str | Path,
    out: str | Path,
    config: RoundsConfig,
    noc: bool = False,
    noc_instances: int | None = None,
    data_format: str | None = None,
) -> dict:
    """Run the rounds protocol (and with ``noc`` the per-click one) for every spec; writes
    ``out`` (JSON) and a PNG of mIoU vs clicks beside it; returns the JSON's dict."""
    dataset = read_dataset(data, data_format)
    items = InstanceItems(dataset)
    results: dict = {"data": str(data), "config": None, "methods": {}}
    curves = {}
    for spec in specs:
        name, predictor = load_segment_predictor(spec)
        rounds = run_rounds(predictor, items, config)
        entry = rounds.to_dict()
        results["config"] = entry.pop("config")
        if noc:
            entry["noc"] = run_noc(
                predictor, items, seed=config.seed, max_instances=noc_instances or config.max_instances
            ).to_dict()
        results["methods"][name] = entry
        curves[name] = rounds.clicks_curve()
    if not any(r["instances"] for r in results["methods"].values()):
        raise ValueError(f"{data}: no object with a segmentation to run the protocol on")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(json_ready(results), indent=1))
    plot_miou_vs_clicks(curves, out.with_suffix(".png"), title=f"{Path(data).name}: mIoU vs clicks")
    return results
