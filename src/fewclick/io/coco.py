"""COCO instances JSON: boxes, polygons, RLE and crowd flags.

``read(path)`` takes a JSON file, or a folder holding ``annotations/instances_*.json``
(every such file is read and merged; without them, every COCO instances JSON in
``annotations/`` or in the folder itself). An image's file is looked for in the folder
named after the split (``train2017/`` for ``instances_train2017.json``) beside the JSON
or beside ``annotations/``, then beside the JSON, then in the root and ``root/images``.

Mapping: ``bbox`` [x, y, w, h] -> XYXY; polygons -> list of ``float32[K, 2]``; RLE
(compressed str or uncompressed list counts) kept as stored; ``iscrowd`` -> ``ignore``;
classes in the file's ``categories`` order, their ids in ``Dataset.category_ids``.
fewclick adds three optional annotation fields, written and read back so nothing is lost:
``"rbox": [cx, cy, w, h, angle]`` (oriented box, radians, fewclick's convention),
``"point": [x, y]`` (an annotated point; a point-only object has no ``bbox`` and area 0)
and ``"difficult": 0/1/2``. A ``"score"`` (COCO results carry one) is kept in
``Objects.extra["scores"]`` (NaN where an annotation has none) and written back.

Repairs, each with a :class:`~fewclick.io.parsing.FormatWarning`: boxes reaching outside
the image are clipped to it, and objects wholly outside it are skipped; polygons with
fewer than 3 points are skipped (the annotation keeps its box) and polygons without area
reported; annotations with no geometry (no bbox, no pixels, no point) are skipped. Structural errors
(truncated JSON, duplicate or unknown image or category id, malformed, NaN or infinite
numbers, image sizes that are not positive integers or exceed the pixel limit) raise
:class:`~fewclick.io.errors.FormatError`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from fewclick.io.coco_fields import checked_segmentation, flag, image_infos, int_id, known_id, numbers
from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.errors import FormatError
from fewclick.io.leftout import object_scores
from fewclick.io.parsing import clip_boxes, drop_outside, find_image, json_kind, load_json, warn
from fewclick.types import Objects

__all__ = ["sniff", "read", "write", "xywh_to_xyxy", "xyxy_to_xywh"]

#: A folder with more JSON files than this is not searched for COCO files.
_MAX_JSON_FILES = 20


def xywh_to_xyxy(boxes: Any) -> np.ndarray:
    """COCO ``[x, y, w, h]`` boxes ``float[N, 4]`` -> XYXY ``float32[N, 4]`` (summed in float64)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1).astype(np.float32)


def xyxy_to_xywh(boxes: Any) -> np.ndarray:
    """XYXY boxes ``float[N, 4]`` -> COCO ``[x, y, w, h]`` ``float64[N, 4]``.

    float64 keeps ``w = x1 - x0`` exact for float32 inputs, so :func:`xywh_to_xyxy`
    gives the float32 boxes back bit for bit.
    """
    b = np.asarray(boxes, np.float32).astype(np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)


# --------------------------------------------------------------------------- reading
def sniff(path: Path) -> bool:
    """True for a COCO instances JSON file, or a folder of them (see :func:`read`)."""
    path = Path(path)
    if path.is_file():
        return json_kind(path) == "instances"
    return path.is_dir() and bool(_json_files(path))


def _json_files(folder: Path) -> list[Path]:
    annotations = folder / "annotations"
    named = sorted(annotations.glob("instances_*.json"))
    if named:
        return [p for p in named if json_kind(p) == "instances"]
    for where in (annotations, folder):
        candidates = sorted(where.glob("*.json"))
        if len(candidates) > _MAX_JSON_FILES:  # per-image JSON files (LabelMe, ADE20K), not COCO
            continue
        found = [p for p in candidates if json_kind(p) == "instances"]
        if found:
            return found
    return []


