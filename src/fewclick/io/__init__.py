"""Reading and writing datasets, safe image loading, tiling.

``read_dataset(path)`` finds the format by looking at the files (``detect_format``) and
returns one :class:`Dataset`; ``write_dataset(dataset, path, format)`` writes one out in
any of :data:`WRITERS`. Each format lives in its own module with two functions,
``sniff(path) -> bool`` and ``read(path) -> Dataset``; the writers add
``write(dataset, path)``, returning messages that count what the format could not hold.
Format names take ``-`` or ``_`` alike (``yolo-seg`` is ``yolo_seg``).
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.errors import FormatError
from fewclick.io.images import ImageError, load_array, load_image

__all__ = [
    "Dataset",
    "ImageRecord",
    "ImageError",
    "FormatError",
    "FORMATS",
    "detect_format",
    "read_dataset",
    "write_dataset",
    "load_image",
    "load_array",
]

log = logging.getLogger(__name__)

#: Format name -> module, in the order ``detect_format`` tries them (most specific first).
FORMATS: dict[str, str] = {
    "coco_panoptic": "fewclick.io.coco_panoptic",
    "coco": "fewclick.io.coco",
    "labelstudio": "fewclick.io.labelstudio",
    "geojson": "fewclick.io.geojson",
    "cvat": "fewclick.io.cvat",
    "masks": "fewclick.io.masks",
    "dota": "fewclick.io.dota",
    "isaid": "fewclick.io.isaid",
    "dsb2018": "fewclick.io.dsb",
    "coelho2009": "fewclick.io.coelho",
    "bsds500": "fewclick.io.bsds",
    "grabcut": "fewclick.io.grabcut",
    "ade20k": "fewclick.io.ade20k",
    "crchisto": "fewclick.io.points",
    "points": "fewclick.io.points_table",
    "voc": "fewclick.io.voc",
    "yolo": "fewclick.io.yolo",
}

#: Formats ``write_dataset`` writes -> (module, keyword arguments of its ``write``).
WRITER_MODULES: dict[str, tuple[str, dict]] = {
    "coco": ("fewclick.io.coco", {}),
    "coco_panoptic": ("fewclick.io.coco_panoptic", {}),
    "yolo": ("fewclick.io.yolo", {"kind": "detect"}),
    "yolo_seg": ("fewclick.io.yolo", {"kind": "segment"}),
    "yolo_obb": ("fewclick.io.yolo", {"kind": "obb"}),
    "voc": ("fewclick.io.voc", {}),
    "dota": ("fewclick.io.dota", {}),
    "cvat": ("fewclick.io.cvat", {}),
    "labelstudio": ("fewclick.io.labelstudio", {}),
    "masks": ("fewclick.io.masks", {}),
    "geojson": ("fewclick.io.geojson", {}),
    "qupath": ("fewclick.io.geojson", {"qupath": True}),
    "points": ("fewclick.io.points_table", {}),
}
WRITERS = tuple(WRITER_MODULES)
#: Writers of one file (the others write a folder).
FILE_WRITERS = ("coco", "coco_panoptic", "labelstudio", "points")


def format_name(name: str) -> str:
    """``name`` with ``-`` as ``_`` (the CLI and the app say ``yolo-seg``, the code ``yolo_seg``)."""
    return str(name).strip().lower().replace("-", "_")


def _module(name: str):
    name = format_name(name)
    if name not in FORMATS:
        raise FormatError(f"unknown format {name!r}; known formats: {', '.join(FORMATS)}")
    return importlib.import_module(FORMATS[name])


def detect_format(path: str | Path) -> str:
    """The name of the first format in :data:`FORMATS` whose ``sniff`` accepts ``path``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    for name in FORMATS:
        if _module(name).sniff(path):
            return name
    raise FormatError(
        f"{path}: no known dataset format found (looked for: {', '.join(FORMATS)}); "
        "pass the format explicitly if the layout is unusual" + _broken_json(path)
    )


def _broken_json(path: Path) -> str:
    """``"; <the first JSON file that fails to parse>: <why>"``, or "" (a hint for a
    truncated annotation file, which no format's ``sniff`` accepts)."""
    from fewclick.io.parsing import load_json

    if path.is_file():
        files = [path] if path.suffix.lower() == ".json" else []
    else:
        files = sorted(path.glob("*.json"))[:20] + sorted(path.glob("annotations/*.json"))[:20]
    for file in files:
        try:
            if file.stat().st_size <= 16 * 2**20:
                load_json(file)
        except (FormatError, OSError) as exc:
            return f"; {exc}"
    return ""


def read_dataset(path: str | Path, format: str | None = None, **options) -> Dataset:
    """Read a dataset; ``format`` None means detect it."""
    path = Path(path)
    name = format_name(format) if format else detect_format(path)
    dataset = _module(name).read(path, **options)
    dataset.format = name
    log.info("read %s as %s: %d images, %d classes", path, name, len(dataset), len(dataset.classes))
    return dataset


def write_dataset(dataset: Dataset, path: str | Path, format: str) -> list[str]:
    """Write ``dataset`` in one of :data:`WRITERS`: a JSON file for :data:`FILE_WRITERS`
    (``coco_panoptic``'s PNGs in the folder named after the file, beside it), else a folder.
    Returns the messages of what the format could not keep (objects left out, geometry
    approximated, pixels lost to overlaps), each counted; ``[]`` when it kept everything."""
    name = format_name(format)
    if name not in WRITER_MODULES:
        shown = ", ".join(w.replace("_", "-") for w in WRITERS)
        raise FormatError(f"cannot write format {format!r}; writable formats: {shown}")
    path = Path(path)
    if name in FILE_WRITERS and path.is_dir():
        raise FormatError(f"{path}: expected a file name to write {format} to, got an existing folder")
    if name not in FILE_WRITERS and path.exists() and not path.is_dir():
        raise FormatError(f"{path}: expected a folder to write {format} into, got an existing file")
    module, options = WRITER_MODULES[name]
    messages = importlib.import_module(module).write(dataset, Path(path), **options) or []
    log.info("wrote %d images as %s to %s (%d message(s))", len(dataset), name, path, len(messages))
    return messages
