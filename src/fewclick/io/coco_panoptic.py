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

Every segment becomes one object: its mask as compressed RLE, ``bbox`` -> XYXY (the box
of its pixels when it has none),
``iscrowd`` -> ``ignore``, ``category_id`` -> label. Things and stuff are both objects;
``Dataset.extra["isthing"]`` says which classes are things, and each image's
``objects.extra["segment_ids"]`` keeps the PNG ids. As in panopticapi's checks, a PNG
id that ``segments_info`` does not list, a listed segment without pixels, a repeated
segment id and a missing PNG are errors naming the image.

``write(dataset, path)`` writes the JSON at ``path`` and the PNGs into the folder beside
it named after it (``out/panoptic.json`` + ``out/panoptic/``), the layout ``read``
finds; see :func:`write` for what is kept and how overlapping masks are resolved.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fewclick.io import rle
from fewclick.io.coco import _MAX_JSON_FILES, CategoryTable, xywh_to_xyxy
from fewclick.io.coco_fields import flag, image_infos, int_id, known_id, numbers
from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.errors import FormatError
from fewclick.io.images import ImageError, load_array, save_image
from fewclick.io.labelmap import Losses, label_windows, owner_map, png_names
from fewclick.io.parsing import clip_boxes, find_image, json_kind, link_image, load_json, warn
from fewclick.types import Objects

__all__ = ["sniff", "read", "write", "segment_ids", "segment_png"]

#: Segment ids fit in the PNG's three 8-bit channels.
MAX_SEGMENT_ID = 256**3 - 1

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


def segment_png(ids: np.ndarray) -> np.ndarray:
    """Segment ids ``int[H, W]`` (0 .. 256^3 - 1) -> the RGB PNG pixels ``uint8[H, W, 3]``."""
    ids = np.asarray(ids, np.int64)
    if ids.ndim != 2 or (ids.size and (ids.min() < 0 or ids.max() > MAX_SEGMENT_ID)):
        raise ValueError(f"expected segment ids of shape (H, W) in 0..{MAX_SEGMENT_ID}, got {ids.shape}")
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=-1).astype(np.uint8)


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
        # the segment PNGs are never the images, even where a folder is named like a split
        folders = [f for f in _image_folders(file, root, images_dir) if f.resolve() != pngs.resolve()]
        images += _read_images(data, file, label_of, pngs, folders)
    isthing = [bool(c.get("isthing", 1)) for c in cats.records]
    return cats.dataset(images, "coco_panoptic", root, isthing=isthing)


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
    infos = image_infos(data.get("images", []), file)
    by_image: dict = {}
    for ann in data["annotations"]:
        if not isinstance(ann, dict) or not known_id(ann.get("image_id"), infos):
            got = ann.get("image_id") if isinstance(ann, dict) else ann
            raise FormatError(f"{file}: expected each annotation's image_id to be in 'images', got {got!r}")
        if ann["image_id"] in by_image:
            raise FormatError(f"{file}: image {ann['image_id']}: expected one annotation per image, got two")
        by_image[ann["image_id"]] = ann
    records, missing = [], 0
    for image_id, info in infos.items():
        width, height = info["width"], info["height"]
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
    where = f"{file}: image {ann['image_id']}"
    ids, png = _segment_ids(ann, where, pngs, shape)
    segments = ann.get("segments_info", [])
    if not isinstance(segments, list):
        raise FormatError(f"{where}: expected 'segments_info' to be a list, got {type(segments).__name__}")
    sids = [_segment_id(seg, where, label_of) for seg in segments]
    repeated = sorted({s for s in sids if sids.count(s) > 1})
    if repeated:
        raise FormatError(f"{where}: expected unique segment ids in segments_info, got {repeated[:10]} twice")
    in_png = set(np.unique(ids).tolist()) - {0}
    unlisted = sorted(in_png - set(sids))
    if unlisted:
        raise FormatError(
            f"{where}: {png} holds segment ids {unlisted[:10]} that segments_info does not list"
        )
    empty = [s for s in sids if s not in in_png]
    if empty:
        raise FormatError(f"{where}: segments {empty[:10]} of segments_info have no pixels in {png}")
    if not segments:
        return Objects.empty()
    masks = [rle.mask_to_rle(ids == sid) for sid in sids]
    boxes = [
        _box(seg, mask, f"{where}: segment {sid}")
        for seg, mask, sid in zip(segments, masks, sids, strict=True)
    ]
    return Objects(
        [label_of[seg["category_id"]] for seg in segments],
        clip_boxes(np.stack(boxes), shape[1], shape[0], str(file), [f"segment {s}" for s in sids]),
        segmentations=masks,
        ignore=[bool(flag(seg.get("iscrowd", 0), "iscrowd", (0, 1), where)) for seg in segments],
        extra={"segment_ids": sids},
    )