def read(path: Path, images_dir: Path | None = None) -> Dataset:
    """Read one COCO instances JSON, or merge every one in a folder, into a :class:`Dataset`.

    ``images_dir`` overrides where image files are looked for. Image ids must be unique
    across merged files; categories with one id must have one name.
    """
    path = Path(path)
    files = [path] if path.is_file() else _json_files(path)
    if not files:
        raise FormatError(
            f"{path}: expected a COCO instances JSON or a folder with annotations/*.json, got none"
        )
    root = path if path.is_dir() else path.parent
    cats = CategoryTable()
    images: list[ImageRecord] = []
    seen: dict[int, Path] = {}
    for file in files:
        for rec in _read_file(file, root, cats, images_dir):
            if rec.id in seen:
                raise FormatError(f"{file}: image id {rec.id} is also in {seen[rec.id]}; expected unique ids")
            seen[rec.id] = file
            images.append(rec)
    return cats.dataset(images, "coco", root)


class CategoryTable:
    """Category ids and names, merged over files in first-seen order."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.names: list[str] = []
        self.records: list[dict] = []

    def add(self, categories: Any, where: Path) -> dict[int, int]:
        if not isinstance(categories, list):
            raise FormatError(f"{where}: expected 'categories' to be a list, got {type(categories).__name__}")
        for cat in categories:
            if not isinstance(cat, dict) or "id" not in cat or "name" not in cat:
                raise FormatError(f"{where}: expected each category to have 'id' and 'name', got {cat!r}")
            cid, name = int_id(cat["id"], f"{where}: category {cat['name']!r}"), str(cat["name"])
            if cid in self.ids:
                known = self.names[self.ids.index(cid)]
                if known != name:
                    raise FormatError(f"{where}: category id {cid} is named {name!r}, expected {known!r}")
                continue
            self.ids.append(cid)
            self.names.append(name)
            self.records.append(dict(cat))
        return {cid: i for i, cid in enumerate(self.ids)}

    def dataset(self, images: list[ImageRecord], format: str, root: Path, **extra) -> Dataset:
        """A :class:`Dataset` of ``images`` whose classes are these categories: their ids in
        ``category_ids``, their records in ``extra["categories"]`` (then ``extra``)."""
        return Dataset(
            classes=self.names,
            images=images,
            format=format,
            root=root,
            category_ids=self.ids,
            extra={"categories": self.records, **extra},
        )


def _image_folders(file: Path, root: Path, images_dir: Path | None) -> list[Path]:
    split = file.stem.removeprefix("instances_")
    folders = [
        file.parent / split,
        file.parent.parent / split,
        root / split,
        file.parent,
        root,
        root / "images",
    ]
    return list(dict.fromkeys(([Path(images_dir)] if images_dir else []) + folders))


def _read_file(file: Path, root: Path, cats: CategoryTable, images_dir: Path | None) -> list[ImageRecord]:
    data = load_json(file)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise FormatError(f"{file}: expected a JSON object with an 'images' list, got {type(data).__name__}")
    if not isinstance(data.get("annotations", []), list):
        raise FormatError(
            f"{file}: expected 'annotations' to be a list, got {type(data['annotations']).__name__}"
        )
    label_of = cats.add(data.get("categories", []), file)
    folders = _image_folders(file, root, images_dir)
    infos = image_infos(data["images"], file)
    rows: dict[int, list[dict]] = {image_id: [] for image_id in infos}
    ann_ids: set = set()
    for ann in data.get("annotations", []):
        row = _parse_annotation(ann, file, infos, label_of)
        if row is not None:
            rows[ann["image_id"]].append(row)
            if row["id"] in ann_ids:
                warn(f"{file}: annotation id {row['id']!r} appears more than once; each is kept")
            ann_ids.add(row["id"])
    records, missing = [], 0
    for image_id, info in infos.items():
        image_path = find_image(info["file_name"], folders)
        missing += image_path is None
        objects = _objects(rows[image_id], info, file)
        extra = {"coco": {k: v for k, v in info.items() if k not in ("id", "file_name", "width", "height")}}
        extra["source"] = file.name
        records.append(
            ImageRecord(
                info["file_name"],
                int(info["width"]),
                int(info["height"]),
                objects,
                image_path,
                image_id,
                extra,
            )
        )
    if missing:
        looked = ", ".join(map(str, folders))
        warn(f"{file}: {missing} of {len(infos)} image files not found (looked in {looked})")
    return records


def _parse_annotation(ann: Any, file: Path, infos: dict, label_of: dict) -> dict | None:
    """The annotation's fields, or None (with a warning) when it has no geometry left."""
    if not isinstance(ann, dict) or "image_id" not in ann or "category_id" not in ann:
        raise FormatError(f"{file}: expected annotations with image_id and category_id, got {ann!r}"[:300])
    aid = ann.get("id", "?")
    where = f"{file}: annotation {aid}"
    if not known_id(ann["image_id"], infos):
        raise FormatError(f"{where}: expected an image_id listed in 'images', got {ann['image_id']!r}")
    if not known_id(ann["category_id"], label_of):
        known = sorted(label_of)
        raise FormatError(f"{where}: expected a category_id among {known}, got {ann['category_id']!r}")
    info = infos[ann["image_id"]]
    seg = checked_segmentation(ann.get("segmentation"), where, info["height"], info["width"])
    row = {
        "id": aid,
        "label": label_of[ann["category_id"]],
        "box": _box(ann.get("bbox"), seg, where, info["height"], info["width"]),
        "seg": seg,
        "ignore": bool(flag(ann.get("iscrowd", 0), "iscrowd", (0, 1), where)),
        "rbox": numbers(ann.get("rbox"), 5, "rbox", where),
        "point": numbers(ann.get("point"), 2, "point", where),
        "difficult": flag(ann.get("difficult", 0), "difficult", (0, 1, 2), where),
        "score": _score(ann.get("score"), where),
    }
    if row["rbox"] is not None and (row["rbox"][2] < 0 or row["rbox"][3] < 0):
        raise FormatError(f"{where}: expected 'rbox' [cx, cy, w, h, angle] with w, h >= 0, got {ann['rbox']}")
    if np.isnan(row["box"]).any() and row["point"] is None:
        warn(f"{where}: skipped: no bbox, no segmentation pixels inside the image and no point")
        return None
    return row


