"""Instance mask PNGs (format "masks"): per image one 16-bit PNG of instance indices,
plus one JSON naming each index's class.

Layout (what :func:`write` makes and :func:`read` takes, the folder or its JSON)::

    masks.json          {"classes": ["person", "sky"],
                         "images": [{"file_name": "a.jpg", "mask": "masks/a.png",
                                     "instances": {"1": "person", "2": "sky"},
                                     "crowd": [2]}]}
    masks/a.png         uint16, pixel = instance index (0 = no instance)
    images/a.jpg        the image (optional: a folder of masks for images elsewhere)

``classes`` fixes the class order (labels index it); ``mask`` is relative to the JSON;
``instances`` maps every index in the PNG to a class; ``crowd`` (optional) lists the
indices that are crowd regions (``Objects.ignore``). One object per instance, in index
order, with its RLE and the box of its pixels. The mask's size must be the image's when
the image is found (in ``images/`` or beside the JSON); without it the mask gives the size.

The reader also takes a one-channel 8-bit PNG (indices up to 255, a palette PNG as its
palette indices); a colour PNG is refused, as is an index without a class, a class
mapping that names an index the PNG lacks or a class not in ``classes``.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.errors import FormatError
from fewclick.io.images import ImageError, image_size, load_array
from fewclick.io.labelmap import Losses, owner_map, png_names
from fewclick.io.parsing import find_image, link_image, load_json, warn
from fewclick.io.rle import mask_to_rle, rle_boxes
from fewclick.types import Objects

__all__ = ["NAME", "MAX_INSTANCES", "sniff", "read", "write"]

#: The JSON's name in a masks folder.
NAME = "masks.json"
#: The largest instance index a 16-bit PNG holds.
MAX_INSTANCES = 2**16 - 1
_SNIFF_BYTES = 16 * 2**20


def sniff(path: Path) -> bool:
    """True for a folder holding a ``masks.json`` of the layout above, or such a JSON
    (any name when its images name a ``mask``; an empty one only as ``masks.json``)."""
    path = Path(path)
    file = path / NAME if path.is_dir() else path
    if file.suffix.lower() != ".json" or not file.is_file() or file.stat().st_size > _SNIFF_BYTES:
        return False
    try:
        data = load_json(file)
    except (OSError, FormatError):
        return False
    if not isinstance(data, dict) or "annotations" in data or not isinstance(data.get("classes"), list):
        return False
    images = data.get("images")
    if not isinstance(images, list):
        return False
    if not images:
        return file.name == NAME
    return all(isinstance(entry, dict) and "mask" in entry for entry in images)


def read(path: Path, images_dir: Path | None = None) -> Dataset:
    """Read a masks folder (or its JSON); ``images_dir`` overrides where images are looked
    for (default ``images/`` beside the JSON, then the JSON's folder)."""
    path = Path(path)
    file = path / NAME if path.is_dir() else path
    if not file.is_file():
        raise FormatError(f"{path}: expected {NAME} (instance mask PNGs and their classes), found none")
    data = load_json(file)
    classes = _classes(data, file)
    root = file.parent
    folders = [Path(images_dir)] if images_dir else [root / "images", root]
    records, missing = [], 0
    for k, entry in enumerate(data["images"]):
        record = _record(entry, k, file, classes, folders)
        missing += record.path is None
        records.append(record)
    if missing:
        looked = ", ".join(map(str, folders))
        warn(
            f"{file}: {missing} of {len(records)} image files not found (looked in {looked}); "
            "their sizes are the masks'"
        )
    return Dataset(classes=classes, images=records, format="masks", root=root)


def _classes(data: object, file: Path) -> list[str]:
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise FormatError(f"{file}: expected a JSON object with an 'images' list")
    classes = data.get("classes")
    if not isinstance(classes, list) or not all(isinstance(c, str) and c for c in classes):
        raise FormatError(f"{file}: expected 'classes' to be a list of class names, got {classes!r}"[:300])
    if len(set(classes)) != len(classes):
        repeated = sorted({c for c in classes if classes.count(c) > 1})
        raise FormatError(f"{file}: expected unique class names, got {repeated[:5]} more than once")
    return list(classes)


def _record(entry: object, k: int, file: Path, classes: list[str], folders: list[Path]) -> ImageRecord:
    if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str) or not entry["file_name"]:
        raise FormatError(f"{file}: images[{k}]: expected an entry with a 'file_name', got {entry!r}"[:300])
    where = f"{file}: images[{k}] ({entry['file_name']!r})"
    mask_file = _mask_path(entry.get("mask"), file.parent, where)
    indices = _indices(mask_file, where)
    image_path = find_image(entry["file_name"], folders)
    height, width = indices.shape
    if image_path is not None:
        try:
            size = image_size(image_path)
        except ImageError as exc:
            raise FormatError(f"{where}: {exc}") from None
        if size != (width, height):
            raise FormatError(
                f"{where}: expected the mask {mask_file.name} to have the image's size "
                f"{size[0]} x {size[1]}, got {width} x {height}"
            )
    objects = _objects(indices, entry, classes, where, mask_file.name)
    return ImageRecord(entry["file_name"], width, height, objects, image_path, k + 1)


def _mask_path(name: object, root: Path, where: str) -> Path:
    if not isinstance(name, str) or not name:
        raise FormatError(f"{where}: expected 'mask', the file name of its mask PNG, got {name!r}")
    parts = PurePosixPath(name.replace("\\", "/"))
    if parts.is_absolute() or ".." in parts.parts:
        raise FormatError(f"{where}: expected a mask file inside the dataset folder, got {name!r}")
    path = root / parts
    if not path.is_file():
        raise FormatError(f"{where}: expected its mask PNG at {path}, found no such file")
    return path


