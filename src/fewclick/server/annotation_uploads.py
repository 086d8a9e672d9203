"""An annotation file uploaded from the person's disk into a project: streamed to a scratch
folder (never held whole in memory), read by the reader of its format when that format is
one file alone (:data:`ONE_FILE_FORMATS`), its classes checked against the project's, then
imported by :func:`fewclick.server.imports.import_annotations`, onto the project's images
matched by file name, as an import from the server's folders is.

While the file's objects are of classes the project does not have, nothing is imported:
:class:`UnknownClasses` (409) names them, unless the upload says to add them. A file that
cannot be read is a StoreError naming the file, by the name it was sent under, and the
problem. Nothing is written unless the whole import succeeds (the caller commits).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from sqlalchemy.orm import Session

from fewclick.io import FORMATS, detect_format, format_name
from fewclick.io.dataset import Dataset
from fewclick.io.errors import FormatError
from fewclick.io.parsing import collected_warnings, load_json, parse_xml
from fewclick.server import imports, paths
from fewclick.server.db import Project, User
from fewclick.server.errors import Conflict, StoreError, shown
from fewclick.server.names import FileNameError, upload_name
from fewclick.server.storage.annotations import annotation_counts

#: formats whose reader needs nothing beside the file (the others read images, PNGs or a
#: folder of labels beside it), as a person knows them
ONE_FILE_FORMATS = {
    "coco": "COCO JSON",
    "labelstudio": "Label Studio JSON",
    "points": "points JSON",
    "cvat": "CVAT XML",
}
SUFFIXES = (".json", ".xml")
# what a reader says of an annotation file without its images beside it, as an upload always
# is (the import uses the project's images): not said again
NO_IMAGES_BESIDE = " image files not found (looked in "
SHOWN_CLASSES = 20  # the most unknown class names a message lists


class UnknownClasses(Conflict):
    """The file's objects are of classes the project does not have: ``names``, in the
    file's order."""

    def __init__(self, file_name: str, names: list[str], have: list[str]) -> None:
        self.names = names
        listed = ", ".join(map(repr, names[:SHOWN_CLASSES]))
        more = f" and {len(names) - SHOWN_CLASSES} more" if len(names) > SHOWN_CLASSES else ""
        super().__init__(
            f"{file_name}: classes not in the project: {listed}{more} (it has {', '.join(have) or 'none'}); "
            "nothing was imported: send the file again with add_classes=true to add them and import"
        )


@dataclass(frozen=True)
class ImportOptions:
    """How an uploaded file is imported: in ``format`` (None: the one its content is), as
    ``reference`` annotations or not, and whether classes the project lacks are added
    (``add_classes``) or named in an :class:`UnknownClasses`."""

    format: str | None = None
    reference: bool = False
    add_classes: bool = False


@dataclass(frozen=True)
class Imported:
    """What an uploaded file added: ``annotations`` on ``images`` of the project's images,
    the ``classes_added``, and ``warnings`` (the reader's repairs, then the images and
    objects skipped)."""

    file_name: str
    format: str
    annotations: int
    images: int
    classes_added: list[str]
    warnings: list[str]


def import_file(
    session: Session,
    user: User,
    project: Project,
    name: str,
    content: BinaryIO,
    folder: Path,
    options: ImportOptions | None = None,
) -> Imported:
    """Import the annotation file sent as ``name``, read from ``content`` in chunks into a
    scratch folder in ``folder`` (removed after), into ``project`` (see the module doc);
    ``options`` None: the defaults of :class:`ImportOptions`."""
    options = options or ImportOptions()
    safe = _file_name(name)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".annotations-", dir=folder) as scratch:
        # alone two folders down: a reader looking beside it, or beside its folder, finds nothing
        path = Path(scratch) / "file" / safe
        path.parent.mkdir()
        with open(path, "wb") as out:
            shutil.copyfileobj(content, out)
        try:
            data, repairs = _read(path, options.format, project)
        except StoreError as exc:
            raise type(exc)(_as_sent(str(exc), path)) from None
        repairs = [_as_sent(message, path) for message in repairs if NO_IMAGES_BESIDE not in message]
    paths.check_dataset(data, (), adds_images=False)
    have = [c.name for c in project.classes]
    unknown = [data.classes[i] for i in _used(data) if data.classes[i] not in have]
    if unknown and not options.add_classes:
        raise UnknownClasses(safe, unknown, have)
    _drop_unused_classes(data, set(have))
    before = annotation_counts(session, project.id, options.reference)
    skipped = imports.import_annotations(session, user, project, data, reference=options.reference)
    after = annotation_counts(session, project.id, options.reference)
    grown = [n - before.get(image_id, 0) for image_id, n in after.items() if n > before.get(image_id, 0)]
    return Imported(safe, data.format, sum(grown), len(grown), unknown, repairs + skipped)


