"""What comes into a project, on a database session: a project made from a folder or a
dataset, an uploaded image, and imported annotations (the files and datasets read and
checked here; the rows written by :mod:`fewclick.server.storage`).

Errors a user can cause raise :class:`~fewclick.server.errors.StoreError` (or a subclass)
with a message that says what is wrong; nothing is written unless the whole operation
succeeds (the caller commits).
"""

from __future__ import annotations

import filecmp
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import numpy as np
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fewclick.io import read_dataset
from fewclick.io.dataset import Dataset
from fewclick.io.images import IMAGE_SUFFIXES, ImageError, image_size, load_image
from fewclick.io.regions import image_extent
from fewclick.server.convert import GeometryError, check_geometry, from_objects
from fewclick.server.db import Annotation, Image, Project, User
from fewclick.server.errors import Conflict, Duplicate, StoreError, TooLarge, shown
from fewclick.server.names import FileNameError, upload_name
from fewclick.server.storage import images, projects, rows
from fewclick.server.storage.projects import set_classes
from fewclick.server.tiles import check_size

MAX_FOLDER_IMAGES = 10_000  # image files in a project made from a folder
# pixels of an uploaded image: checking that it decodes whole takes about 7 bytes a pixel
MAX_UPLOAD_PIXELS = 50_000_000


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
    roots: Sequence[Path] = (),
) -> tuple[Project, list[str]]:
    """A project from a folder of images (at most ``MAX_FOLDER_IMAGES``) or from a dataset
    in any readable format (its annotations imported; as reference annotations with
    ``reference``), once ``check`` accepts it. A link in the folder is followed when its
    target lies inside one of the data ``roots`` (the folder itself when none are given).
    With neither, an empty project of ``classes``, for images uploaded in the page. Returns
    the project and warnings (files skipped, and why); when every file is skipped, the error
    lists them."""
    name = name.strip()
    if not name:
        raise StoreError("a project needs a name")
    if projects.named(session, name) is not None:
        raise Conflict(f"a project named {name!r} exists already")
    if folder is not None and dataset is not None:
        raise StoreError("give a folder of images or a dataset to import, not both")
    project = projects.add_project(
        session, user, name, None if folder is dataset is None else str(folder or dataset)
    )
    warnings: list[str] = []
    if folder is None and dataset is None:
        set_classes(session, project, classes or ["object"])
    elif folder is not None:
        root = Path(folder).expanduser()
        if not root.is_dir():
            raise StoreError(f"{root}: no such folder")
        set_classes(session, project, classes or ["object"])
        files, warnings = _image_files(root, [Path(r).resolve() for r in roots] or [root.resolve()])
        for path in files:
            try:
                width, height = image_extent(path)
                check_size(width, height)
            except ValueError as exc:  # ImageError too
                warnings.append(f"skipped {path.relative_to(root)}: {exc}")
                continue
            file_name = path.relative_to(root).as_posix()
            images.add_image(session, project, file_name, str(path.resolve()), width, height, user)
        if not project.images:
            listed = "".join(f"; {w}" for w in warnings)
            raise StoreError(f"{root}: no readable images (looked for {', '.join(IMAGE_SUFFIXES)}){listed}")
    else:
        data = read_import(dataset, format)
        if check is not None:
            check(data)
        set_classes(session, project, data.classes)
        project.oriented = _oriented(data)
        warnings += import_annotations(session, user, project, data, reference=reference, add_images=True)
    rows.write(session)
    return project, warnings


