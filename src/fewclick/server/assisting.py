"""What the model-in-the-loop routes (:mod:`fewclick.server.routes.assist`) ask of the worker and
what they answer: a request's checks and the worker call it becomes (:func:`detect_call`),
the answer made from the worker's (:func:`detect_answer`), and what the worker learns from the
project's finished images on the side (:func:`finished_boxes`, :func:`held_out_boxes`).
Refusals raise :class:`~fewclick.server.errors.StoreError` (400) or
:class:`~fewclick.server.errors.Conflict` (409), which the app answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fewclick.active.continual import held_out
from fewclick.metrics.thresholds import NONE_SHOWN
from fewclick.server import model_files, serving, tiles, worker_detect, worker_masks, worker_pick
from fewclick.server.db import Image, ModelVersion
from fewclick.server.deps import Settings
from fewclick.server.errors import Conflict, StoreError, Unprocessable
from fewclick.server.serving import serving_detector
from fewclick.server.storage import annotations, rows
from fewclick.server.storage.versions import newest_model
from fewclick.wire.codec import ClassMap

#: the training-free start shows at most this many look-alikes per object of the fullest
#: finished image (issue 32: "never more than a few times the objects a finished image holds")
LOOK_ALIKES_PER_OBJECT = 3
#: the page's proposal slider before a detector suggests a score (pages/annotate.js)
PAGE_MIN_SCORE = 0.3
#: the newest finished images looked at for held-out ones (one in four is held out)
HELD_OUT_LOOKED_AT = 40
#: the images after the open one whose SAM proposals the worker makes ahead
PROPOSED_AHEAD = 3


def check_click(image: Image, x: float, y: float, what: str) -> None:
    """StoreError naming ``what`` (e.g. "click 2 at") unless (x, y) is on one of the image's
    pixels. Pixel (i, j) covers [i, i + 1) x [j, j + 1), so a click at x == width is
    outside a width-pixel image: the page's ``view.inside`` holds clicks to the same rule.
    (A point annotation's geometry may lie on the far edge: ``convert.check_geometry``.)"""
    if not (0 <= x < image.width and 0 <= y < image.height):
        raise StoreError(f"{what} ({x:g}, {y:g}) is outside the {image.width} x {image.height} image")


@dataclass(frozen=True)
class DetectCall:
    """A click-to-detect request made ready for the worker: ``args`` of
    :func:`fewclick.server.worker_detect.detect`, and what the answer needs of the request."""

    args: tuple
    classes: ClassMap
    names: list[str]
    version: ModelVersion | None
    model: ModelVersion | None
    limit: int | None
    ready_for_clicks: tuple | None  # worker_detect.ready_for_clicks' args, to run after the answer
    fallbacks: tuple[ModelVersion, ...] = ()  # answer, newest first, when ``model``'s file cannot
    models_dir: Path | None = None
    unreadable: ModelVersion | None = None  # nothing serves: the newest version found unreadable
    finished_ids: list = field(default_factory=list)  # per finished image: (image id, annotation ids)


def detect_call(session, config: Settings, image: Image, clicks_in, rejected_in=()) -> DetectCall:
    """Check the clicks ``(x, y, class id)`` and make the worker's call: the serving detector
    (a version whose pick was the training-free start has no network: that start serves), box
    sizes per class (they help SAM box a clicked object), the look-alikes' cap (only the
    training-free start's: a few times the objects a finished image holds), and the score
    from which the page's first proposals are made tight where SAM helps."""
    project = image.project
    classes = ClassMap(project.classes)
    clicks = []
    for i, (x, y, class_id) in enumerate(clicks_in):
        if class_id not in classes:
            raise StoreError(f"click {i}: class id {class_id} is not a class of this project")
        check_click(image, x, y, f"click {i} at")
        clicks.append([x, y, classes.position(class_id)])
    rejected = []
    for i, (*box, class_id) in enumerate(rejected_in):  # proposals rejected on the page
        if class_id not in classes:
            raise StoreError(f"rejected box {i}: class id {class_id} is not a class of this project")
        rejected.append([*box, classes.position(class_id)])
    made = serving.decision(session, project.id)  # what serves each class, read once
    version, model = made.version, made.model
    fallbacks = tuple(serving.fallback_detectors(session, project.id, model)) if model else ()
    sam = serving.sam_available()
    mixed = made.look_alikes if sam else ()
    learned = made.learner if sam else ()
    most = None if model else annotations.most_objects_finished(session, project.id)
    if (
        not clicks
        and model is None
        and not (proposes(session, image) and annotations.any_finished(session, project.id))
    ):
        raise StoreError(
            "detection without clicks needs a trained detector, or a finished image whose objects "
            "SAM's proposals are matched to: click an object, or finish an image"
        )
    sizes = annotations.class_sizes(session, project.id) if clicks or mixed or learned else {}
    finished, finished_ids = (
        _for_worker(project, annotations.finished_boxes(session, project.id))
        if sam and (clicks or model is None or mixed or learned)
        else (None, [])
    )
    limit = None if most is None else LOOK_ALIKES_PER_OBJECT * most
    names = [c.name for c in project.classes]
    thresholds = (version.metrics or {}) if model else {}
    tight_from = min(
        [t for t in thresholds.get("score_thresholds") or [] if t is not None]
        + [thresholds.get("score_threshold") or PAGE_MIN_SCORE]
    )
    args = (
        image.path,
        model.path if model else None,
        names,
        clicks,
        classes.by_position(sizes),
        sam_image(config, image) if sam else None,
        limit,
        finished,
        held_out_keys(session, project) if sam and model else None,
        tight_from,
        large_image(config, image),
        tuple(v.path for v in fallbacks),
        serving.same_classes([model, *fallbacks], project),
        tuple(map(tuple, rejected)),
        mixed,
        learned,
    )
    # the proposals on open: the first click's SAM set up meanwhile (a large image's windows
    # are encoded where the person clicks)
    later = (
        (image.path, sam_image(config, image), len(names))
        if sam and not clicks and not tiles.is_large(image.width, image.height)
        else None
    )
    unread = None if version is not None else serving.unreadable_detector(session, project.id)
    return DetectCall(
        args, classes, names, version, model, limit, later, fallbacks, config.models_dir, unread, finished_ids
    )


def detect_answer(call: DetectCall, result: dict) -> dict:
    """The worker's ``result`` as the route answers it: class ids for positions, the version
    that answered (``model_version``, with the file it was read from: ``model_file``) and
    its score thresholds, the version the project serves (``requested_version``), and when
    another answered, why (``fallback``): a file that cannot be read, or a detector of other
    classes, gives way to the versions before it, else to the training-free start."""
    classes = call.classes
    result.pop("classes")
    answered, failed = result.pop("model", None), result.pop("failed", [])
    by_path = _by_path(call)
    version = by_path.get(answered) if answered is not None else None
    if version is None and call.model is None:
        version = call.version  # a pinned training-free pick: it answers as itself
    project_id = call.version.project_id if call.version is not None else None
    result["model_file"] = model_files.wire_file(answered, call.models_dir, project_id or 0)
    result["requested_version"] = call.version.version if call.version else None
    result["fallback"] = _fallback(failed, by_path, version) if failed else None
    if call.unreadable is not None and not failed:  # passed over before the call: still say why
        why = model_files.unreadable(call.unreadable)
        said = f"detector v{call.unreadable.version} could not be read ({why})"
        result["fallback"] = f"{said}: {_who(None)} answered"
    model = version if version is not None and version.method != "training-free" else None
    result["fitted_classes"] = classes.ids(result.get("fitted_classes", []))
    result["tight_classes"] = classes.ids(result.get("tight_classes", []))
    result["model_version"] = version.version if version else None
    # the score threshold of the best F1 on the held-out finished images the pick ran on
    result["min_score"] = (version.metrics or {}).get("score_threshold") if version else None
    # per class, the score from which the background trainer's version left the least work
    # on the held-out finished images (until the slider is moved: then it holds for all)
    per_class = ((version.metrics or {}).get("score_thresholds") if model else None) or []
    # the sources beside the version (look-alikes, learner): class position -> their floor
    carried = result.pop("min_scores_carried", None)
    clicked = {int(c[2]) for c in call.args[3]}
    hidden = {p for p, t in enumerate(per_class) if t is not None and t >= NONE_SHOWN}
    hidden -= set(carried or {}) | clicked
    if model is not None and hidden:  # no source saved work on these: nothing of them is shown
        _drop_classes(result, hidden)
    if carried and model is not None:  # their classes show from their own floors
        floors = dict(enumerate(per_class))
        floors.update({int(p): t for p, t in carried.items()})
        per_class = [floors.get(p) for p in range(max(floors) + 1)]
    result["min_scores"] = classes.by_id(per_class) if per_class else None
    opened = result.pop("opened", None)
    if opened is not None:  # a click adds and never takes away what the image opened with
        _drop_classes(opened, hidden if model is not None else set())
        after = _kept_open(result, opened, per_class, result["min_score"], clicked)
        result["min_scores"] = classes.by_id(after)
    if carried and model is None:
        result["min_scores"] = classes.by_id([carried.get(p) for p in range(max(carried) + 1)])
    result["labels"] = classes.ids(result["labels"])
    result["look_alike_limit"] = call.limit
    if result.get("proposals"):  # the exemplars shown as thumbnails: which boxes they are
        result["proposals"]["exemplar_boxes"] = _exemplar_boxes(
            call, result["proposals"].pop("exemplar_rows", [])
        )
    return result


def _drop_classes(answer: dict, positions: set[int]) -> None:
    """``answer``'s boxes (labels: class positions) of the classes ``positions`` removed, in place."""
    from fewclick.wire.codec import answer_detections, detection_lists

    if positions:
        found = answer_detections(answer)
        answer.update(detection_lists(found[~np.isin(found.labels, list(positions))]))


def _kept_open(result: dict, opened: dict, per_class: list, min_score: float | None, clicked: set) -> list:
    """The worker's ``result`` (labels: class positions) with the boxes the page showed on
    open kept (:func:`~fewclick.predict.shown.keep_opened_boxes`), in place; the per-class
    scores after it, by class position."""
    import numpy as np

    from fewclick.predict.shown import keep_opened_boxes, slider_value

    def lists(d: dict) -> tuple:
        return (
            np.asarray(d["boxes"], np.float32).reshape(-1, 4),
            np.asarray(d["scores"], np.float32),
            np.asarray(d["labels"], np.int64),
        )

    least = {p: float(t) for p, t in enumerate(per_class) if t is not None}
    start = slider_value(min_score) if min_score is not None else PAGE_MIN_SCORE
    (boxes, scores, labels), after = keep_opened_boxes(lists(opened), lists(result), least, clicked, start)
    result.update(boxes=boxes.round(2).tolist(), scores=scores.round(4).tolist(), labels=labels.tolist())
    return [after.get(p) for p in range(max([*after, len(per_class) - 1], default=-1) + 1)]


def _exemplar_boxes(call: DetectCall, used: list) -> list[dict]:
    """The worker's exemplars ``[finished image index, row index, class position, box]`` as
    the page shows them: their annotation, image, class id and box."""
    out = []
    for entry, row, position, box in used:
        image_id, ids = call.finished_ids[entry]
        class_id = call.classes.ids([position])[0]
        out.append({"annotation_id": ids[row], "image_id": image_id, "class_id": class_id, "box": box})
    return out


NOT_LARGE = (
    "the look-alikes sweep is for large images (read by regions); a click on this image detects it whole"
)
NO_ENCODER = "the look-alikes sweep needs the pretrained encoder: run `make models` (see the README)"


def sweep_call(session, config: Settings, image: Image, clicks_in, view) -> tuple[tuple, ClassMap]:
    """:func:`fewclick.server.worker_sweep.start_sweep`'s arguments for sweeping the large
    ``image`` with the clicks ``(x, y, class id)`` (checked as :func:`detect_call` does) and
    the ``view`` (x0, y0, x1, y1, clipped to the image), and the class map to answer with.
    StoreError for an image that is not large, without the encoder, or a view off the image."""
    if not tiles.is_large(image.width, image.height):
        raise StoreError(NOT_LARGE)
    call = detect_call(session, config, image, clicks_in)
    path, model, names, clicks, sizes, encoding, limit, finished, _, floor, large, _, same_ids, *_ = call.args
    if encoding is None:
        raise StoreError(NO_ENCODER)
    if view is not None:
        x0, y0, x1, y1 = view
        x0, x1 = max(0.0, x0), min(float(image.width), x1)
        y0, y1 = max(0.0, y0), min(float(image.height), y1)
        if not (x0 < x1 and y0 < y1):
            raise StoreError(f"view {list(view)} does not meet the {image.width} x {image.height} image")
        view = [x0, y0, x1, y1]
    floor = floor if model else 0.0  # a trained detector's: the lowest score the page shows unasked
    args = (large, model, names, clicks, sizes, encoding, limit, finished, view, floor, model in same_ids)
    return args, call.classes


def learning_calls(session, config: Settings, project) -> list[tuple]:
    """The worker calls ``(fn, *args)`` that learn, while a person looks at an image, from the
    project's finished images: SAM's click boxes against the person's boxes, and (with a
    trained detector) whether SAM makes its proposals tighter. None without SAM's files."""
    if not serving.sam_available():
        return []
    sizes = ClassMap(project.classes).by_position(annotations.class_sizes(session, project.id))
    folder, count = str(config.embeddings), len(project.classes)
    calls = [(worker_detect.learn_click_boxes, folder, count, sizes, finished_boxes(session, project))]
    if serving.serving(session, project).name == "sam":  # the pretrained SAM: its mask choice
        calls.append((worker_pick.learn, folder, project.id, finished_masks(session, project)))
    version = serving_detector(session, project.id)
    if version is not None and version.method != "training-free":
        calls.append(
            (worker_detect.learn_tight_boxes, folder, version.path, count, held_out_boxes(session, project))
        )
    return calls


def sam_needs(session, image: Image) -> dict:
    """What ``prepare`` answers before any encoding: whether SAM serves this image, and the
    project's mask backend and who chose it."""
    backend = serving.serving(session, image.project)
    return {"needs_sam": needs_sam(session, image), "backend": backend.name, "chosen_by": backend.chosen_by}


def encoding_items(config: Settings, image: Image) -> tuple[str, list[tuple[str, str]]]:
    """``(embedding folder, [(key, path), ...])``: the image, and the project's next image
    after it when its file is there and it is not large (encoded ahead of the person)."""
    folder, key = sam_image(config, image)
    items = [(key, image.path)]
    following = next_image(image)
    if (
        following is not None
        and Path(following.path).is_file()
        and not tiles.is_large(following.width, following.height)
    ):
        items.append((sam_image(config, following)[1], following.path))
    return folder, items


def proposal_items(config: Settings, image: Image) -> list[tuple[str, str]]:
    """``[(key, path), ...]`` whose SAM proposals the worker makes ahead: the image, then the
    project's next :data:`PROPOSED_AHEAD` images, those that are there and not large (an
    image of many windows takes minutes: the queue's next few are made while the person
    works on this one)."""
    items = [(sam_image(config, image)[1], image.path)]
    siblings = image.project.images
    at = siblings.index(image)
    for following in siblings[at + 1 : at + 1 + PROPOSED_AHEAD]:
        if Path(following.path).is_file() and not tiles.is_large(following.width, following.height):
            items.append((sam_image(config, following)[1], following.path))
    return items


def proposes(session, image: Image) -> bool:
    """Whether the worker makes the image's SAM proposals ahead of the click
    (:mod:`fewclick.server.worker_proposals`): while the training-free start serves
    click-to-detect, or the look-alikes or the fast learner serve some classes beside a
    trained version (:attr:`~fewclick.server.serving.Decision.proposes`), for an
    image that is not large (a large one is swept by windows)."""
    if not serving.sam_available() or tiles.is_large(image.width, image.height):
        return False
    return serving.decision(session, image.project_id).proposes


def check_encoding(image: Image, state: str | None) -> None:
    """Refuse when encoding ``image`` failed (``state`` is None when done, "encoding" while
    it runs): Conflict when the pretrained files are gone (the set-up's fix), else
    Unprocessable (the image itself cannot be read)."""
    if state in (None, "encoding"):
        return
    error = Conflict if state.startswith("PretrainedModelError") else Unprocessable
    raise error(f"encoding image {image.file_name!r} failed: {state}")


def finished_boxes(session, project) -> list:
    """The user's boxes on the recently finished images as the worker learns SAM's click boxes
    against them (:func:`fewclick.server.worker_detect.learn_click_boxes`): classes by position."""
    return _for_worker(project, annotations.finished_boxes(session, project.id))[0]


def finished_masks(session, project) -> list:
    """``[[embedding key, path, [RLE, ...]], ...]``: the user's masks on the newest finished
    images (:func:`fewclick.server.worker_pick.learn`)."""
    return [
        [serving.embedding_key(image), image.path, masks]
        for image, masks in annotations.finished_masks(session, project.id)
    ]


def held_out_boxes(session, project) -> list:
    """The user's boxes on the recently finished images the serving detector never trained on
    (finished after its round began: its version names the images it trained on; a version
    from before issue 68, the ones the trainer held out then), as the worker learns on them
    whether SAM makes its proposals tighter (:func:`fewclick.server.worker_detect.learn_tight_boxes`)."""
    held = _held_out_images(session, project)
    return _for_worker(project, [(image, annotations.user_box_rows(session, image)) for image in held])[0]


def held_out_keys(session, project) -> list[str]:
    """The embedding keys of :func:`held_out_boxes`' images (one query: a click's budget)."""
    return [serving.embedding_key(image) for image in _held_out_images(session, project)]


def _held_out_images(session, project) -> list[Image]:
    """The ones the serving detector never trained on among the project's newest finished
    images with boxes (:func:`held_out_boxes`)."""
    newest = annotations.newest_finished(session, project.id, HELD_OUT_LOOKED_AT)
    version = serving_detector(session, project.id)
    trained = None if version is None else (version.metrics or {}).get("trained_ids")
    if trained is None:
        return [image for image in newest if held_out(image.id)]
    seen = set(trained)
    return [image for image in newest if image.id not in seen]


def _for_worker(project, finished: list) -> tuple[list, list]:
    """``[embedding key, path, [[class position, x0, y0, x1, y1], ...], [the indices of the
    boxes removed from the exemplars]]`` per finished image (``(image, user_box_rows)``), and
    per such image ``(image id, [each box's annotation id])``."""
    classes = ClassMap(project.classes)
    out, ids = [], []
    for image, boxes in finished:
        if Path(image.path).is_file():  # a file gone since: nothing to learn from it
            at = [[classes.position(c), *b] for _, _, (c, *b) in boxes]
            removed = [k for k, (_, exemplar, _) in enumerate(boxes) if not exemplar]
            out.append([serving.embedding_key(image), image.path, at, removed])
            ids.append((image.id, [i for i, _, _ in boxes]))
    return out, ids


def _by_path(call: DetectCall) -> dict[str, ModelVersion]:
    """The call's detector versions by file, the first (the serving one) where two share one."""
    out: dict[str, ModelVersion] = {}
    for v in (call.model, *call.fallbacks):
        if v is not None:
            out.setdefault(v.path, v)
    return out


def _fallback(failed: list, by_path: dict, answered: ModelVersion | None) -> str:
    """What the page says when the serving detector did not answer: which versions could
    not, why, and which answered."""
    passed = "; ".join(f"detector v{by_path[f].version} {_why(why, kind)}" for f, why, kind in failed)
    return f"{passed}: {_who(answered)} answered"


def _who(answered: ModelVersion | None) -> str:
    return f"detector v{answered.version}" if answered is not None else "the training-free start"


def _why(why: str, kind: str) -> str:
    if kind == "classes":
        return f"was {why}: train again to detect with it"
    return f"could not be read: {why}"


def note_failures(session, call: DetectCall, failed: list) -> None:
    """Mark the versions whose file could not be read (:func:`fewclick.server.model_files.mark_unreadable`),
    so the next request and the project page pass them over; committed."""
    by_path = _by_path(call)
    marked = False
    for path, why, kind in failed:
        version = rows.find(session, ModelVersion, by_path[path].id) if path in by_path else None
        if kind == "unreadable" and version is not None:
            session.refresh(version)  # a collection may have marked it meanwhile
            model_files.mark_unreadable(version, why)
            marked = True
    if marked:
        session.commit()


def large_image(config: Settings, image: Image) -> tuple[str, str, int, int] | None:
    """For an image served as tiles, what the worker reads its windows by (``(file read by
    regions, embedding key, width, height)``, :func:`fewclick.server.worker_masks.segment`);
    None for an image read whole. Conflict while its pyramid is still being made."""
    if not tiles.is_large(image.width, image.height):
        return None
    source = tiles.region_file(config.tile_cache, image.id, image.path)
    if source is None:
        raise Conflict(
            f"image {image.file_name!r} is still being converted for reading by regions: "
            "try again when its tiles are shown"
        )
    return source, serving.embedding_key(image), image.width, image.height


def sam_image(config: Settings, image: Image) -> tuple[str, str]:
    """Where the worker finds (or puts) the image's SAM embedding: (folder, key)."""
    return str(config.embeddings), serving.embedding_key(image)


def next_image(image: Image) -> Image | None:
    siblings = image.project.images
    i = siblings.index(image)
    return siblings[i + 1] if i + 1 < len(siblings) else None


def needs_sam(session, image: Image) -> bool:
    """Whether the pretrained encoder serves this image: SAM's masks or point snapping, or
    click-to-detect (the training-free start, or a detector on pretrained features)."""
    if not serving.sam_available():
        return False
    if serving.serving(session, image.project).name in worker_masks.SAMS:
        return True
    detector = serving_detector(session, image.project_id)
    if detector is None or detector.method not in ("scratch", "imagenet"):
        return True
    return newest_model(session, image.project_id, "points") is None
