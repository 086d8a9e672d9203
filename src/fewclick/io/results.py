"""Detection results in the COCO results format, read against a dataset.

A results file is a JSON list of entries::

    {"image_id": 3 | "file_name": "P0003.png",
     "category_id": 2 | "category": "ship",
     "bbox": [x, y, w, h] | "poly": [x1, y1, ..., x4, y4] | "segmentation": RLE,
     "score": 0.9}

``category_id`` is the dataset's own id (COCO's ids; for formats without ids, 1 + the
index into the class list that ``fewclick data info`` prints). ``poly`` is an oriented
box as DOTA's four corners; ``segmentation`` a COCO RLE, whose box is the mask's.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fewclick.io.dataset import Dataset
from fewclick.types import Detections, polygons_to_boxes, polygons_to_rboxes


class ResultsError(ValueError):
    """A results file that is not valid JSON or has an entry that does not fit the dataset."""


def read_results(path: str | Path, dataset: Dataset) -> list[Detections]:
    """One :class:`Detections` per image of ``dataset``, in its order.

    Oriented entries (``poly``) give detections with ``rboxes``; when a file mixes
    ``poly`` and ``bbox`` entries, the axis-aligned ones become unrotated rboxes.
    """
    path = Path(path)
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc})") from None
    except UnicodeDecodeError as exc:
        raise ResultsError(
            f"{path}: expected UTF-8 JSON text, got undecodable bytes ({exc.reason})"
        ) from None
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read ({exc})") from None
    if not isinstance(entries, list):
        raise ResultsError(f"{path}: expected a JSON list of detections, got {type(entries).__name__}")
    image_index = _image_index(dataset)
    class_index = _class_index(dataset)
    oriented = any(isinstance(e, dict) and "poly" in e for e in entries)
    per_image: list[list[tuple]] = [[] for _ in dataset.images]
    for i, entry in enumerate(entries):
        where = f"{path}: entry {i}"
        if not isinstance(entry, dict):
            raise ResultsError(f"{where}: expected an object, got {type(entry).__name__}")
        img = _lookup(image_index, entry, ("image_id", "file_name"), where, "image")
        label = _lookup(class_index, entry, ("category_id", "category"), where, "category")
        score = _number(entry.get("score"), where, "score")
        per_image[img].append((_geometry(entry, where, dataset.images[img]), label, score))
    return [_to_detections(items, oriented) for items in per_image]


def _image_index(dataset: Dataset) -> dict:
    index: dict = {}
    for i, rec in enumerate(dataset.images):
        if rec.id is not None:
            index[rec.id] = i
        for name in (rec.file_name, Path(rec.file_name).name, Path(rec.file_name).stem):
            index.setdefault(name, i)
    return index


def _class_index(dataset: Dataset) -> dict:
    ids = dataset.category_ids or list(range(1, len(dataset.classes) + 1))
    index: dict = {cid: i for i, cid in enumerate(ids)}
    index.update({name: i for i, name in enumerate(dataset.classes)})
    return index


def _lookup(index: dict, entry: dict, keys: tuple[str, str], where: str, what: str) -> int:
    for key in keys:
        if key in entry:
            value = entry[key]
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if type(value) not in (int, str) or value not in index:
                raise ResultsError(f"{where}: unknown {what} {key}={value!r} (not in the dataset)")
            return index[value]
    raise ResultsError(f"{where}: expected one of {list(keys)}, found keys {sorted(entry)}")


def _number(value, where: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise ResultsError(f"{where}: expected a finite number for {name!r}, got {value!r}")
    return float(value)


def _geometry(entry: dict, where: str, record) -> tuple[np.ndarray, np.ndarray | None]:
    """(XYXY box, rbox or None) of one entry."""
    if "poly" in entry:
        poly = _array(entry["poly"])
        if poly.shape != (8,) or not np.isfinite(poly).all():
            raise ResultsError(f"{where}: expected 'poly' as 8 finite numbers, got {entry['poly']!r}")
        corners = poly.reshape(1, 4, 2)
        return polygons_to_boxes(corners)[0], polygons_to_rboxes(corners)[0]
    if "bbox" in entry:
        box = _array(entry["bbox"])
        if box.shape != (4,) or not np.isfinite(box).all() or box[2] < 0 or box[3] < 0:
            raise ResultsError(
                f"{where}: expected 'bbox' as [x, y, w, h] with w, h >= 0, got {entry['bbox']!r}"
            )
        return np.array([box[0], box[1], box[0] + box[2], box[1] + box[3]], np.float32), None
    if "segmentation" in entry:
        from fewclick.io.rle import segmentation_to_mask

        try:
            mask = segmentation_to_mask(entry["segmentation"], record.height, record.width)
        except (ValueError, TypeError, KeyError) as exc:
            raise ResultsError(f"{where}: bad 'segmentation' ({exc})") from None
        ys, xs = np.nonzero(mask)
        if len(xs) == 0:
            return np.zeros(4, np.float32), None
        return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32), None
    raise ResultsError(f"{where}: expected one of 'bbox', 'poly' or 'segmentation'")


def _array(value) -> np.ndarray:
    """``value`` as float64 numbers, or an empty array when it is not a list of numbers."""
    if isinstance(value, str):
        return np.zeros(0)
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return np.zeros(0)


def _to_detections(items: list[tuple], oriented: bool) -> Detections:
    if not items:
        return Detections.empty(oriented=oriented)
    boxes = np.array([g[0] for g, _, _ in items], np.float32)
    rboxes = None
    if oriented:
        rboxes = np.array([g[1] if g[1] is not None else _unrotated(g[0]) for g, _, _ in items], np.float32)
    return Detections(boxes, [s for _, _, s in items], [lab for _, lab, _ in items], rboxes=rboxes)


def _unrotated(box: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = box
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0, 0.0], np.float32)


def write_results(path: str | Path, dataset: Dataset, detections: list[Detections]) -> None:
    """Write per-image detections (dataset order) as a COCO results JSON (``poly`` when oriented)."""
    from fewclick.types import rboxes_to_polygons

    ids = dataset.category_ids or list(range(1, len(dataset.classes) + 1))
    out = []
    for rec, det in zip(dataset.images, detections, strict=True):
        key = {"image_id": rec.id} if rec.id is not None else {"file_name": rec.file_name}
        polys = rboxes_to_polygons(det.rboxes) if det.rboxes is not None else None
        for j in range(len(det)):
            item = dict(key, category_id=int(ids[det.labels[j]]), score=round(float(det.scores[j]), 5))
            if polys is not None:
                item["poly"] = [round(float(v), 2) for v in polys[j].reshape(-1)]
            else:
                x0, y0, x1, y1 = (float(v) for v in det.boxes[j])
                item["bbox"] = [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)]
            out.append(item)
    Path(path).write_text(json.dumps(out))