def _image_files(root: Path, roots: Sequence[Path]) -> tuple[list[Path], list[str]]:
    """The image files under ``root``, sorted, and what was left out: links to folders are
    not followed; a link to a file is followed when the file lies inside one of ``roots``,
    else it is named in the warnings, as is a link to nothing. More than
    ``MAX_FOLDER_IMAGES`` is refused."""
    files, warnings = [], []
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            target = path.resolve()
            if not path.is_file():
                if path.is_symlink():
                    warnings.append(
                        f"skipped {path.relative_to(root)}: a link to {target}, which does not exist"
                    )
                continue
            if path.is_symlink() and not any(target.is_relative_to(r) for r in roots):
                warnings.append(
                    f"skipped {path.relative_to(root)}: a link to {target}, outside the data roots "
                    "(start the server with --data-root to allow its folder)"
                )
                continue
            files.append(path)
            if len(files) > MAX_FOLDER_IMAGES:
                raise StoreError(
                    f"{root} holds more than {MAX_FOLDER_IMAGES:,} image files, the limit for a project "
                    "from a folder: make projects from its sub-folders"
                )
    return sorted(files), warnings


def read_import(path: str | Path, format: str | None, largest: int = 0) -> Dataset:
    """The dataset at ``path`` to import; its images may be declared as large as ``largest``
    pixels (the project's largest image, a slide read by regions) beyond the pixel limit."""
    from fewclick.io.parsing import declared_pixels

    try:
        with declared_pixels(largest):
            return read_dataset(Path(path).expanduser(), format)
    except FileNotFoundError as exc:
        raise StoreError(str(exc)) from None
    except (ValueError, KeyError, TypeError) as exc:  # FormatError is a ValueError
        raise StoreError(f"cannot import {path}: {exc}") from None


def _oriented(data: Dataset) -> bool:
    return any(rec.objects.rboxes is not None and len(rec.objects) for rec in data.images)


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


def _by_base_name(project_images) -> dict[str, Image]:
    """The images whose base name no other image of the project shares: a dataset whose
    names carry a folder (``images/a.png``) matches a project made from that folder."""
    named = [(PurePosixPath(im.file_name).name, im) for im in project_images]
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
            path = str(Path(rec.path).resolve())
            image = images.add_image(session, project, rec.file_name, path, rec.width, rec.height, user)
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
    rows.write(session)
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
    limits is refused and nothing is kept. A file of a name the project has is
    :class:`~fewclick.server.errors.Duplicate` when it is that image's file byte for byte,
    else a Conflict."""
    try:
        safe = upload_name(name)
    except FileNameError as exc:
        raise StoreError(str(exc)) from None
    if Path(safe).suffix.lower() not in IMAGE_SUFFIXES:
        raise StoreError(f"{shown(name)} is not an image file ({', '.join(IMAGE_SUFFIXES)})")
    same = next((im for im in project.images if im.file_name == safe), None)
    if same is not None:
        _same_file(same, content, folder)
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
    # by id, not ``project=``: that puts the row in ``project.images`` before it is in the
    # session, and the flush that opens the savepoint warns that it will not add it (SAWarning)
    image = Image(
        project_id=project.id,
        file_name=safe,
        path=str(path.resolve()),
        width=width,
        height=height,
        updated_by=user.id,
    )
    try:  # the row first: an upload of the same name that got in meanwhile keeps its file
        images.insert_now(session, image)
    except IntegrityError:
        partial.unlink(missing_ok=True)
        raise Conflict(f"the project has an image named {safe!r} already") from None
    # the session keeps the project's loaded images across commits: the next file of the
    # same upload finds this one there (a duplicate, a twin)
    project.images.append(image)
    partial.replace(path)
    return image


def _same_file(image: Image, content: BinaryIO, folder: Path) -> None:
    """Duplicate when ``content`` is ``image``'s file byte for byte, else Conflict (a file of
    that name, another picture): read to a scratch file in ``folder``, removed after."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, scratch = tempfile.mkstemp(suffix=".part", prefix=".compare.", dir=folder)
    try:
        with open(fd, "wb") as out:
            shutil.copyfileobj(content, out)
        same = Path(image.path).is_file() and filecmp.cmp(scratch, image.path, shallow=False)
    finally:
        Path(scratch).unlink(missing_ok=True)
    if same:
        raise Duplicate(f"{image.file_name!r} is in the project already (the same file): not added again")
    raise Conflict(f"the project has an image named {image.file_name!r} already")


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