def _score(value: Any, where: str) -> float:
    if value is None:
        return float("nan")
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)
    if not ok:
        raise FormatError(f"{where}: expected a finite number as 'score', got {value!r}")
    return float(value)


def _box(bbox: Any, seg: Any, where: str, height: int, width: int) -> np.ndarray:
    if bbox is None or (isinstance(bbox, list) and not bbox):
        if seg is None:
            return np.full(4, np.nan, np.float32)
        from fewclick.io import rle

        ys, xs = np.nonzero(rle.segmentation_to_mask(seg, height, width))
        if not len(xs):
            return np.full(4, np.nan, np.float32)
        return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
    xywh = numbers(bbox, 4, "bbox", where)
    if xywh[2] < 0 or xywh[3] < 0:
        raise FormatError(f"{where}: expected bbox [x, y, w, h] with w, h >= 0, got {bbox!r}")
    return xywh_to_xyxy(xywh)[0]


def _objects(rows: list[dict], info: dict, file: Path) -> Objects:
    if rows:
        boxes = np.stack([r["box"] for r in rows]).astype(np.float32)
        items = [f"annotation {r['id']}" for r in rows]
        points = np.stack([np.full(2, np.nan) if r["point"] is None else r["point"] for r in rows])
        keep = drop_outside(boxes, info["width"], info["height"], str(file), items, points)
        rows = [r for r, k in zip(rows, keep, strict=True) if k]
    if not rows:
        return Objects.empty()
    boxes = clip_boxes(
        np.stack([r["box"] for r in rows]).astype(np.float32),
        info["width"],
        info["height"],
        str(file),
        [f"annotation {r['id']}" for r in rows],
    )
    return Objects(
        labels=np.array([r["label"] for r in rows], np.int64),
        boxes=boxes,
        rboxes=_column(rows, "rbox", 5),
        points=_column(rows, "point", 2),
        segmentations=[r["seg"] for r in rows] if any(r["seg"] is not None for r in rows) else None,
        ignore=np.array([r["ignore"] for r in rows], bool),
        difficult=np.array([r["difficult"] for r in rows], np.uint8),
        extra=_scores(rows),
    )


def _scores(rows: list[dict]) -> dict:
    scores = np.array([r["score"] for r in rows], np.float32)
    return {} if np.isnan(scores).all() else {"scores": scores}


