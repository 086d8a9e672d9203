"""What goes out of a project: its annotations as a dataset (:func:`to_dataset`, what training
reads too) and as files in every export format (:func:`export`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from fewclick.io import write_dataset
from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.rle import merge_rles, rle_boxes
from fewclick.io.voc import image_depth
from fewclick.server.convert import to_objects
from fewclick.server.db import (
    FINISHED,
    Image,
    Project,
)
from fewclick.server.errors import StoreError
from fewclick.server.names import export_problem


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
    "qupath": "qupath",
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
    **dict.fromkeys(("voc", "dota", "geojson", "qupath"), lambda name: PurePosixPath(name).stem),
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
            segs[first] = merge_rles([segs[i] for i in (first, *rest)])
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