def _file_name(name: str) -> str:
    """The base name the file was sent under (:func:`~fewclick.server.names.upload_name`);
    a StoreError when it cannot name a file or is not of an annotation file's suffix."""
    try:
        safe = upload_name(name)
    except FileNameError as exc:
        raise StoreError(str(exc)) from None
    if Path(safe).suffix.lower() not in SUFFIXES:
        raise StoreError(f"{shown(name)}: expected an annotation file ({_kinds()}), got another suffix")
    return safe


def _kinds() -> str:
    return ", ".join(ONE_FILE_FORMATS.values())


def _read(path: Path, format: str | None, project: Project) -> tuple[Dataset, list[str]]:
    """The dataset in the file at ``path`` and its reader's repairs; its images may be
    declared as large as the project's largest (a slide read by regions)."""
    name = _format(path, format)
    largest = max((i.width * i.height for i in project.images), default=0)
    with collected_warnings() as repairs:
        data = imports.read_import(path, name, largest)
    return data, repairs


def _format(path: Path, format: str | None) -> str:
    """``format`` when given, else the format of the file's content; a StoreError naming
    the problem when the file is not well-formed JSON or XML, or not of a format that one
    file holds."""
    if format:
        name = format_name(format)
    else:
        try:
            name = detect_format(path)
        except ValueError:  # FormatError: no format's sniff took it
            _check_syntax(path)
            raise StoreError(
                f"{path}: expected one of {_kinds()}, got a file of none of these formats"
            ) from None
    if name not in ONE_FILE_FORMATS:
        why = " (an unknown format)" if name not in FORMATS else ", read with the files beside it"
        raise StoreError(
            f"{path}: expected one of {_kinds()} (formats {', '.join(ONE_FILE_FORMATS)}), got {name!r}{why}: "
            "import a dataset of many files from its folder on the server"
        )
    return name


def _check_syntax(path: Path) -> None:
    """A StoreError naming the line and column where the file stops being JSON (or XML)."""
    try:
        load_json(path) if path.suffix.lower() == ".json" else parse_xml(path)
    except FormatError as exc:
        raise StoreError(str(exc)) from None


def _as_sent(message: str, path: Path) -> str:
    """``message`` with the scratch file named by its own name, once ("cannot import a.json:
    a.json: ..." says it twice), and the scratch folders left out of other paths."""
    message = message.replace(f"cannot import {path}: {path}", str(path))
    return message.replace(f"{path.parent}{os.sep}", "").replace(f"{path.parent.parent}{os.sep}", "")


def _used(data: Dataset) -> list[int]:
    """The indices of the dataset's classes that label at least one object, in order."""
    labels = [rec.objects.labels for rec in data.images]
    return np.unique(np.concatenate(labels)).tolist() if labels else []


def _drop_unused_classes(data: Dataset, have: set[str]) -> None:
    """Leave out of ``data`` (in place) the classes that label no object and that the
    project does not have (a COCO file lists every category of its dataset), so that the
    import adds none of them."""
    used = set(_used(data))
    keep = [i for i, name in enumerate(data.classes) if i in used or name in have]
    if len(keep) == len(data.classes):
        return
    index = np.full(len(data.classes), -1, np.int64)
    index[keep] = np.arange(len(keep))
    for rec in data.images:
        rec.objects.labels = index[rec.objects.labels]
    data.classes = [data.classes[i] for i in keep]
    if data.category_ids is not None:
        data.category_ids = [data.category_ids[i] for i in keep]
    if "isthing" in data.extra:
        data.extra["isthing"] = [data.extra["isthing"][i] for i in keep]
