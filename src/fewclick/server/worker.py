"""Model work off the request thread: predictions in a worker process, training in jobs.

:class:`ModelWorker` owns one worker process (``ProcessPoolExecutor``, spawn). The process
keeps its predictors and the last images it decoded, so a second click on the same image
pays only for the light part of the model (the image is encoded once per predictor). The
functions below run *in* that process; their arguments and results are plain data.

Training runs in its own process per job (``run_training``), which writes its progress to
the job's row; the app never blocks on it.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

_IMAGES: OrderedDict[str, np.ndarray] = OrderedDict()
_PREDICTORS: dict[tuple, object] = {}
_CURRENT: dict[tuple, str] = {}  # predictor key -> the image it holds
_LAST_MASKS: dict[tuple, tuple] = {}  # (image, model, box) -> (clicks, mask) of the last answer


class ModelWorker:
    def __init__(self, processes: int = 1) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pool = ProcessPoolExecutor(max_workers=processes, mp_context=ctx, initializer=_init)

    def submit(self, fn, *args):
        return self.pool.submit(fn, *args)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def _init() -> None:
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def _image(path: str) -> np.ndarray:
    from fewclick.io.images import load_image

    if path in _IMAGES:
        _IMAGES.move_to_end(path)
        return _IMAGES[path]
    image = load_image(path)
    _IMAGES[path] = image
    while len(_IMAGES) > 3:
        _IMAGES.popitem(last=False)
    return image


def _predictor(key: tuple, make, path: str):
    """The cached predictor for ``key``, holding the image at ``path``."""
    predictor = _PREDICTORS.get(key)
    if predictor is None:
        predictor = _PREDICTORS[key] = make()
    if _CURRENT.get(key) != path:
        predictor.set_image(_image(path))
        _CURRENT[key] = path
    return predictor


def detect(path: str, model: str | None, num_classes: int, clicks: list[list[float]], sizes: dict) -> dict:
    """Click-to-detect: the project's detector when it has one, else template correlation."""
    from fewclick.types import Clicks

    xy = np.asarray([c[:2] for c in clicks], np.float32).reshape(-1, 2)
    labels = np.asarray([int(c[2]) for c in clicks], np.int64)
    c = Clicks(xy, labels, np.ones(len(xy), bool))
    if model is not None:
        from fewclick.predict.detect import ClickDetector

        predictor = _predictor(("detect", model), lambda: ClickDetector.load(model), path)
        det = predictor.predict(c)
        method, classes = "model", list(predictor.classes)
    else:
        from fewclick.predict.template import TemplateDetector

        predictor = _predictor(("template", num_classes), lambda: TemplateDetector(num_classes), path)
        det = predictor.predict(c, sizes={int(k): float(v) for k, v in sizes.items()})
        method, classes = "template", None
    return {
        "method": method,
        "classes": classes,
        "boxes": det.boxes.round(2).tolist(),
        "rboxes": None if det.rboxes is None else det.rboxes.round(3).tolist(),
        "scores": det.scores.round(4).tolist(),
        "labels": det.labels.tolist(),
    }


def segment(path: str, model: str | None, box: list[float], clicks: list[list[float]]) -> dict:
    """Box-to-mask with corrective clicks ``[x, y, positive]``: the project's model, else
    GrabCut. With a model and its quality ranker, ``quality`` estimates the mask's IoU from
    the session: every click is a round of one click, so the features are the click count,
    the last click's distance to the previous mask's boundary and how much the mask
    changed (the previous mask is this box's last answer, or predicted again)."""
    from fewclick.io.rle import mask_to_rle, rle_boxes
    from fewclick.types import Clicks

    xy = np.asarray([c[:2] for c in clicks], np.float32).reshape(-1, 2)
    positive = np.asarray([bool(c[2]) for c in clicks], bool)
    c = Clicks(xy, np.zeros(len(xy), np.int64), positive)
    ranker = None
    if model is not None:
        from fewclick.predict.segment import MaskPredictor

        predictor = _predictor(("segment", model), lambda: MaskPredictor.load(model), path)
        ranker = _ranker(model)
        method = "model"
    else:
        from fewclick.predict.grabcut import GrabCutPredictor

        predictor = _predictor(("grabcut",), GrabCutPredictor, path)
        method = "grabcut"
    pred = predictor.predict(box, c)
    quality = None
    key = (path, model, tuple(round(float(v), 2) for v in box))
    if ranker is not None:
        from fewclick.quality.ranker import interaction_features

        previous = None
        if len(c):
            last = _LAST_MASKS.get(key)
            same = last is not None and last[0] == [list(map(float, k)) for k in clicks[:-1]]
            previous = last[1] if same else predictor.predict(box, c[:-1]).mask
        features = interaction_features(len(c), c[-1:] if len(c) else None, previous, pred.mask)
        quality = round(float(ranker.predict(features[None], [pred.score])[0]), 4)
    _LAST_MASKS[key] = ([list(map(float, k)) for k in clicks], pred.mask)
    while len(_LAST_MASKS) > 8:
        _LAST_MASKS.pop(next(iter(_LAST_MASKS)))
    rle = mask_to_rle(pred.mask)
    b = rle_boxes([rle])[0]
    return {
        "method": method,
        "mask": rle,
        "box": None if not np.isfinite(b).all() else b.tolist(),
        "score": float(pred.score),
        "quality": quality,
        "area": int(pred.mask.sum()),
    }


def _ranker(model: str):
    """The quality ranker trained with the mask model, or None."""
    key = ("ranker", model)
    if key not in _PREDICTORS:
        from fewclick.quality.ranker import QualityRanker
        from fewclick.server.training import RANKER_FILE

        file = Path(model) / RANKER_FILE
        _PREDICTORS[key] = QualityRanker.load(file) if file.is_file() else None
    return _PREDICTORS[key]


def snap(path: str, model: str | None, x: float, y: float, label: int, others: list[list[float]]) -> dict:
    """Where a points-mode click lands: CPR refinement when the project has a model."""
    if model is None:
        return {"method": "none", "point": [x, y]}
    from fewclick.predict.points import PointRefiner

    refiner = _predictor(("points", model), lambda: PointRefiner.load(model), path)
    pts = np.asarray([o[:2] for o in others], np.float32).reshape(-1, 2)
    labels = np.asarray([int(o[2]) for o in others], np.int64)
    sx, sy = refiner.snap(x, y, label, pts, labels)
    return {"method": "cpr", "point": [round(sx, 2), round(sy, 2)]}


def ping() -> int:
    return os.getpid()


def warm() -> int:
    """Import the models' code ahead of the first click (the spawn costs seconds)."""
    import fewclick.predict.detect  # noqa: F401
    import fewclick.predict.grabcut  # noqa: F401
    import fewclick.predict.segment  # noqa: F401
    import fewclick.predict.template  # noqa: F401

    return os.getpid()


def run_training(db_url: str, job_id: int, models_dir: str, minutes: float) -> None:
    """A training job, run in its own process (see :mod:`fewclick.server.training`)."""
    from fewclick.server import training

    try:
        training.train_project(db_url, job_id, Path(models_dir), minutes)
    except Exception as exc:  # the job row tells the user; the server goes on
        training.fail(db_url, job_id, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")
