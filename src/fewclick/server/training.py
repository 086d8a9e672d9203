"""Training a project's models on its finished images, as a background job.

A job trains, on the images whose status is ``done`` or ``reviewed``, every model their
annotations allow: the click detector (C3Det on the pretrained encoder's features or from
scratch, whichever scores better on held-out finished images: :func:`_detector`) when they
hold boxes, the box-to-mask models
(M_b, M_b+c) when they hold at least ``MIN_MASKS`` masks, and CPRNet when they hold at least
``MIN_POINTS`` points (refined from the clicks as made). Each model gets its share of the
budget, is written under ``<models>/<project>/<task>/v<N>/`` and registered as version N of
its task; the newest detector and point model serve from then on. With at least ten
finished masks the job ends by comparing the mask backends, whose best serves masks
(:mod:`fewclick.server.comparison`). Where the project holds reference annotations
(imported ground truth, hidden from the annotator), a new detector is scored without clicks
against them on up to ``REFERENCE_IMAGES`` images nobody has labeled yet (none of its
training images), and its version records that mAP with the boxes labeled so far: the
project page's curve of mAP against boxes labeled. Progress goes to the job row about
once a second.
Runs in its own process (:func:`fewclick.server.worker.run_training`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from fewclick.server.db import FINISHED, Image, Job, ModelVersion, Project, make_engine, now, session_factory

MIN_MASKS = 8
MIN_POINTS = 10
RANKER_INSTANCES = 300
RANKER_FILE = "ranker.pkl"
MIN_PICK_IMAGES = 2  # finished images before the detectors are compared on held-out ones
PICK_CLICKS = (1, 3, 5)  # the clicks at which the pick scores them
PRETRAINED_SECONDS = 60.0  # the pretrained detector's training, in seconds at the measured speed
REFERENCE_IMAGES = 20  # unlabeled images with reference annotations a new detector is scored on


@dataclass(frozen=True)
class Trained:
    """What a task's training made: the model's folder or file, how it was made (e.g.
    ``"pretrained"`` or ``"scratch"`` for the detector; None where there is one way) and
    what training measured (e.g. ``{"held_out_mAP": {"pretrained": 0.61, "scratch": 0.42}}``)."""

    path: Path
    method: str | None = None
    metrics: dict | None = None


def update_job(db_url: str, job_id: int, **values) -> None:
    """Set these fields of the job row; the first change to ``running`` stamps ``started_at``."""
    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        job = session.get(Job, job_id)
        for key, value in values.items():
            setattr(job, key, value)
        job.updated_at = now()
        if job.status == "running" and job.started_at is None:
            job.started_at = job.updated_at
        session.commit()
    engine.dispose()


def _plan(data) -> list[str]:
    """The tasks the finished images allow."""
    boxes = masks = points = 0
    for rec in data.images:
        o = rec.objects
        boxes += int(np.isfinite(o.boxes).all(1).sum())
        masks += sum(1 for s in (o.segmentations or []) if s is not None)
        points += 0 if o.points is None else int(np.isfinite(o.points).all(1).sum())
    tasks = ["detect"] if boxes else []
    if masks >= MIN_MASKS:
        tasks.append("segment")
    if points >= MIN_POINTS:
        tasks.append("points")
    return tasks


def train_project(
    db_url: str,
    job_id: int,
    models_dir: Path,
    minutes: float,
    steps: int | None = None,
    embeddings: str | None = None,
) -> None:
    """Run job ``job_id``; ``steps`` fixes every model's steps instead of the minutes (tests).
    With ``embeddings`` (the app's SAM embedding folder) and enough finished masks, the job
    ends by comparing the mask backends (:mod:`fewclick.server.comparison`)."""
    from fewclick.server.box_queue import partly_labeled
    from fewclick.server.comparison import too_few
    from fewclick.server.serving import finished_masks
    from fewclick.server.store import to_dataset

    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        job = session.get(Job, job_id)
        project = session.get(Project, job.project_id)
        images = session.scalars(
            select(Image).where(Image.project_id == project.id, Image.status.in_(FINISHED))
        ).all()
        data = to_dataset(project, images=images)
        data.images = [r for r in data.images if len(r.objects)]
        tasks = _plan(data)
        if not tasks:
            raise ValueError("no finished image with annotations yet: mark annotated images done, then train")
        versions = {
            task: (
                session.scalar(
                    select(func.max(ModelVersion.version)).where(
                        ModelVersion.project_id == project.id, ModelVersion.task == task
                    )
                )
                or 0
            )
            + 1
            for task in tasks
        }
        project_id, user_id = project.id, job.created_by
        compare = embeddings is not None and too_few(finished_masks(session, project.id)) is None
        partly = partly_labeled(session, project) if "detect" in tasks else []
        reference = _reference_images(session, project) if "detect" in tasks else None
    engine.dispose()
    share = minutes / len(tasks)
    parts = len(tasks) + compare
    done = []
    for i, task in enumerate(tasks):
        out = Path(models_dir) / str(project_id) / task / f"v{versions[task]}"
        message = f"training {task} v{versions[task]} on {len(data.images)} images ({i + 1} of {parts})"
        update_job(db_url, job_id, status="running", message=message, progress=i / parts)
        progress = _reporter(db_url, job_id, i, parts)
        detector = partial(_detector, embeddings=embeddings, project_id=project_id, partly=partly)
        segmenter = partial(_segmenter, embeddings=embeddings, project_id=project_id)
        trained = {"detect": detector, "segment": segmenter, "points": _cpr}[task](
            data, out, share, progress, steps
        )
        if task == "detect" and (partly or reference):
            extra = {"partly_labeled_images": len(partly)} if partly else {}
            if reference and trained.method in ("scratch", "pretrained", "imagenet"):
                update_job(db_url, job_id, message=f"scoring detect v{versions[task]} against the reference")
                extra.update(_reference_score(trained.path, reference, data.classes, embeddings, project_id))
            trained = replace(trained, metrics={**(trained.metrics or {}), **extra})
        engine = make_engine(db_url)
        with session_factory(engine)() as session:
            session.add(
                ModelVersion(
                    project_id=project_id,
                    task=task,
                    version=versions[task],
                    path=str(trained.path),
                    images=len(data.images),
                    method=trained.method,
                    metrics=trained.metrics,
                    created_by=user_id,
                )
            )
            session.commit()
        engine.dispose()
        done.append(f"{task} v{versions[task]}")
    message = f"trained {', '.join(done)} on {len(data.images)} images"
    if compare:
        from fewclick.server.comparison import compare as compare_backends

        summary = compare_backends(db_url, job_id, models_dir, embeddings, progress=(len(tasks) / parts, 1.0))
        message += f"; {summary}"
    update_job(db_url, job_id, status="done", progress=1.0, message=message)


@dataclass(frozen=True)
class Reference:
    """What a new detector is scored on: ``records`` (unlabeled images, their reference
    annotations as objects) and ``boxes_labeled``, every box a person labeled in the project
    when the job started (their own box annotations and the review queue's background
    answers)."""

    records: list
    boxes_labeled: int


def _reference_images(session, project: Project) -> Reference | None:
    """Up to :data:`REFERENCE_IMAGES` of the project's images that hold reference boxes and
    that nobody has labeled (not finished, no annotation of a person's, no answered box of
    the review queue), evenly spread by file name; None when there are none."""
    from fewclick.server.convert import to_objects
    from fewclick.server.db import Annotation, BoxQuery
    from fewclick.server.queries import USERS_WORK

    labeled = select(Annotation.image_id).where(Annotation.reference.is_(False))
    answered = select(BoxQuery.image_id).where(BoxQuery.status == "answered")
    with_reference = select(Annotation.image_id).where(Annotation.reference.is_(True))
    images = session.scalars(
        select(Image)
        .where(
            Image.project_id == project.id,
            Image.status.not_in(FINISHED),
            Image.id.in_(with_reference),
            Image.id.not_in(labeled),
            Image.id.not_in(answered),
        )
        .order_by(Image.file_name)
    ).all()
    if not images:
        return None
    step = max(len(images) / REFERENCE_IMAGES, 1.0)
    picked = [images[int(i * step)] for i in range(min(len(images), REFERENCE_IMAGES))]
    position_of = {c.id: c.position for c in project.classes}
    records = []
    for image in picked:
        anns = [a for a in image.annotations if a.reference and "box" in a.geometry]
        records.append((image.id, image.path, to_objects(anns, position_of, False)))
    boxes = session.scalar(
        select(func.count(Annotation.id))
        .join(Image, Image.id == Annotation.image_id)
        .where(Image.project_id == project.id, *USERS_WORK)
    )
    background = session.scalar(
        select(func.count(BoxQuery.id)).where(
            BoxQuery.project_id == project.id, BoxQuery.status == "answered", BoxQuery.answer == "background"
        )
    )
    return Reference(records, int(boxes or 0) + int(background or 0))


def _reference_score(model: Path, reference: Reference, classes, embeddings, project_id) -> dict:
    """mAP@0.5 of ``model`` without clicks on the reference images (VOC07, as everywhere)."""
    from fewclick.io.images import load_image
    from fewclick.metrics.detection import evaluate_detections
    from fewclick.predict.detect import ClickDetector
    from fewclick.server.serving import file_key

    detector = ClickDetector.load(model, encoder=_encoder(embeddings))
    gts, preds = [], []
    for image_id, path, objects in reference.records:
        detector.set_image(load_image(path), key=file_key(project_id, image_id, path))
        preds.append(detector.predict([]))
        gts.append(objects)
    result = evaluate_detections(gts, preds, len(classes))
    return {
        "reference_mAP": None if np.isnan(result.map) else round(float(result.map), 4),
        "reference_images": len(gts),
        "boxes_labeled": reference.boxes_labeled,
    }


def _reporter(db_url: str, job_id: int, index: int, count: int):
    last = [0.0]

    def progress(step: int, total: int | None) -> None:
        if total is None or time.monotonic() - last[0] < 1.0:
            return
        last[0] = time.monotonic()
        update_job(db_url, job_id, progress=round((index + step / total) / count, 4))

    return progress


def _detector(
    data,
    out: Path,
    minutes: float,
    progress,
    steps: int | None,
    embeddings: str | None = None,
    project_id: int | None = None,
    partly: list | None = None,
) -> Trained:
    """The click detector that serves best. With the pretrained encoder (``embeddings``: the
    app's cache folder, where the maps of annotated images already are) and at least
    ``MIN_PICK_IMAGES`` finished images, C3Det on pretrained features, C3Det from scratch and
    C3Det on ImageNet EfficientNet-Lite0 (when its weights are installed) train on all but the
    held-out images (every 4th, at least one) and run C3Det's protocol there (1, 3 and 5
    clicks, one session), as does the training-free start; the best then trains on every
    image and serves (the training-free start keeps serving when it wins), with all scores in
    its metrics. With fewer images the pretrained one serves untested; without the encoder,
    the ImageNet one (from scratch without its weights). The pretrained detector trains for
    ``PRETRAINED_SECONDS`` at most, the others for ``minutes``.
    ``partly``: records of images the review queue labeled in part (with loss weights,
    :func:`fewclick.server.box_queue.partly_labeled`); they train every detector and are
    never held out (not for an oriented detector: the queue's boxes are axis-aligned)."""
    from fewclick.train.detect import detector_config_for

    boxed = []
    for rec in data.images:  # the detector learns from boxes; points-mode objects are CPR's
        keep = np.isfinite(rec.objects.boxes).all(1)
        if keep.any():
            boxed.append(replace(rec, objects=rec.objects[keep]))
    subset = type(data)(data.classes, boxed, data.format)
    config = detector_config_for(subset, "c3det")
    partly = [] if config.oriented else list(partly or [])
    encoder = _encoder(embeddings)
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


def _encoder(folder: str | None):
    """The pretrained encoder caching in the app's ``folder``, or None without its files."""
    if folder is None:
        return None
    from fewclick.predict.encoder import ImageEncoder
    from fewclick.predict.pretrained import PretrainedModelError

    try:
        encoder = ImageEncoder(cache_dir=folder, threads=2)
    except (PretrainedModelError, FileNotFoundError):
        return None
    return encoder if encoder.has_features else None


def _phase(progress, index: int, count: int):
    """``progress`` for phase ``index`` of ``count`` equal phases."""

    def report(step: int, total: int | None) -> None:
        if total:
            progress(index * total + step, count * total)

    return report


def imagenet_available() -> bool:
    """Whether the ImageNet EfficientNet-Lite0 weights are installed and check out."""
    from fewclick.models.imagenet import ImageNetWeightsError, weights_file

    try:
        weights_file("lite0")
    except ImageNetWeightsError:
        return False
    return True


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
        key = _key(project_id, rec)
        tiles += [FeatureTile(*t) for t in training_tiles(encoder, load_image(rec.path), rec.objects, key)]
    cfg = detector_config_for(data, "c3det")
    config = pretrained_config(len(data.classes), cfg.oriented, cfg.points_only)
    train = PretrainedTrainConfig(steps=steps or steps_for_seconds(PRETRAINED_SECONDS))
    return train_pretrained_detector(tiles, data.classes, out, config, train, progress=progress)


def _key(project_id: int | None, rec) -> str | None:
    """The app's cache key of a finished image's encoding (None outside a project)."""
    from fewclick.server.serving import file_key

    return None if project_id is None else file_key(project_id, rec.id, rec.path)


class _Keyed:
    """A detector that sets each image under its cache key (the protocol knows only pixels)."""

    def __init__(self, predictor, keys: dict[int, str | None]) -> None:
        self.predictor, self.keys = predictor, keys
        self.config = getattr(predictor, "config", None)

    def set_image(self, image) -> None:
        self.predictor.set_image(image, key=self.keys.get(id(image)))

    def predict(self, clicks):
        return self.predictor.predict(clicks)


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
    keys = {id(image): _key(project_id, r) for (image, _), r in zip(items, held)}
    if model is None:
        from fewclick.predict.similar import SimilarityDetector

        predictor = _Keyed(SimilarityDetector(len(classes), encoder), keys)
    else:
        predictor = _Keyed(ClickDetector.load(model, encoder=encoder), keys)
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


def _segmenter(
    data,
    out: Path,
    minutes: float,
    progress,
    steps: int | None,
    embeddings: str | None = None,
    project_id: int | None = None,
) -> Trained:
    """M_b and M_b+c, then the mask-quality ranker on simulated sessions over the finished
    masks (one click per round, as the app re-predicts after every click; the annotator
    stops when no error is over 5% of the object). The finished masks are the models'
    training masks too, so its estimates lean high until more images are finished. With
    SAM's files, the app's ``embeddings`` and :data:`TUNE_MASKS` finished masks, half the
    time (at least :data:`TUNE_MINUTES`) goes to tuning SAM's decoder (:func:`_tune_sam`)."""
    from fewclick.predict.segment import MaskPredictor
    from fewclick.protocols.segment import RoundsConfig, run_rounds
    from fewclick.protocols.segment_run import InstanceItems
    from fewclick.quality.ranker import QualityRanker
    from fewclick.server.serving import sam_available
    from fewclick.train.segment import SegmentTrainConfig, train_segmenter

    progress(0, 1)
    tune = embeddings is not None and sam_available()
    masks = sum(1 for r in data.images for m in (r.objects.segmentations or []) if m is not None)
    if tune and masks < TUNE_MASKS:
        why = f"needs {TUNE_MASKS} finished masks, the project has {masks}"
        tune, metrics = False, {"sam_decoder": {"serves": False, "why": why}}
    else:
        metrics = None
    share = minutes / 2 if tune else minutes
    train_segmenter(data, out, train=SegmentTrainConfig(budget_minutes=share, steps=steps))
    sessions = run_rounds(
        MaskPredictor.load(out),
        InstanceItems(data),
        RoundsConfig(rounds=6, clicks_per_round=1, min_region_fraction=0.05, max_instances=RANKER_INSTANCES),
        progress=False,
    )
    if len(sessions.final_ious) >= MIN_MASKS:
        ranker = QualityRanker(with_score=True).fit(sessions.features, sessions.final_ious, sessions.scores)
        ranker.save(out / RANKER_FILE)
    if tune:  # at least TUNE_MINUTES: a job that starts by itself has 1 minute for every model
        tuning = _tune_sam(data, out, max(share, TUNE_MINUTES), steps, embeddings, project_id)
        metrics = {"sam_decoder": tuning}
    progress(1, 1)
    return Trained(out, metrics=metrics)


TUNE_MASKS = 10  # finished masks before SAM's decoder is tuned to the project
TUNE_MINUTES = 3.0  # SAM's decoder tunes at least this long (on one core, in the job's process)
TUNE_GAIN = 0.005  # the held-out mIoU (the SCORES, averaged) a tuned decoder must gain to serve
SCORES = ("box_mIoU", "clicks_mIoU", "click_mIoU")  # train.sam_decoder.score_decoder's
#: held-out masks before a tuned decoder may serve: a campaign's decoder kept on 3 (coco_tiny,
#: +0.24 box mIoU there) cost 15% more interactions on the next 10 images than the pretrained one
#: (docs/benchmarks/campaign.md, session 44)
MIN_HELD_OUT = 20
MAX_TUNE_MASKS = 2000  # masks read for tuning at most


def _tune_sam(data, out: Path, minutes: float, steps: int | None, embeddings: str, project_id) -> dict:
    """SAM's decoder fine-tuned on the finished masks of all but every 4th finished image,
    scored against the pretrained decoder on those held out (box alone, box and 2 clicks,
    one click alone). With fewer than :data:`MIN_HELD_OUT` held-out masks it never serves. It
    is written beside the mask model (``backends.TUNED_DECODER``) only when it gains more
    than :data:`TUNE_GAIN` there; what was measured is returned either way."""
    from fewclick.predict.encoder import ImageEncoder
    from fewclick.train.sam_decoder import examples_from

    records = sorted(data.images, key=lambda r: r.id)
    held = [r for i, r in enumerate(records) if i % 4 == 3]
    fit = [r for i, r in enumerate(records) if i % 4 != 3]
    encoder = ImageEncoder(cache_dir=embeddings, threads=1)

    def examples(recs: list) -> list:  # one image in memory at a time
        made = []
        for rec in recs:
            segs = rec.objects.segmentations or [None] * len(rec.objects)
            keep = ~np.asarray(rec.objects.ignore, bool) & np.array([s is not None for s in segs], bool)
            if not keep.any():  # boxes only: no mask to learn from
                continue
            image = rec.load_image()
            e = encoder.encode(image, key=_key(project_id, rec))
            masks = rec.objects[keep].masks(*image.shape[:2])
            encoded = (e.embedding, e.input_size)
            made += examples_from([(image, masks)], lambda _, got=encoded: got, MAX_TUNE_MASKS - len(made))
            if len(made) >= MAX_TUNE_MASKS:
                break
        return [x for x in made if (x.target > 0.5).any()]  # too small for SAM's 256 x 256 frame: left out

    try:
        return _tuned(examples(held), examples(fit), out, minutes, steps)
    except ValueError as exc:  # a template that is no SAM decoder, masks that leave nothing to learn
        return {"serves": False, "why": f"could not be tuned ({exc})"}


def _tuned(held_out: list, tuning: list, out: Path, minutes: float, steps: int | None) -> dict:
    """:func:`_tune_sam`'s tuning and scoring of the examples made."""
    from fewclick.models.sam_decoder import SamDecoder
    from fewclick.predict.backends import TUNED_DECODER
    from fewclick.predict.pretrained import default_model_files
    from fewclick.train.sam_decoder import TuneConfig, score_decoder, tune_decoder

    if not held_out or not tuning:
        return {
            "serves": False,
            "why": "needs finished masks on at least 4 finished images (1 in 4 held out)",
        }
    template = default_model_files()[1]
    frozen = score_decoder(SamDecoder.from_onnx(template), held_out)
    config = TuneConfig(steps=steps, budget_minutes=None if steps else minutes, threads=1)
    result = tune_decoder(SamDecoder.from_onnx(template), tuning, config)
    tuned = score_decoder(result.decoder, held_out)
    gain = float(np.mean([tuned[k] - frozen[k] for k in SCORES]))
    few = len(held_out) < MIN_HELD_OUT
    serves = bool(gain > TUNE_GAIN) and not few
    if serves:
        result.decoder.write_onnx(template, Path(out) / TUNED_DECODER)
    return {
        "serves": serves,
        **(
            {"why": f"was scored on {len(held_out)} held-out masks, too few to trust (needs {MIN_HELD_OUT})"}
            if few
            else {}
        ),
        "held_out_masks": len(held_out),
        "tuning_masks": len(tuning),
        "steps": result.steps,
        "seconds": round(result.seconds, 1),
        "pretrained": {k: round(frozen[k], 4) for k in SCORES},
        "tuned": {k: round(tuned[k], 4) for k in SCORES},
        "offsets": result.decoder.iou_offsets or {},
    }


def _cpr(data, out: Path, minutes: float, progress, steps: int | None) -> Trained:
    from fewclick.io.images import load_image
    from fewclick.train.cpr import CPRConfig, PointImage, train_cpr

    images = []
    for rec in data.images:
        o = rec.objects
        if o.points is None:
            continue
        keep = np.isfinite(o.points).all(1)
        original = o.extra.get("original")
        xy = original[keep] if original is not None else o.points[keep]
        images.append(PointImage(load_image(rec.path), xy, o.labels[keep]))
    progress(0, 1)
    path = train_cpr(images, data.classes, out, CPRConfig(budget_minutes=minutes, steps=steps))
    progress(1, 1)
    return Trained(path)


def serving_detector(session, project_id: int) -> ModelVersion | None:
    """The detector version that serves click-to-detect: the one the project's users pinned,
    else the newest. None: nothing trained yet, or the training-free start pinned."""
    pin = session.scalar(select(Project.pinned_detector).where(Project.id == project_id))
    if pin is None:
        return newest_model(session, project_id, "detect")
    if pin == 0:
        return None
    return session.scalar(
        select(ModelVersion).where(
            ModelVersion.project_id == project_id, ModelVersion.task == "detect", ModelVersion.version == pin
        )
    )


def trained_detector(session, project_id: int) -> ModelVersion | None:
    """The detector version that serves when it is a trained one; None while the
    training-free start serves (it is not a trained detector)."""
    version = serving_detector(session, project_id)
    return None if version is None or version.method == "training-free" else version


def newest_model(session, project_id: int, task: str) -> ModelVersion | None:
    return session.scalar(
        select(ModelVersion)
        .where(ModelVersion.project_id == project_id, ModelVersion.task == task)
        .order_by(ModelVersion.version.desc())
        .limit(1)
    )
