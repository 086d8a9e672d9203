"""Project operations on a database session: create from a folder or a dataset, add an
uploaded image, change annotations under an image revision, export and import.

Errors a user can cause raise :class:`StoreError` (or a subclass) with a message that says
what is wrong; the app turns them into 4xx responses. Nothing is written unless the whole
operation succeeds (the caller commits).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import numpy as np
from sqlalchemy import case, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session
from sqlalchemy.orm.attributes import set_committed_value

from fewclick.io import read_dataset, write_dataset
from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.images import IMAGE_SUFFIXES, ImageError, image_size, load_image
from fewclick.io.rle import mask_to_rle, rle_boxes, rle_to_mask
from fewclick.io.voc import image_depth
from fewclick.server import accounts
from fewclick.server.convert import GeometryError, check_geometry, colour, from_objects, to_objects
from fewclick.server.db import (
    FINISHED,
    IMAGE_STATUSES,
    REVIEW_STATES,
    Annotation,
    Event,
    Image,
    Job,
    ModelVersion,
    Project,
    ProjectClass,
    User,
    now,
)
from fewclick.server.errors import Conflict, Forbidden, NotFound, StoreError, TooLarge, shown
from fewclick.server.names import FileNameError, export_problem, upload_name
from fewclick.server.queries import annotated_unfinished, running_job
from fewclick.server.tiles import check_size

MAX_AUTO_TRAIN_EVERY = 1000
MAX_ID = 2**31 - 1  # the largest row id or revision every database holds (PostgreSQL's INTEGER)
MAX_FOLDER_IMAGES = 10_000  # image files in a project made from a folder
# pixels of an uploaded image: checking that it decodes whole takes about 7 bytes a pixel
MAX_UPLOAD_PIXELS = 50_000_000
# (status, new status) -> the action (accounts.MAY says whose) that moves an image so:
# annotators finish images; reviewers review finished ones, or send them back to work
MOVES = {
    ("new", "done"): "annotate",
    ("in_progress", "done"): "annotate",
    ("done", "reviewed"): "review",
    ("done", "in_progress"): "review",
    ("reviewed", "in_progress"): "review",
}


def get(session: Session, model, key: int, what: str):
    """The row of ``model`` with id ``key``, or NotFound naming ``what`` (an id beyond any
    the database can hold included)."""
    row = session.get(model, key) if 0 < key <= MAX_ID else None
    if row is None:
        raise NotFound(f"no {what} with id {key}")
    return row


def create_project(
    session: Session,
    user: User,
    name: str,
    folder: str | Path | None = None,
    dataset: str | Path | None = None,
    format: str | None = None,
    classes: Sequence[str] = (),
    reference: bool = False,
    check: Callable[[Dataset], None] | None = None,
) -> tuple[Project, list[str]]:
    """A project from a folder of images (at most ``MAX_FOLDER_IMAGES``) or from a dataset
    in any readable format (its annotations imported; as reference annotations with
    ``reference``), once ``check`` accepts it. Returns the project and warnings (files
    skipped, and why)."""
    name = name.strip()
    if not name:
        raise StoreError("a project needs a name")
    if session.scalar(select(Project).where(Project.name == name)) is not None:
        raise Conflict(f"a project named {name!r} exists already")
    if (folder is None) == (dataset is None):
        raise StoreError("give either a folder of images or a dataset to import, not both or neither")
    project = Project(name=name, created_by=user.id, source=str(folder or dataset))
    session.add(project)
    warnings: list[str] = []
    if folder is not None:
        root = Path(folder).expanduser()
        if not root.is_dir():
            raise StoreError(f"{root}: no such folder")
        set_classes(session, project, classes or ["object"])
        for path in _image_files(root):
            try:
                width, height = image_size(path)
                check_size(width, height)
            except ValueError as exc:  # ImageError too
                warnings.append(f"skipped {path.relative_to(root)}: {exc}")
                continue
            session.add(
                Image(
                    project=project,
                    file_name=path.relative_to(root).as_posix(),
                    path=str(path.resolve()),
                    width=width,
                    height=height,
                    updated_by=user.id,
                )
            )
        if not project.images:
            raise StoreError(f"{root}: no readable images (looked for {', '.join(IMAGE_SUFFIXES)})")
    else:
        data = read_import(dataset, format)
        if check is not None:
            check(data)
        set_classes(session, project, data.classes)
        project.oriented = _oriented(data)
        warnings += import_annotations(session, user, project, data, reference=reference, add_images=True)
    session.flush()
    return project, warnings


def _image_files(root: Path) -> list[Path]:
    """The image files under ``root``, sorted; links to folders are not followed, links to
    files outside ``root`` are left out; more than ``MAX_FOLDER_IMAGES`` is refused."""
    inside = root.resolve()
    files = []
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
                continue
            if path.resolve().is_relative_to(inside):
                files.append(path)
                if len(files) > MAX_FOLDER_IMAGES:
                    raise StoreError(
                        f"{root} holds more than {MAX_FOLDER_IMAGES:,} image files, the limit for a project "
                        "from a folder: make projects from its sub-folders"
                    )
    return sorted(files)


def read_import(path: str | Path, format: str | None) -> Dataset:
    try:
        return read_dataset(Path(path).expanduser(), format)
    except FileNotFoundError as exc:
        raise StoreError(str(exc)) from None
    except (ValueError, KeyError, TypeError) as exc:  # FormatError is a ValueError
        raise StoreError(f"cannot import {path}: {exc}") from None


def _oriented(data: Dataset) -> bool:
    return any(rec.objects.rboxes is not None and len(rec.objects) for rec in data.images)


def set_classes(session: Session, project: Project, names: Sequence[str]) -> None:
    """Give the project these classes (appended to the ones it has; names stay unique)."""
    have = {c.name for c in project.classes}
    for name in names:
        if name in have:
            continue
        position = len(project.classes)
        project.classes.append(
            ProjectClass(
                name=name,
                color=colour(position),
                key=position + 1 if position < 9 else None,
                position=position,
            )
        )
        have.add(name)
    session.flush()


def _set_isthing(project: Project, data: Dataset) -> None:
    """Mark the project's classes the dataset names things or stuff as its
    ``extra["isthing"]`` (one flag per class, from COCO panoptic) says; without it the
    classes stay as they are."""
    flags = data.extra.get("isthing")
    if flags is None:
        return
    if len(flags) != len(data.classes):
        raise StoreError(
            f"expected one isthing flag per class ({len(data.classes)}) in the dataset, got {len(flags)}"
        )
    by_name = {c.name: c for c in project.classes}
    for name, flag in zip(data.classes, flags, strict=True):
        by_name[name].isthing = bool(flag)


def _by_base_name(images) -> dict[str, Image]:
    """The images whose base name no other image of the project shares: a dataset whose
    names carry a folder (``images/a.png``) matches a project made from that folder."""
    named = [(PurePosixPath(im.file_name).name, im) for im in images]
    count = Counter(name for name, _ in named)
    return {name: im for name, im in named if count[name] == 1}


def import_annotations(
    session: Session,
    user: User,
    project: Project,
    data: Dataset,
    reference: bool = False,
    add_images: bool = False,
    source: str = "import",
) -> list[str]:
    """Add a dataset's objects to the project's images (matched by file name; with
    ``add_images`` unknown images are added, else skipped with a warning), each with its
    score when the file gave one (predictions: the review mode sorts them by it). Its classes are
    added to the project's, and marked things or stuff when the dataset says which
    (``extra["isthing"]``, as COCO panoptic's reader gives it). ``source`` says where the
    annotations came from: ``import``, or ``preannotate`` for a detector's pre-annotation."""
    set_classes(session, project, data.classes)
    _set_isthing(project, data)
    project.oriented = project.oriented or _oriented(data)  # oriented boxes make an oriented project
    class_ids = {c.name: c for c in project.classes}
    by_name = {im.file_name: im for im in project.images}
    by_base = _by_base_name(project.images)
    warnings = []
    for rec in data.images:
        image = by_name.get(rec.file_name) or by_base.get(PurePosixPath(rec.file_name).name)
        if image is None:
            if not add_images:
                warnings.append(f"skipped {rec.file_name}: not an image of this project")
                continue
            if rec.path is None or not Path(rec.path).is_file():
                warnings.append(f"skipped {rec.file_name}: its image file is missing")
                continue
            image = Image(
                project=project,
                file_name=rec.file_name,
                path=str(Path(rec.path).resolve()),
                width=rec.width,
                height=rec.height,
                updated_by=user.id,
            )
            session.add(image)
            by_name[rec.file_name] = image
        objs = rec.objects
        scores = objs.extra.get("scores")
        crowd = int(objs.ignore.sum())
        if crowd:
            warnings.append(f"{rec.file_name}: {crowd} crowd region(s) not imported (no crowd flag here)")
        for i in range(len(objs)):
            if objs.ignore[i]:
                continue
            try:
                kind, geometry = from_objects(objs, i, image.height, image.width)
                geometry = check_geometry(kind, geometry, image.width, image.height)
            except (GeometryError, ValueError) as exc:
                warnings.append(f"{rec.file_name}: object {i} skipped: {exc}")
                continue
            image.annotations.append(
                Annotation(
                    class_id=class_ids[data.classes[objs.labels[i]]].id,
                    kind=kind,
                    geometry=geometry,
                    source=source,
                    reference=reference,
                    score=_score(scores, i),
                    created_by=user.id,
                    updated_by=user.id,
                )
            )
        if len(objs) and not reference:
            image.status = "in_progress"
    session.flush()
    return warnings


def _score(scores: np.ndarray | None, i: int) -> float | None:
    """Object ``i``'s imported score (to 6 decimals: float32 noise is not kept), or None."""
    return None if scores is None or not np.isfinite(scores[i]) else round(float(scores[i]), 6)


def add_upload(
    session: Session, user: User, project: Project, name: str, content: BinaryIO, folder: Path
) -> Image:
    """Save an uploaded file (read from ``content`` in chunks) into ``folder`` and add it as
    an image under its own base name (:func:`~fewclick.server.names.upload_name`); a
    non-image, a truncated image, one over the pixel limit or outside the tile
    limits is refused and nothing is kept."""
    try:
        safe = upload_name(name)
    except FileNameError as exc:
        raise StoreError(str(exc)) from None
    if Path(safe).suffix.lower() not in IMAGE_SUFFIXES:
        raise StoreError(f"{shown(name)} is not an image file ({', '.join(IMAGE_SUFFIXES)})")
    if any(im.file_name == safe for im in project.images):
        raise Conflict(f"the project has an image named {safe!r} already")
    twin = next((im.file_name for im in project.images if _stem(im.file_name) == _stem(safe)), None)
    if twin is not None:
        raise Conflict(
            f"the project has an image {twin!r} already, and {safe!r} would share its files in "
            f"exports ({_stem(safe)}.xml, labels/{_stem(safe)}.txt, ...): rename it"
        )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / safe
    # a name of its own: two uploads of one name at once write two files
    fd, partial = tempfile.mkstemp(suffix=".part", prefix=f".{safe}.", dir=folder)
    partial = Path(partial)
    with open(fd, "wb") as out:
        shutil.copyfileobj(content, out)
    try:
        width, height = image_size(partial)  # from the header, before any pixel is decoded
        _check_upload_pixels(safe, width, height)
        check_size(width, height)
        load_image(partial)  # decodes every pixel: a truncated file fails here
    except TooLarge:
        partial.unlink(missing_ok=True)
        raise
    except ImageError as exc:
        partial.unlink(missing_ok=True)
        message = str(exc).replace(str(partial), safe)
        raise (TooLarge if "pixel" in message and "limit" in message else StoreError)(message) from None
    except ValueError as exc:
        partial.unlink(missing_ok=True)
        raise StoreError(f"{safe}: {exc}") from None
    image = Image(
        project=project,
        file_name=safe,
        path=str(path.resolve()),
        width=width,
        height=height,
        updated_by=user.id,
    )
    try:  # the row first: an upload of the same name that got in meanwhile keeps its file
        with session.begin_nested():
            session.add(image)
            session.flush()
    except IntegrityError:
        partial.unlink(missing_ok=True)
        raise Conflict(f"the project has an image named {safe!r} already") from None
    partial.replace(path)
    return image


def _stem(file_name: str) -> str:
    """The name an image's files get in exports that name them by stem (VOC, DOTA, YOLO, ...)."""
    return PurePosixPath(file_name.replace("\\", "/")).stem


def _check_upload_pixels(name: str, width: int, height: int) -> None:
    """TooLarge (413) naming :data:`MAX_UPLOAD_PIXELS` when an upload has more pixels."""
    if width * height > MAX_UPLOAD_PIXELS:
        raise TooLarge(
            f"{name}: {width} x {height} = {width * height:,} pixels is over the upload limit of "
            f"{MAX_UPLOAD_PIXELS:,} pixels (make a project from a folder on the server for larger images)"
        )


def claim_revision(session: Session, image: Image, seen: int, user: User) -> int:
    """Move the image from revision ``seen`` to the next in one conditional UPDATE, before
    the change it stands for is written: of two writes made on one revision the database
    lets exactly one through, and the other (or a write on an older view: another tab
    changed the image since) gets Conflict. Marks a new image in progress; returns the
    new revision (the one the change is saved under, whatever other writes come after)."""
    claimed = session.execute(
        update(Image)
        .where(Image.id == image.id, Image.revision == seen)
        .values(
            revision=Image.revision + 1,
            updated_at=now(),
            updated_by=user.id,
            status=case((Image.status == "new", "in_progress"), else_=Image.status),
        )
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        current = session.scalar(select(Image.revision).where(Image.id == image.id))
        raise Conflict(
            f"image {image.file_name!r} was changed elsewhere (revision {current}, this view has "
            f"{seen}): reload it; nothing was overwritten"
        )
    set_committed_value(image, "revision", seen + 1)
    session.expire(image, ["updated_at", "updated_by", "status"])
    return seen + 1


def class_of(project: Project, class_id: int) -> ProjectClass:
    for c in project.classes:
        if c.id == class_id:
            return c
    raise StoreError(f"class id {class_id} is not a class of project {project.name!r}")


def add_annotation(session: Session, user: User, image: Image, data: dict) -> Annotation:
    project = image.project
    cls = class_of(project, data.get("class_id"))
    kind = data.get("kind", "box")
    try:
        geometry = check_geometry(kind, data.get("geometry") or {}, image.width, image.height)
    except GeometryError as exc:
        raise StoreError(str(exc)) from None
    ann = Annotation(
        class_id=cls.id,
        kind=kind,
        geometry=geometry,
        score=data.get("score"),
        quality=data.get("quality"),
        source=data.get("source", "manual"),
        backend=data.get("backend"),
        created_by=user.id,
        updated_by=user.id,
    )
    ann.image = image  # the backref does not load the image's other annotations to add this one
    session.add(ann)
    session.flush()
    return ann


def update_annotation(session: Session, user: User, ann: Annotation, data: dict) -> Annotation:
    image = ann.image
    if "class_id" in data:
        ann.class_id = class_of(image.project, data["class_id"]).id
    if "geometry" in data:
        kind = data.get("kind", ann.kind)
        try:
            ann.geometry = check_geometry(kind, data["geometry"], image.width, image.height)
        except GeometryError as exc:
            raise StoreError(str(exc)) from None
        ann.kind = kind
    if "review" in data:
        if data["review"] not in REVIEW_STATES:
            raise StoreError(f"review must be one of {REVIEW_STATES}, got {data['review']!r}")
        ann.review = data["review"]
    for key in ("score", "quality"):
        if key in data:
            setattr(ann, key, data[key])
    ann.updated_at = now()
    ann.updated_by = user.id
    session.flush()
    return ann


def delete_annotations(session: Session, image: Image, ids: Sequence[int]) -> None:
    """Delete these annotations of the image; an id that is not one of them refuses all."""
    for ann_id in ids:
        ann = session.get(Annotation, ann_id)
        if ann is None or ann.image_id != image.id:
            raise NotFound(f"no annotation {ann_id} on image {image.file_name!r}")
        session.delete(ann)


def set_auto_train(project: Project, every: object) -> None:
    """Train by itself after every ``every`` newly finished images (0: never)."""
    project.auto_train_every = _interval("auto_train_every", every)


def set_queue_train(project: Project, every: object) -> None:
    """Train by itself after every ``every`` answers of the review queue (0: never)."""
    project.queue_train_every = _interval("queue_train_every", every)


def set_pinned_detector(project: Project, version: object) -> None:
    """Serve this detector version to everyone, whatever is trained after it (0: the
    training-free start; None: the newest, as versions come)."""
    if version is not None and (type(version) is not int or version < 0):
        raise StoreError(
            "pinned_detector must be a detector version, 0 (the training-free start) or null "
            f"(the newest serves), got {version!r}"
        )
    if version:
        versions = (
            object_session(project)
            .scalars(
                select(ModelVersion.version).where(
                    ModelVersion.project_id == project.id, ModelVersion.task == "detect"
                )
            )
            .all()
        )
        if version not in versions:
            has = ", ".join(f"v{v}" for v in sorted(versions)) or "none yet"
            raise StoreError(f"project {project.name!r} has no detector v{version} (its versions: {has})")
    project.pinned_detector = version


def _interval(name: str, every: object) -> int:
    if type(every) is not int or not 0 <= every <= MAX_AUTO_TRAIN_EVERY:
        raise StoreError(f"{name} must be an integer from 0 to {MAX_AUTO_TRAIN_EVERY}, got {every!r}")
    return every


def finish_annotated(session: Session, user: User, role: str, project: Project, status: str) -> int:
    """Set ``status`` (done, or reviewed: done, then reviewed) on every image of the project
    that holds the user's annotations and is not finished yet, as ``user`` acting with
    ``role`` (who may make each move is :data:`MOVES`); returns how many changed."""
    if status not in FINISHED:
        raise StoreError(f"status must be one of {FINISHED}, got {status!r}")
    steps = FINISHED[: FINISHED.index(status) + 1]
    for step in steps:
        _check_role(user, role, step)
    images = annotated_unfinished(session, project.id)
    for image in images:
        for step in steps:
            set_status(image, step, user, role)
    session.flush()
    return len(images)


def set_status(image: Image, status: str, user: User, role: str) -> str | None:
    """Move the image to ``status`` as ``user`` acting with ``role`` (their role on its
    project), one step of :data:`MOVES`; returns the move's action ("annotate": the image was
    finished), None when the image has that status already. Forbidden when the role makes no
    move to ``status``, Conflict (naming the image's status) when the image is not where such
    a move starts."""
    if status not in IMAGE_STATUSES:
        raise StoreError(f"status must be one of {IMAGE_STATUSES}, got {shown(status)}")
    _check_role(user, role, status)
    if status == image.status:
        return None
    action = MOVES.get((image.status, status))
    if action is None or role not in accounts.MAY[action]:
        sources = " or ".join(s for (s, to), a in MOVES.items() if to == status and role in accounts.MAY[a])
        raise Conflict(
            f"image {image.file_name!r} is {image.status.replace('_', ' ')}: an image moves to "
            f"{status} only from {sources}"
        )
    image.status = status
    image.updated_at = now()
    image.updated_by = user.id
    return action


def _check_role(user: User, role: str, status: str) -> None:
    """Forbidden unless ``role`` makes some move to ``status``."""
    actions = {a for (_, to), a in MOVES.items() if to == status}
    roles = sorted(set().union(*(accounts.MAY[a] for a in actions)))
    if role not in roles:
        needs = " or ".join(roles) if roles else "no role: an image is new only until its first change"
        raise Forbidden(f"{user.name} is {role} here, and moving an image to {status} needs {needs}")


def to_dataset(
    project: Project,
    include_reference: bool = False,
    images: Sequence[Image] | None = None,
    scores: bool = False,
) -> Dataset:
    """The project's annotations as a :class:`Dataset` (rejected ones left out). With
    ``scores``, the objects no person has confirmed (a score, review still pending, on an
    image not finished) carry their score in ``Objects.extra["scores"]``: predictions, as
    an export says them; everything else has none."""
    position_of = {c.id: c.position for c in project.classes}
    records = []
    for image in images if images is not None else project.images:
        anns = [a for a in image.annotations if a.review != "rejected" and a.reference == include_reference]
        objects = to_objects(anns, position_of, project.oriented)
        if scores:
            unconfirmed = image.status not in FINISHED
            values = [
                a.score if unconfirmed and a.review == "pending" and a.score is not None else np.nan
                for a in anns
            ]
            if not np.isnan(np.asarray(values, np.float64)).all():
                objects.extra["scores"] = np.asarray(values, np.float32)
        records.append(
            ImageRecord(
                image.file_name, image.width, image.height, objects, path=Path(image.path), id=image.id
            )
        )
    classes = project.classes
    extra = {"isthing": [c.isthing for c in classes]}
    return Dataset([c.name for c in classes], records, format="fewclick", extra=extra)


#: Export formats -> the name ``write_dataset`` writes inside the export folder. ``coco``
#: is one JSON file; the others are folders a download zips whole.
EXPORTS = {
    "coco": "annotations.json",
    "coco_panoptic": "coco_panoptic/panoptic.json",  # + coco_panoptic/panoptic/*.png
    "yolo": "yolo",
    "yolo_seg": "yolo_seg",
    "yolo_obb": "yolo_obb",
    "voc": "voc",
    "dota": "dota",
    "cvat": "cvat",
    "labelstudio": "labelstudio/tasks.json",  # + tasks.label_config.xml
    "masks": "masks",
    "geojson": "geojson",
    "points": "points/points.csv",
}


def export_format(name: str) -> str:
    """``name`` as a key of :data:`EXPORTS` (``coco-panoptic`` is ``coco_panoptic``), or a
    StoreError naming the formats there are."""
    key = str(name).strip().lower().replace("-", "_")
    if key not in EXPORTS:
        shown = ", ".join(k.replace("_", "-") for k in EXPORTS)
        raise StoreError(f"export format must be one of {shown}, got {name!r}")
    return key


def export(project: Project, format: str, folder: Path) -> Path:
    """Write the project's annotations in ``format`` (see :func:`export_format`) under
    ``folder``; returns the JSON file (``coco``) or the folder to send. A folder format
    gets a ``warnings.txt`` beside its files when the format could not keep everything,
    each reason counted (objects a format has no geometry for, masks written as outlines
    or boxes, pixels lost to overlapping masks; COCO panoptic: the regions of a stuff class
    in one image, joined into one segment). COCO panoptic categories are things or stuff
    as the classes are; their ids are 1..N in class order. GeoJSON needs georeferenced
    images (their transform is read from the image files, which are not sent)."""
    format = export_format(format)
    data = to_dataset(project, scores=True)
    where = PurePosixPath(EXPORTS[format]).parts[0]
    skipped = _skip_unsafe_names(data, where) + _skip_shared_file_names(data, format, where)
    if format == "voc":  # <depth> is read from the image file, which the download does not send
        for rec in data.images:
            rec.extra["depth"] = image_depth(rec.path)
    if format != "geojson":
        for rec in data.images:
            rec.path = None  # a download names images as the project does; the files stay where they are
    path = Path(folder) / EXPORTS[format]
    merged = _one_region_per_stuff_class(data, path.name) if format == "coco_panoptic" else []
    try:
        messages = skipped + merged + write_dataset(data, path, format)
    except ValueError as exc:  # e.g. two images whose label PNGs would get one name
        raise StoreError(f"cannot export {format}: {exc}") from None
    if format == "coco":
        return path
    out = Path(folder) / PurePosixPath(EXPORTS[format]).parts[0]
    if messages:  # named from the archive's root, not the temporary folder
        named = (m.replace(f"{out}{os.sep}", "").replace(f"{out}:", f"{out.name}:") for m in messages)
        text = "".join(line + "\n" for line in named)
        (out / "warnings.txt").write_text(text, encoding="utf-8")
    return out


def _skip_unsafe_names(data: Dataset, where: str) -> list[str]:
    """Leave out the images whose stored name cannot name a file in an export folder
    (:func:`fewclick.server.names.export_problem`); a message for each one left out."""
    problems = {rec.file_name: export_problem(rec.file_name) for rec in data.images}
    data.images = [rec for rec in data.images if problems[rec.file_name] is None]
    return [
        f"{where}: image {name!r} skipped: {problem}; rename its file and add it again"
        for name, problem in problems.items()
        if problem is not None
    ]


#: The formats that write a file per image named after the image: what names it (VOC,
#: DOTA and GeoJSON drop the folders; YOLO and the label PNGs keep them).
_FILE_PER_IMAGE = {
    **dict.fromkeys(("voc", "dota", "geojson"), lambda name: PurePosixPath(name).stem),
    **dict.fromkeys(
        ("yolo", "yolo_seg", "yolo_obb", "masks", "coco_panoptic"),
        lambda name: PurePosixPath(name).with_suffix("").as_posix(),
    ),
}


def _skip_shared_file_names(data: Dataset, format: str, where: str) -> list[str]:
    """Leave out each image whose files in ``format`` would have the name of an earlier
    image's (``a.jpg`` beside ``a.png``: one ``a.xml``), instead of failing the whole export
    or writing one over the other; a message for each one left out."""
    key = _FILE_PER_IMAGE.get(format)
    if key is None:
        return []
    first: dict[str, str] = {}
    kept, messages = [], []
    for rec in data.images:
        name = key(rec.file_name.replace("\\", "/"))
        if name in first:
            messages.append(
                f"{where}: image {rec.file_name!r} skipped: its files would be named {name!r}, as image "
                f"{first[name]!r}'s are; rename its file and add it again"
            )
        else:
            first[name] = rec.file_name
            kept.append(rec)
    data.images = kept
    return messages


def _one_region_per_stuff_class(data: Dataset, where: str) -> list[str]:
    """Join the masks of each stuff class in each image into one object (COCO panoptic
    allows a stuff class at most one segment per image); returns a message naming the
    images where that happened, or []."""
    stuff = {i for i, thing in enumerate(data.extra["isthing"]) if not thing}
    joined: dict[str, int] = {}
    for rec in data.images:
        objs = rec.objects
        segs = objs.segmentations or [None] * len(objs)
        groups: dict[int, list[int]] = {}
        for i, label in enumerate(objs.labels.tolist()):
            if label in stuff and segs[i] is not None and not objs.ignore[i]:
                groups.setdefault(label, []).append(i)
        keep, boxes = np.ones(len(objs), bool), objs.boxes.copy()
        for first, *rest in (g for g in groups.values() if len(g) > 1):
            union = np.logical_or.reduce([rle_to_mask(segs[i]) for i in (first, *rest)])
            segs[first] = mask_to_rle(union)
            boxes[first] = rle_boxes([segs[first]])[0]
            keep[rest] = False
            joined[rec.file_name] = joined.get(rec.file_name, 0) + len(rest)
        if not keep.all():
            objs.segmentations, objs.boxes = segs, boxes
            rec.objects = objs[keep]
    if not joined:
        return []
    shown = ", ".join(f"{name} ({n})" for name, n in list(joined.items())[:5])
    more = f" and {len(joined) - 5} more images" if len(joined) > 5 else ""
    return [
        f"{where}: {sum(joined.values())} stuff region(s) joined to another of their class (a stuff "
        f"class has at most one segment per image) in {shown}{more}"
    ]


def add_job(session: Session, user: User, project: Project, kind: str, trigger: str = "user") -> Job:
    """A queued job for the project; refused while another of its jobs is queued or running."""
    running = running_job(session, project.id)
    if running is not None:
        raise Conflict(
            f"job {running.id} ({running.kind}) is {running.status} for project {project.name!r}: "
            "wait until it ends"
        )
    job = Job(project_id=project.id, kind=kind, trigger=trigger, created_by=user.id)
    session.add(job)
    session.flush()
    return job


def log_events(session: Session, user: User, project: Project, events: Sequence[dict[str, Any]]) -> None:
    """Add the user's actions (dicts of :class:`Event` fields; ``at`` without time zone, now
    when missing) to the project's log; an event on an image of another project refuses all."""
    image_ids = {im.id for im in project.images}
    for i, e in enumerate(events):
        if e.get("image_id") is not None and e["image_id"] not in image_ids:
            raise StoreError(f"event {i}: image {e['image_id']} is not in project {project.name!r}")
    for e in events:
        at = e.get("at")
        session.add(
            Event(
                project_id=project.id,
                image_id=e.get("image_id"),
                user_id=user.id,
                action=e["action"],
                at=at.replace(tzinfo=None) if at else now(),
                duration_ms=e.get("duration_ms"),
                detail=e.get("detail"),
            )
        )