def _indices(path: Path, where: str) -> np.ndarray:
    """The mask's pixels as instance indices ``int64[H, W]``."""
    try:
        pixels = load_array(path)
    except ImageError as exc:
        raise FormatError(f"{where}: {exc}") from None
    expected = "a one-channel 16-bit PNG of instance indices (0 = none)"
    if pixels.ndim == 3:
        raise FormatError(
            f"{where}: {path.name}: expected {expected}, got {pixels.shape[2]} channels of "
            f"{pixels.dtype} (a colour image)"
        )
    if pixels.dtype.kind not in "ui":
        raise FormatError(f"{where}: {path.name}: expected {expected}, got pixels of type {pixels.dtype}")
    indices = pixels.astype(np.int64)
    if indices.size and (indices.min() < 0 or indices.max() > MAX_INSTANCES):
        raise FormatError(
            f"{where}: {path.name}: expected {expected}, got values from {indices.min()} to {indices.max()}"
        )
    return indices


def _objects(indices: np.ndarray, entry: dict, classes: list[str], where: str, mask_name: str) -> Objects:
    mapping = entry.get("instances", {})
    if not isinstance(mapping, dict):
        raise FormatError(
            f"{where}: expected 'instances' to map indices to class names, got {mapping!r}"[:300]
        )
    label_of = {}
    for key, name in mapping.items():
        index = int(key) if str(key).strip().isdigit() else None
        if index is None or not 1 <= index <= MAX_INSTANCES:
            raise FormatError(
                f"{where}: expected instance indices 1..{MAX_INSTANCES} in 'instances', got {key!r}"
            )
        if name not in classes:
            raise FormatError(
                f"{where}: instance {index}: unknown class {name!r}; 'classes' has {classes[:20]}"
            )
        label_of[index] = classes.index(name)
    present = set(np.unique(indices).tolist()) - {0}
    unnamed = sorted(present - set(label_of))
    if unnamed:
        raise FormatError(
            f"{where}: {mask_name} holds instance indices {unnamed[:10]} that 'instances' does not name"
        )
    absent = sorted(set(label_of) - present)
    if absent:
        raise FormatError(f"{where}: 'instances' names indices {absent[:10]} that {mask_name} does not hold")
    crowd = entry.get("crowd", [])
    if not isinstance(crowd, list) or not all(type(i) is int and i in label_of for i in crowd):
        raise FormatError(
            f"{where}: expected 'crowd' to list indices named in 'instances', got {crowd!r}"[:300]
        )
    order = sorted(label_of)
    rles = [mask_to_rle(indices == i) for i in order]
    return Objects(
        [label_of[i] for i in order],
        rle_boxes(rles),
        segmentations=rles or None,
        ignore=[i in crowd for i in order],
    )


def write(dataset: Dataset, path: Path) -> list[str]:
    """Write ``path/masks.json`` and ``path/masks/<image name>.png`` (``a.jpg`` -> ``a.png``,
    uint16) for every image, its semantic twin ``path/semantic/<image name>.png`` (uint16,
    pixel = 1 + the class index in ``classes``, 0 = none), and symlink the images that
    exist on disk into ``path/images/`` (nothing is copied).

    Instances are the objects with a mask, numbered 1..K in object order. A pixel holds one
    instance, so overlapping masks are resolved as in
    :func:`fewclick.io.labelmap.paint` (the smaller mask keeps the pixel; equal areas: the
    earlier object); objects left without pixels and objects without a mask are not
    written. Returns the messages of what was lost (also warned as
    :class:`~fewclick.io.parsing.FormatWarning`); an empty list means nothing was.
    """
    folder = Path(path)
    names = png_names([rec.file_name for rec in dataset.images])
    losses = Losses()
    entries = []
    for rec, name in zip(dataset.images, names, strict=True):
        owner, objs = owner_map(rec, losses)
        kept = np.unique(owner[owner > 0])  # 1 + object index, in object order
        if len(kept) > MAX_INSTANCES:
            raise ValueError(
                f"image {rec.file_name!r}: {len(kept)} instances, a 16-bit PNG holds {MAX_INSTANCES}"
            )
        renumber = np.zeros(len(objs) + 1, np.uint16)
        renumber[kept] = np.arange(1, len(kept) + 1)
        mask = folder / "masks" / name
        mask.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(renumber[owner]).save(mask)
        semantic = folder / "semantic" / name
        semantic.parent.mkdir(parents=True, exist_ok=True)
        classes = np.concatenate([[0], objs.labels.astype(np.uint16) + 1]).astype(np.uint16)
        Image.fromarray(classes[owner]).save(semantic)
        entry = {
            "file_name": rec.file_name,
            "mask": f"masks/{name}",
            "instances": {str(k + 1): dataset.classes[objs.labels[i - 1]] for k, i in enumerate(kept)},
        }
        crowd = [k + 1 for k, i in enumerate(kept) if objs.ignore[i - 1]]
        entries.append({**entry, "crowd": crowd} if crowd else entry)
        link_image(rec.path, folder / "images" / rec.file_name)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / NAME, "w", encoding="utf-8") as f:
        json.dump({"classes": list(dataset.classes), "images": entries}, f, indent=1)
    return losses.report(folder / NAME)
