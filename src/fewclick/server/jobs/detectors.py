"""The click detector a project's training job makes (:mod:`fewclick.server.jobs.training`):
trained on the pretrained encoder's maps, on ImageNet's EfficientNet-Lite0 or from scratch,
and the training-free start, compared on held-out finished images (:func:`train_detectors`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from fewclick.server.serving import (
    Keyed,
    Trained,
    TrainingRun,
    imagenet_available,
    project_encoder,
    record_key,
)

MIN_PICK_IMAGES = 2  # finished images before the detectors are compared on held-out ones
PICK_CLICKS = (1, 3, 5)  # the clicks at which the pick scores them
PRETRAINED_SECONDS = 60.0  # the pretrained detector's training, in seconds at the measured speed


def train_detectors(run: TrainingRun, partly: list | None = None) -> Trained:
    """The click detector that serves best. With the pretrained encoder (``run.embeddings``: the
    app's cache folder, where the maps of annotated images already are) and at least
    ``MIN_PICK_IMAGES`` finished images, C3Det on pretrained features, C3Det from scratch and
    C3Det on ImageNet EfficientNet-Lite0 (when its weights are installed) train on all but the
    held-out images (every 4th, at least one) and run C3Det's protocol there (1, 3 and 5
    clicks, one session), as does the training-free start; the best then trains on every
    image and serves (the training-free start keeps serving when it wins), with all scores in
    its metrics. With fewer images the pretrained one serves untested; without the encoder,
    the ImageNet one (from scratch without its weights). The pretrained detector trains for
    ``PRETRAINED_SECONDS`` at most, the others for ``run.minutes``.
    ``partly``: records of images the review queue labeled in part (with loss weights,
    :func:`fewclick.server.jobs.queue.partly_labeled`); they train every detector and are
    never held out (not for an oriented detector: the queue's boxes are axis-aligned)."""
    from fewclick.train.detect import detector_config_for

    data, out, minutes, progress, steps, project_id = (
        run.data,
        run.out,
        run.minutes,
        run.progress,
        run.steps,
        run.project_id,
    )
    boxed = []
    for rec in data.images:  # the detector learns from boxes; points-mode objects are CPR's
        keep = np.isfinite(rec.objects.boxes).all(1)
        if keep.any():
            boxed.append(replace(rec, objects=rec.objects[keep]))
    subset = type(data)(data.classes, boxed, data.format)
    config = detector_config_for(subset, "c3det")
    partly = [] if config.oriented else list(partly or [])
    encoder = project_encoder(run.embeddings)
    everything = type(subset)(subset.classes, subset.images + partly, subset.format)
    own = "imagenet" if imagenet_available() else "scratch"  # the detector on the image itself
    if encoder is None or config.points_only:
        return Trained(_train_scratch(everything, out, minutes, progress, steps, own), own)
    if len(subset) < MIN_PICK_IMAGES:
        path = _train_pretrained(everything, out, encoder, progress, steps, project_id)
        note = f"fewer than {MIN_PICK_IMAGES} finished images: not compared with the from-scratch detector"
        return Trained(path, "pretrained", {"note": note})
    held = [r for i, r in enumerate(subset.images) if i % 4 == 3] or subset.images[-1:]
    rest = type(subset)(subset.classes, [r for r in subset.images if r not in held] + partly, subset.format)
    methods = ("pretrained", "scratch") + (("imagenet",) if own == "imagenet" else ())
    phases = len(methods) + 1
    scores, thresholds = {}, {}
    scores["training-free"], thresholds["training-free"] = _held_out(
        None, held, subset.classes, encoder, project_id
    )
    for i, method in enumerate(methods):
        folder = out / "pick" / method
        phase = _phase(progress, i, phases)
        if method == "pretrained":
            model = _train_pretrained(rest, folder, encoder, phase, steps, project_id)
        else:
            model = _train_scratch(rest, folder, minutes, phase, steps, method)
        scores[method], thresholds[method] = _held_out(model, held, subset.classes, encoder, project_id)
    chosen = max(scores, key=lambda m: (scores[m], m == "pretrained"))
    last = _phase(progress, len(methods), phases)
    if chosen == "pretrained":
        path = _train_pretrained(everything, out, encoder, last, steps, project_id)
    elif chosen in ("scratch", "imagenet"):
        path = _train_scratch(everything, out, minutes, last, steps, chosen)
    else:  # the training-free start scored best: it keeps serving, under this version
        out.mkdir(parents=True, exist_ok=True)
        path = out
    metrics = {
        "held_out_mAP": {m: round(v, 4) for m, v in scores.items()},
        "held_out_images": len(held),
        "clicks": list(PICK_CLICKS),
    }
    if thresholds[chosen] is not None:
        metrics["score_threshold"] = round(thresholds[chosen], 3)
    return Trained(path, chosen, metrics)


def _phase(progress, index: int, count: int):
    """``progress`` for phase ``index`` of ``count`` equal phases."""

    def report(step: int, total: int | None) -> None:
        if total:
            progress(index * total + step, count * total)

    return report


def _train_scratch(
    data, out: Path, minutes: float, progress, steps: int | None, backbone: str = "scratch"
) -> Path:
    """C3Det on the image itself: from scratch, or (``backbone="imagenet"``) from the
    ImageNet weights of EfficientNet-Lite0, fine-tuned end to end; ``minutes`` of training."""
    from fewclick.train.detect import TrainConfig, detector_config_for, train_detector

    return train_detector(
        data,
        out,
        detector_config_for(data, "c3det", backbone=backbone),
        TrainConfig(budget_minutes=minutes, steps=steps, input_scale="auto"),
        progress=progress,
    )


def _train_pretrained(data, out: Path, encoder, progress, steps: int | None, project_id: int | None) -> Path:
    """C3Det on the encoder's maps of ``data``'s images (cached under the app's keys)."""
    from fewclick.io.images import load_image
    from fewclick.predict.features import training_tiles
    from fewclick.train.detect import detector_config_for
    from fewclick.train.detect_pretrained import (
        FeatureTile,
        PretrainedTrainConfig,
        pretrained_config,
        steps_for_seconds,
        train_pretrained_detector,
    )

    tiles = []
    for rec in data.images:
        key = record_key(project_id, rec)
        tiles += [FeatureTile(*t) for t in training_tiles(encoder, load_image(rec.path), rec.objects, key)]
    cfg = detector_config_for(data, "c3det")
    config = pretrained_config(len(data.classes), cfg.oriented, cfg.points_only)
    train = PretrainedTrainConfig(steps=steps or steps_for_seconds(PRETRAINED_SECONDS))
    return train_pretrained_detector(tiles, data.classes, out, config, train, progress=progress)


def _held_out(
    model: Path | None, held, classes, encoder, project_id: int | None
) -> tuple[float, float | None]:
    """Mean mAP@0.5 over :data:`PICK_CLICKS` clicks of C3Det's protocol on ``held`` (with
    ``model`` None: the training-free start's), and the score threshold of the best F1 there
    (what the page then suggests for showing proposals)."""
    from fewclick.io.images import load_image
    from fewclick.predict.detect import ClickDetector
    from fewclick.protocols.detect import ProtocolConfig, run_protocol

    items = [(load_image(r.path), r.objects) for r in held]
    keys = {id(image): record_key(project_id, r) for (image, _), r in zip(items, held)}
    if model is None:
        from fewclick.predict.similar import SimilarityDetector

        predictor = Keyed(SimilarityDetector(len(classes), encoder), keys)
    else:
        predictor = Keyed(ClickDetector.load(model, encoder=encoder), keys)
    result = run_protocol(
        predictor,
        items,
        len(classes),
        ProtocolConfig(sessions=1, ks=PICK_CLICKS, f1_threshold=True),
        oriented=bool(getattr(predictor.config, "oriented", False)),
        points_only=bool(getattr(predictor.config, "points_only", False)),
        progress=False,
    )
    return float(np.mean(result.map_mean)), result.f1_threshold
