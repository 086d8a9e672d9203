"""Checked fields of a COCO instances JSON: ids, image entries, flags, number lists and
segmentations. Each function raises :class:`~fewclick.io.errors.FormatError` naming the
file and the item (``where``), or warns for what it repairs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fewclick.io.errors import FormatError
from fewclick.io.parsing import image_dimensions, warn


def int_id(value: Any, where: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise FormatError(f"{where}: expected an integer id, got {value!r}")
    return value


def image_infos(entries: list, file: Path) -> dict:
    """``{image id: image entry}`` with checked ids (unique ints or strings), names and sizes."""
    infos: dict = {}
    for k, info in enumerate(entries):
        if not isinstance(info, dict) or not {"id", "file_name", "width", "height"} <= info.keys():
            raise FormatError(f"{file}: expected images with id, file_name, width and height, got {info!r}")
        image_id, name = info["id"], info["file_name"]
        where = f"{file}: images[{k}] (id {image_id!r})"
        if isinstance(image_id, bool) or not isinstance(image_id, (int, str)):
            raise FormatError(f"{where}: expected an integer or string image id, got {image_id!r}")
        if image_id in infos:
            raise FormatError(f"{where}: image id {image_id!r} appears twice; expected unique ids")
        if not isinstance(name, str) or not name.strip():
            raise FormatError(f"{where}: expected a file_name string, got {name!r}")
        width, height = image_dimensions(info["width"], info["height"], where)
        infos[image_id] = {**info, "width": width, "height": height}
    return infos


def known_id(value: Any, table: dict) -> bool:
    return type(value) in (int, str, float) and value in table


def flag(value: Any, name: str, allowed: tuple, where: str) -> int:
    if isinstance(value, str) or value not in allowed:
        raise FormatError(f"{where}: expected '{name}' to be one of {list(allowed)}, got {value!r}")
    return int(value)


def numbers(value: Any, n: int, name: str, where: str) -> np.ndarray | None:
    if value is None:
        return None
    try:
        arr = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.shape != (n,):
        raise FormatError(f"{where}: expected '{name}' to be {n} numbers, got {value!r}")
    if not np.isfinite(arr).all():
        raise FormatError(f"{where}: expected '{name}' to be {n} finite numbers, got {value!r}")
    return arr


def checked_segmentation(seg: Any, where: str, height: int, width: int) -> list | dict | None:
    if seg is None or (isinstance(seg, list) and not seg):
        return None
    if isinstance(seg, dict):
        return checked_rle(seg, where, height, width)
    if not isinstance(seg, list):
        raise FormatError(
            f"{where}: expected a polygon list or an RLE dict as segmentation, got {seg!r}"[:300]
        )
    polygons = []
    for k, poly in enumerate(seg):
        try:
            coords = np.asarray(poly, np.float64) if isinstance(poly, list) else np.zeros(1)
        except (TypeError, ValueError):
            coords = np.zeros(1)
        if coords.ndim != 1 or len(coords) % 2 or not np.isfinite(coords).all():
            raise FormatError(
                f"{where}: expected polygon {k} to be an even-length list of finite numbers, got {poly!r}"[
                    :300
                ]
            )
        if len(coords) < 6:
            warn(f"{where}: skipped polygon {k} with {len(coords) // 2} point(s); a polygon needs at least 3")
            continue
        xy = coords.reshape(-1, 2)
        if polygon_area(xy) == 0:
            warn(f"{where}: polygon {k} encloses no area (its {len(xy)} points are kept)")
        polygons.append(xy.astype(np.float32))
    return polygons or None


def polygon_area(xy: np.ndarray) -> float:
    """The shoelace area of a ``float64[K, 2]`` polygon (x, y)."""
    x, y = xy[:, 0], xy[:, 1]
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2


def checked_rle(seg: dict, where: str, height: int, width: int) -> dict:
    size, counts = seg.get("size"), seg.get("counts")
    if not isinstance(size, list) or len(size) != 2 or not isinstance(counts, (str, list)):
        raise FormatError(f"{where}: expected RLE {{'size': [h, w], 'counts': ...}}, got keys {sorted(seg)}")
    if size != [height, width]:
        raise FormatError(f"{where}: expected RLE size [{height}, {width}] (the image), got {size}")
    if isinstance(counts, list):
        if not all(type(c) is int and c >= 0 for c in counts):
            raise FormatError(f"{where}: expected uncompressed RLE counts to be integers >= 0"[:300])
        if sum(counts) != height * width:
            raise FormatError(
                f"{where}: expected uncompressed RLE counts summing to {height * width}, got {sum(counts)}"
            )
    else:
        from fewclick.io import rle

        try:  # from its runs: a large image's mask is never decoded
            rle.check_rle({"size": [height, width], "counts": counts}, height, width)
        except ValueError as exc:
            raise FormatError(f"{where}: {exc}") from None
    return {"size": [height, width], "counts": counts}
