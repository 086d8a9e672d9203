"""COCO panoptic: a JSON of ``segments_info`` per image plus one PNG per image whose
pixels hold segment ids (``id = R + 256 G + 256^2 B``, 0 = unlabelled).

``read(path)`` takes the JSON, or a folder holding panoptic JSONs (in the folder itself,
``sample_data/`` or ``annotations/``; every one found is merged). For ``<name>.json`` the
PNGs are in ``<name>/`` beside it (COCO's ``annotations/panoptic_val2017/`` and
panopticapi's ``sample_data/panoptic_examples/``); images are looked for in
``input_images/`` beside the JSON (panopticapi's sample), then the split folder
(``val2017/`` for ``panoptic_val2017.json``) beside the JSON or beside ``annotations/``,
then ``images/`` and the root. Categories come from the JSON, else from
``panoptic_coco_categories.json`` beside it or in the root.

Every segment becomes one object: its mask as compressed RLE, ``bbox`` -> XYXY,
``iscrowd`` -> ``ignore``, ``category_id`` -> label. Things and stuff are both objects;
``Dataset.extra["isthing"]`` says which classes are things, and each image's
``objects.extra["segment_ids"]`` keeps the PNG ids.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fewclick.io import rle
from fewclick.io.coco import _MAX_JSON_FILES, CategoryTable, xywh_to_xyxy
from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.errors import FormatError
from fewclick.io.images import ImageError, load_array
from fewclick.io.parsing import clip_boxes, find_image, json_kind, load_json, warn
from fewclick.types import Objects

__all__ = ["sniff", "read", "segment_ids"]

_CATEGORIES_FILE = "panoptic_coco_categories.json"


def sniff(path: Path) -> bool:
    """True for a COCO panoptic JSON, or a folder holding one (see :func:`read`) and no
    ``annotations/instances_*.json``."""
    path = Path(path)
    if path.is_file():
        return json_kind(path) == "panoptic"
    # A COCO root with instances_*.json beside panoptic_*.json is read as instances.
    instances = path.is_dir() and any((path / "annotations").glob("instances_*.json"))
    return path.is_dir() and not instances and bool(_json_files(path))


def _json_files(folder: Path) -> list[Path]:
    for where in (folder, folder / "sample_data", folder / "annotations"):
        candidates = sorted(where.glob("*.json"))
        if len(candidates) > _MAX_JSON_FILES:  # per-image JSON files, not COCO
            continue
        found = [p for p in candidates if json_kind(p) == "panoptic"]
        if found:
            return found
    return []


def segment_ids(png: np.ndarray) -> np.ndarray:
    """An RGB panoptic PNG ``uint8[H, W, 3]`` -> segment ids ``int64[H, W]`` (R + 256 G + 256^2 B)."""
    rgb = np.asarray(png).astype(np.int64)
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {rgb.shape}")
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def read(path: Path, images_dir: Path | None = None, png_dir: Path | None = None) -> Dataset:
    """Read one panoptic JSON (or every one in a folder) into a :class:`Dataset`.

    ``images_dir`` and ``png_dir`` override where the images and the segment PNGs are.
    """
    path = Path(path)
    files = [path] if path.is_file() else _json_files(path)
    if not files:
        raise FormatError(f"{path}: expected a COCO panoptic JSON or a folder holding one, got none")
    root = path if path.is_dir() else path.parent
    cats = CategoryTable()
    images: list[ImageRecord] = []
    for file in files:
        data = load_json(file)
        if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
            raise FormatError(f"{file}: expected a JSON object with an 'annotations' list")
        label_of = cats.add(_categories(data, file, root), file)
        pngs = Path(png_dir) if png_dir else _png_dir(file, root)
        folders = _image_folders(file, root, images_dir)
        images += _read_images(data, file, label_of, pngs, folders)
    isthing = [bool(c.get("isthing", 1)) for c in cats.records]
    return Dataset(
        classes=cats.names,
        images=images,
        format="coco_panoptic",
        root=root,
        category_ids=cats.ids,
        extra={"categories": cats.records, "isthing": isthing},
    )


def _categories(data: dict, file: Path, root: Path) -> list:
    if data.get("categories"):
        return data["categories"]
    for candidate in (file.parent / _CATEGORIES_FILE, root / _CATEGORIES_FILE):
        if candidate.is_file():
            return load_json(candidate)
    raise FormatError(
        f"{file}: expected 'categories' in the JSON or a {_CATEGORIES_FILE} beside it, got neither"
    )


def _png_dir(file: Path, root: Path) -> Path:
    for candidate in (file.parent / file.stem, root / file.stem):
        if candidate.is_dir():
            return candidate
    return file.parent / file.stem


def _image_folders(file: Path, root: Path, images_dir: Path | None) -> list[Path]:
    split = file.stem.removeprefix("panoptic_")
    folders = [
        file.parent / "input_images",
        file.parent / split,
        file.parent.parent / split,
        root / split,
        file.parent / "images",
        root / "images",
        file.parent,
        root,
    ]
    return list(dict.fromkeys(([Path(images_dir)] if images_dir else []) + folders))


def _read_images(
    data: dict, file: Path, label_of: dict, pngs: Path, folders: list[Path]
) -> list[ImageRecord]:
    infos = {info["id"]: info for info in data.get("images", [])}
    by_image = {}
    for ann in data["annotations"]:
        if not isinstance(ann, dict) or ann.get("image_id") not in infos:
            got = ann.get("image_id") if isinstance(ann, dict) else ann
            raise FormatError(f"{file}: expected each annotation's image_id to be in 'images', got {got!r}")
        by_image[ann["image_id"]] = ann
    records, missing = [], 0
    for image_id, info in infos.items():
        width, height = int(info["width"]), int(info["height"])
        ann = by_image.get(image_id)
        objects = Objects.empty() if ann is None else _objects(ann, file, label_of, pngs, (height, width))
        image_path = find_image(info["file_name"], folders)
        missing += image_path is None
        extra = {"coco": {k: v for k, v in info.items() if k not in ("id", "file_name", "width", "height")}}
        records.append(ImageRecord(info["file_name"], width, height, objects, image_path, image_id, extra))
    if missing:
        looked = ", ".join(map(str, folders))
        warn(f"{file}: {missing} of {len(infos)} image files not found (looked in {looked})")
    return records


def _objects(ann: dict, file: Path, label_of: dict, pngs: Path, shape: tuple[int, int]) -> Objects:
    png = pngs / ann.get("file_name", "")
    where = f"{file}: image {ann['image_id']}"
    try:
        ids = segment_ids(load_array(png))
    except (FileNotFoundError, ImageError, ValueError) as exc:
        raise FormatError(f"{where}: expected a readable RGB segment PNG at {png}, got {exc}") from None
    if ids.shape != shape:
        raise FormatError(
            f"{where}: expected a segment PNG of {shape[1]} x {shape[0]}, got {png} of {ids.shape}"
        )
    segments = ann.get("segments_info", [])
    labels, boxes, masks, crowd, sids = [], [], [], [], []
    for seg in segments:
        if seg.get("category_id") not in label_of:
            raise FormatError(
                f"{where}: segment {seg.get('id')}: unknown category_id {seg.get('category_id')!r}"
            )
        mask = ids == seg["id"]
        if not mask.any():
            warn(f"{where}: segment {seg['id']} has no pixels in {png}")
        labels.append(label_of[seg["category_id"]])
        boxes.append(xywh_to_xyxy(seg["bbox"])[0])
        masks.append(rle.mask_to_rle(mask))
        crowd.append(bool(seg.get("iscrowd", 0)))
        sids.append(int(seg["id"]))
    unknown = sorted(set(np.unique(ids).tolist()) - set(sids) - {0})
    if unknown:
        warn(f"{where}: {png} has segment ids {unknown[:10]} that segments_info does not list")
    if not segments:
        return Objects.empty()
    boxes = clip_boxes(np.stack(boxes), shape[1], shape[0], str(file), [f"segment {s}" for s in sids])
    return Objects(labels, boxes, segmentations=masks, ignore=crowd, extra={"segment_ids": sids})