def _segment_id(seg: object, where: str, label_of: dict) -> int:
    if not isinstance(seg, dict) or "id" not in seg:
        raise FormatError(
            f"{where}: expected each segment of segments_info to have an 'id', got {seg!r}"[:300]
        )
    sid = int_id(seg["id"], f"{where}: segment {seg['id']!r}")
    if not known_id(seg.get("category_id"), label_of):
        raise FormatError(f"{where}: segment {sid}: unknown category_id {seg.get('category_id')!r}")
    return sid


def _box(seg: dict, mask: dict, where: str) -> np.ndarray:
    """The segment's ``bbox`` as XYXY, or the box of its pixels when it has none."""
    xywh = numbers(seg.get("bbox"), 4, "bbox", where)
    return rle.rle_boxes([mask])[0] if xywh is None else xywh_to_xyxy(xywh)[0]


def _segment_ids(ann: dict, where: str, pngs: Path, shape: tuple[int, int]) -> tuple[np.ndarray, Path]:
    name = ann.get("file_name")
    if not isinstance(name, str) or not name:
        raise FormatError(f"{where}: expected the annotation's 'file_name' of its segment PNG, got {name!r}")
    png = pngs / name
    if not png.is_file():
        raise FormatError(f"{where}: expected its segment PNG at {png}, found no such file")
    try:
        ids = segment_ids(load_array(png))
    except (ImageError, ValueError) as exc:
        raise FormatError(f"{where}: expected a readable RGB segment PNG at {png}, got {exc}") from None
    if ids.shape != shape:
        raise FormatError(
            f"{where}: expected a segment PNG of {shape[1]} x {shape[0]}, got {png} of {ids.shape}"
        )
    return ids, png