def _column(rows: list[dict], key: str, width: int) -> np.ndarray | None:
    if all(r[key] is None for r in rows):
        return None
    return np.stack([np.full(width, np.nan) if r[key] is None else r[key] for r in rows]).astype(np.float32)


# --------------------------------------------------------------------------- writing
def _file_name(rec, folder: Path) -> str:
    """The image's name as written: its own ``file_name`` when that finds the image from
    the JSON's folder, else the image file's path relative to that folder (so a converted
    dataset still finds images that stay where they are)."""
    if rec.path is None or (folder / rec.file_name).resolve() == Path(rec.path).resolve():
        return rec.file_name
    return Path(os.path.relpath(Path(rec.path).resolve(), folder.resolve())).as_posix()


def write(dataset: Dataset, path: Path) -> None:
    """Write ``dataset`` as one COCO instances JSON file at ``path`` (see the module doc).

    Image ids are kept when every image has a unique one, else numbered 1..N; annotation
    ids are 1..M; category ids are ``dataset.category_ids`` (default 1..len(classes)).
    """
    path = Path(path)
    cat_ids = dataset.category_ids or list(range(1, len(dataset.classes) + 1))
    if len(cat_ids) != len(dataset.classes):
        raise ValueError(f"expected one category id per class ({len(dataset.classes)}), got {len(cat_ids)}")
    ids = [rec.id for rec in dataset.images]
    if None in ids or len(set(ids)) != len(ids):
        ids = list(range(1, len(ids) + 1))
    images, annotations = [], []
    for image_id, rec in zip(ids, dataset.images, strict=True):
        info = {**rec.extra.get("coco", {}), "id": image_id, "file_name": _file_name(rec, path.parent)}
        images.append({**info, "width": rec.width, "height": rec.height})
        for i in range(len(rec.objects)):
            ann = _annotation(rec, i, cat_ids)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, **ann})
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(
            {"images": images, "annotations": annotations, "categories": _categories(dataset, cat_ids)}, f
        )


def _categories(dataset: Dataset, cat_ids: list[int]) -> list[dict]:
    known = {
        (c.get("id"), c.get("name")): c for c in dataset.extra.get("categories", []) if isinstance(c, dict)
    }
    return [
        {**known.get((cid, name), {}), "id": int(cid), "name": name}
        for cid, name in zip(cat_ids, dataset.classes, strict=True)
    ]


def _annotation(rec: ImageRecord, i: int, cat_ids: list[int]) -> dict:
    objs = rec.objects
    scores = object_scores(objs)
    ann: dict[str, Any] = {"category_id": int(cat_ids[objs.labels[i]]), "iscrowd": int(objs.ignore[i])}
    box = objs.boxes[i]
    if not np.isnan(box).any():
        ann["bbox"] = xyxy_to_xywh(box)[0].tolist()
    seg = None if objs.segmentations is None else objs.segmentations[i]
    if isinstance(seg, dict):
        ann["segmentation"] = {"size": [int(s) for s in seg["size"]], "counts": _counts(seg["counts"])}
    elif seg:
        ann["segmentation"] = [np.asarray(p, np.float32).astype(np.float64).reshape(-1).tolist() for p in seg]
    ann["area"] = _area(seg, box, rec.height, rec.width)
    if objs.rboxes is not None and not np.isnan(objs.rboxes[i]).any():
        ann["rbox"] = objs.rboxes[i].astype(np.float64).tolist()
    if objs.points is not None and not np.isnan(objs.points[i]).any():
        ann["point"] = objs.points[i].astype(np.float64).tolist()
    if objs.difficult[i]:
        ann["difficult"] = int(objs.difficult[i])
    if scores is not None and not np.isnan(scores[i]):
        ann["score"] = round(float(scores[i]), 5)
    return ann


def _counts(counts: Any) -> str | list[int]:
    if isinstance(counts, bytes):
        return counts.decode("ascii")
    return counts if isinstance(counts, str) else [int(c) for c in counts]


def _area(seg: Any, box: np.ndarray, height: int, width: int) -> float:
    if seg and height > 0 and width > 0:
        from fewclick.io import rle

        return rle.mask_area(seg, height, width)
    if np.isnan(box).any():
        return 0.0
    return float((box[2] - box[0]) * (box[3] - box[1]))
