"""ADE20K 2021 per-image annotation files (format "ade20k").

Per image, in one folder: ``<name>.jpg``, ``<name>.json`` (polygons, class names, part
tree), ``<name>_seg.png`` (class = R / 10 * 256 + G, instances by B) and
``<name>/instance_XXX_<name>.png`` (one amodal mask per annotated instance: 255 = visible,
128 = occluded). The folders may sit anywhere below the folder read.

One object per entry of the json's ``annotation.object`` list, parts included (parts are
annotated instances too: the sample images have 70, 37 and 32 entries, of which 19, 3 and 8
are parts). The class is the entry's ``name``; classes are sorted by ADE20K's object index
(``name_ndx``), which becomes ``Dataset.category_ids``. The segmentation is the RLE of the
instance PNG's visible pixels (``amodal=True``: visible and occluded), or of the polygon when
the PNG is missing. ``Objects.extra`` holds per object: ``"ade_id"`` (the json id),
``"part_level"`` (0 = whole object, 1 = part, 2 = part of a part), ``"parent"`` (index of
the object this one is part of, -1 for none) and ``"raw_name"``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.errors import FormatError
from fewclick.io.images import IMAGE_SUFFIXES, image_size, load_array
from fewclick.io.parsing import check_image_size
from fewclick.io.rle import mask_to_rle, polygons_to_mask, rle_boxes
from fewclick.types import Objects

SEG_SUFFIX = "_seg.png"


def sniff(path: Path) -> bool:
    """True for a folder with ``<name>_seg.png`` beside ``<name>.json`` below it."""
    path = Path(path)
    return path.is_dir() and next(_annotation_files(path), None) is not None


def read(path: Path, amodal: bool = False) -> Dataset:
    """Read every ``<name>.json`` below ``path`` that has a ``<name>_seg.png`` beside it."""
    root = Path(path)
    files = sorted(_annotation_files(root))
    if not files:
        raise FormatError(
            f"{root}: expected <name>.json files with <name>{SEG_SUFFIX} beside them, found none"
        )
    entries = [(file, _load_json(file)) for file in files]
    names = _class_index(entries)
    classes = sorted(names, key=lambda name: names[name])
    images = [_read_image(root, file, objs, classes, amodal, i) for i, (file, objs) in enumerate(entries)]
    return Dataset(classes=classes, images=images, root=root, category_ids=[names[c] for c in classes])


def _annotation_files(root: Path):
    for seg in root.rglob(f"*{SEG_SUFFIX}"):
        ann = seg.with_name(seg.name[: -len(SEG_SUFFIX)] + ".json")
        if ann.is_file():
            yield ann


def _load_json(file: Path) -> list[dict]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{file}: not valid JSON ({exc})") from None
    objects = data.get("annotation", {}).get("object") if isinstance(data, dict) else None
    if not isinstance(objects, list):
        raise FormatError(f"{file}: expected an 'annotation' object with an 'object' list")
    for k, obj in enumerate(objects):
        missing = [key for key in ("id", "name", "name_ndx") if key not in obj]
        if missing:
            raise FormatError(f"{file}: object[{k}] lacks {missing}; expected id, name, name_ndx")
    return objects


def _class_index(entries: list[tuple[Path, list[dict]]]) -> dict[str, int]:
    """Class name -> ADE20K object index; one name must keep one index."""
    names: dict[str, int] = {}
    for file, objects in entries:
        for obj in objects:
            ndx = int(obj["name_ndx"])
            if names.setdefault(obj["name"], ndx) != ndx:
                raise FormatError(
                    f"{file}: object {obj['id']} names {obj['name']!r} with index {ndx}, "
                    f"expected {names[obj['name']]} as in an earlier file"
                )
    return names


def _image_file(ann: Path) -> Path:
    for suffix in IMAGE_SUFFIXES:
        image = ann.with_suffix(suffix)
        if image.is_file():
            return image
    raise FileNotFoundError(f"{ann}: no image file beside it (looked for {ann.stem}.jpg/.png/...)")


def _read_image(root: Path, ann: Path, objs: list[dict], classes: list[str], amodal: bool, index: int):
    image = _image_file(ann)
    width, height = image_size(image)
    rles = [_segmentation(ann, obj, height, width, amodal) for obj in objs]
    position = {int(obj["id"]): k for k, obj in enumerate(objs)}
    objects = Objects(
        labels=np.array([classes.index(obj["name"]) for obj in objs], np.int64),
        boxes=rle_boxes(rles),
        segmentations=rles,
        extra={
            "ade_id": np.array([int(obj["id"]) for obj in objs], np.int64),
            "part_level": np.array([_parts(obj).get("part_level", 0) for obj in objs], np.int64),
            "parent": np.array([_parent(obj, position) for obj in objs], np.int64),
            "raw_name": [obj.get("raw_name", obj["name"]) for obj in objs],
        },
    )
    rel = image.relative_to(root).as_posix()
    return ImageRecord(rel, width, height, objects, path=image, id=index)


def _parts(obj: dict) -> dict:
    parts = obj.get("parts")
    return parts if isinstance(parts, dict) else {}


def _parent(obj: dict, position: dict[int, int]) -> int:
    """Index of the whole this object is part of; ``ispartof`` is an id, or [] for none."""
    parent = _parts(obj).get("ispartof", [])
    if isinstance(parent, list):
        parent = parent[0] if parent else None
    return -1 if parent is None else position.get(int(parent), -1)


def _segmentation(ann: Path, obj: dict, height: int, width: int, amodal: bool) -> dict:
    mask_file = ann.parent / obj["instance_mask"] if obj.get("instance_mask") else None
    if mask_file is not None and mask_file.is_file():
        mask = load_array(mask_file)
        if mask.ndim == 3:
            mask = mask[..., 0]
        check_image_size(mask, mask_file, height, width, "a mask of ")
        return mask_to_rle(mask > 0 if amodal else mask > 128)
    polygon = obj.get("polygon") or {}
    xs, ys = polygon.get("x", []), polygon.get("y", [])
    if len(xs) != len(ys) or len(xs) < 3:
        raise FormatError(
            f"{ann}: object {obj['id']} has no instance mask and no polygon of 3 or more points"
        )
    return mask_to_rle(polygons_to_mask([np.stack([xs, ys], axis=1)], height, width))