# --------------------------------------------------------------------------- writing
def write(dataset: Dataset, path: Path) -> list[str]:
    """Write ``dataset`` as a COCO panoptic JSON at ``path`` plus one segment PNG per image
    in ``path.parent / path.stem`` (named after the image: ``a.jpg`` -> ``a.png``), and
    symlink the images that exist on disk into ``path.parent / "images"`` (nothing is
    copied; image ``file_name`` entries stay as they are).

    Every object with a mask (RLE or polygons) becomes one segment: ``id`` from
    ``objects.extra["segment_ids"]`` when those are unique and fit the PNG (a read panoptic
    dataset keeps its ids), else 1..N; ``category_id`` from ``dataset.category_ids``
    (default 1..len(classes)); ``iscrowd`` from ``ignore``; ``area`` and ``bbox`` (XYWH) of
    the pixels the PNG gives it. Categories keep the fields of ``extra["categories"]``;
    ``isthing`` comes from ``extra["isthing"]`` (one flag per class), and without it every
    class is a thing: a thing class may hold several segments per image, so this never
    makes invalid panoptic data, while calling a class stuff that has several instances
    would. Image ids are kept when unique, else 1..N; every image gets an annotation and a
    PNG, all zeros (unlabelled) when it has no segment.

    A PNG pixel holds one segment, so overlapping masks are resolved by
    :func:`fewclick.io.labelmap.paint`: the smaller mask keeps the pixel (equal areas: the
    earlier object). Objects left without pixels, and objects without a mask (boxes,
    points), are not written. Returns one message per kind of loss (pixels lost to
    overlaps, objects dropped), each also warned as a
    :class:`~fewclick.io.parsing.FormatWarning`; an empty list means nothing was lost.
    """
    path = Path(path)
    cat_ids = dataset.category_ids or list(range(1, len(dataset.classes) + 1))
    if len(cat_ids) != len(dataset.classes):
        raise ValueError(f"expected one category id per class ({len(dataset.classes)}), got {len(cat_ids)}")
    categories = _written_categories(dataset, cat_ids)
    names = png_names([rec.file_name for rec in dataset.images])
    ids = [rec.id for rec in dataset.images]
    if None in ids or len(set(ids)) != len(ids):
        ids = list(range(1, len(ids) + 1))
    losses = Losses()
    images, annotations = [], []
    for image_id, rec, name in zip(ids, dataset.images, names, strict=True):
        pixels, segments = _segment_map(rec, cat_ids, losses)
        save_image(path.parent / path.stem / name, segment_png(pixels))
        link_image(rec.path, path.parent / "images" / rec.file_name)
        info = {**rec.extra.get("coco", {}), "id": image_id, "file_name": rec.file_name}
        images.append({**info, "width": rec.width, "height": rec.height})
        annotations.append({"image_id": image_id, "file_name": name, "segments_info": segments})
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f)
    return losses.report(path)


def _written_categories(dataset: Dataset, cat_ids: list[int]) -> list[dict]:
    isthing = dataset.extra.get("isthing")
    if isthing is not None and len(isthing) != len(dataset.classes):
        raise ValueError(
            f"expected one isthing flag per class ({len(dataset.classes)}) in extra['isthing'], "
            f"got {len(isthing)}"
        )
    known = {
        (c.get("id"), c.get("name")): c for c in dataset.extra.get("categories", []) if isinstance(c, dict)
    }
    return [
        {
            **known.get((cid, name), {}),
            "id": int(cid),
            "name": name,
            "isthing": 1 if isthing is None else int(bool(isthing[i])),
        }
        for i, (cid, name) in enumerate(zip(cat_ids, dataset.classes, strict=True))
    ]


def _segment_map(rec: ImageRecord, cat_ids: list[int], losses: Losses) -> tuple[np.ndarray, list[dict]]:
    """The image's segment ids ``int64[H, W]`` and its ``segments_info``."""
    owner, objs = owner_map(rec, losses)
    sids = _segment_ids_of(objs)
    lookup = np.concatenate([[0], sids])
    found = label_windows(owner, len(objs))
    areas = np.bincount(owner.ravel(), minlength=len(objs) + 1)
    segments = []
    for i, where in enumerate(found):
        if where is None:
            continue
        ys, xs = where
        segments.append(
            {
                "id": int(sids[i]),
                "category_id": int(cat_ids[objs.labels[i]]),
                "iscrowd": int(objs.ignore[i]),
                "area": int(areas[i + 1]),
                "bbox": [xs.start, ys.start, xs.stop - xs.start, ys.stop - ys.start],
            }
        )
    return lookup[owner], segments


def _segment_ids_of(objs: Objects) -> np.ndarray:
    """``int64[N]``: the objects' ``extra["segment_ids"]`` when unique and within
    1..MAX_SEGMENT_ID, else 1..N."""
    kept = objs.extra.get("segment_ids")
    if kept is not None and len(kept) == len(objs):
        sids = np.asarray(kept, np.int64).reshape(-1)
        if len(np.unique(sids)) == len(sids) and (
            len(sids) == 0 or (sids.min() > 0 and sids.max() <= MAX_SEGMENT_ID)
        ):
            return sids
    return np.arange(1, len(objs) + 1, dtype=np.int64)
