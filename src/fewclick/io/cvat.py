"""CVAT for images 1.1 XML: one ``annotations.xml`` (+ ``images/``).

Layout (what :func:`write` makes; :func:`read` takes the folder or the XML file)::

    annotations.xml     <annotations><version>1.1</version><meta><task><labels>...</labels>
                        </task></meta><image id="0" name="a.jpg" width="W" height="H">
                        ... shapes ... </image></annotations>
    images/a.jpg        the image (optional; also looked for beside the XML)

Shapes, in pixels of the image:
- ``<box xtl ytl xbr ybr rotation>``: ``rotation`` in degrees, clockwise on screen about
  the box centre (CVAT's convention), so a rotated box is fewclick's oriented box with
  ``angle = -rotation`` in radians; its box is the enclosing one;
- ``<polygon points="x1,y1;x2,y2;...">``;
- ``<mask rle left top width height>``: run lengths over the ``width x height`` crop at
  ``(left, top)``, row by row, starting with a run of background (CVAT's own RLE);
- ``<points points="x,y;...">``: one object per point.

Shapes with one non-zero ``group_id`` and one label make one object (CVAT groups the parts
of an object): several polygons are one object in parts; a box beside a polygon or mask
gives that object its (oriented) box. Polylines, ellipses, cuboids, skeletons and tags
are skipped with a warning. Attributes: ``score`` -> ``Objects.extra["scores"]``,
``is_crowd`` -> ``ignore``, ``difficult`` -> ``difficult``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path, PurePosixPath

import numpy as np

from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.errors import FormatError
from fewclick.io.leftout import LeftOut, geometry_of, object_scores
from fewclick.io.parsing import (
    find_image,
    finite_number,
    fmt_number,
    image_dimensions,
    link_image,
    objects_from_rows,
    parse_xml,
    warn,
)
from fewclick.io.rle import mask_to_rle, rle_boxes, segmentation_window
from fewclick.types import Objects, polygons_to_boxes, rboxes_to_boxes

__all__ = ["NAME", "sniff", "read", "write", "crop_rle", "crop_mask"]

#: The XML's name in a CVAT folder.
NAME = "annotations.xml"
_SHAPES = ("box", "polygon", "mask", "points")
_SKIPPED = ("polyline", "ellipse", "cuboid", "skeleton", "tag")
_SNIFF_BYTES = 4096


def sniff(path: Path) -> bool:
    """True for an XML file (or a folder holding ``annotations.xml``) whose root is
    ``<annotations>`` with a ``<version>`` first."""
    path = Path(path)
    file = path / NAME if path.is_dir() else path
    if file.suffix.lower() != ".xml" or not file.is_file():
        return False
    with open(file, "rb") as f:
        head = f.read(_SNIFF_BYTES).lstrip()
    return b"<annotations" in head[:200] and b"<version>" in head


# --------------------------------------------------------------------------- CVAT's mask RLE
def crop_rle(mask: np.ndarray) -> tuple[list[int], tuple[int, int, int, int]]:
    """A mask ``bool[H, W]`` as CVAT writes it: ``(runs, (left, top, width, height))``, the
    runs over its pixels' bounding crop, row by row, starting with background."""
    ys, xs = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    left, top = int(xs[0]), int(ys[0])
    crop = mask[top : ys[-1] + 1, left : xs[-1] + 1].reshape(-1)
    changes = np.flatnonzero(np.diff(crop.astype(np.int8))) + 1
    edges = np.concatenate([[0], changes, [crop.size]])
    runs = np.diff(edges).tolist()
    if crop[0]:
        runs = [0, *runs]
    return runs, (left, top, int(xs[-1] + 1 - left), int(ys[-1] + 1 - top))


def crop_mask(
    runs: list[int], left: int, top: int, width: int, height: int, image: tuple[int, int]
) -> np.ndarray:
    """The inverse of :func:`crop_rle`: a ``bool[H, W]`` mask of the image ``(H, W)``."""
    if sum(runs) != width * height:
        raise ValueError(f"rle runs sum to {sum(runs)}, expected width x height = {width * height}")
    values = np.zeros(len(runs), bool)
    values[1::2] = True
    crop = np.repeat(values, runs).reshape(height, width)
    out = np.zeros(image, bool)
    h, w = image
    if left < 0 or top < 0 or left + width > w or top + height > h:
        raise ValueError(
            f"mask crop {width} x {height} at ({left}, {top}) reaches outside the {w} x {h} image"
        )
    out[top : top + height, left : left + width] = crop
    return out


# --------------------------------------------------------------------------- reading
def read(path: Path, images_dir: Path | None = None) -> Dataset:
    """Read a CVAT for images XML (see the module doc) into a :class:`Dataset`."""
    path = Path(path)
    file = path / NAME if path.is_dir() else path
    if not file.is_file():
        raise FormatError(f"{path}: expected a CVAT XML file or a folder holding {NAME}, got none")
    root = parse_xml(file)
    if root.tag != "annotations":
        raise FormatError(f"{file}: expected a root <annotations>, got <{root.tag}>")
    classes = [(label.findtext("name") or "").strip() for label in root.iter("label")]
    classes = list(dict.fromkeys(c for c in classes if c))
    folders = [Path(images_dir)] if images_dir else []
    folders += [file.parent / "images", file.parent]
    records, skipped = [], Counter()
    for element in root.iter("image"):
        records.append(_record(element, file, classes, folders, len(records) + 1, skipped))
    if skipped:
        kinds = ", ".join(f"{n} {kind}(s)" for kind, n in skipped.items())
        warn(f"{file}: skipped {kinds}: fewclick holds boxes, polygons, masks and points")
    return Dataset(classes=classes, images=records, format="cvat", root=file.parent)


def _record(
    element: ET.Element, file: Path, classes: list[str], folders: list[Path], index: int, skipped: Counter
) -> ImageRecord:
    name = element.get("name") or ""
    where = f"{file}: image {name or element.get('id')!r}"
    if not name:
        raise FormatError(f"{where}: expected a 'name' attribute, got none")
    width, height = image_dimensions(
        _size(element.get("width"), where), _size(element.get("height"), where), where
    )
    parts: list[dict] = []
    for k, shape in enumerate(element):
        if shape.tag in _SKIPPED:
            skipped[shape.tag] += 1
            continue
        if shape.tag not in _SHAPES:
            continue
        at = f"{where}: <{shape.tag}> {k}"
        label = shape.get("label") or ""
        if label not in classes:
            if not label:
                raise FormatError(f"{at}: expected a 'label', got none")
            classes.append(label)  # a label missing from <meta> is still a class
        parts.extend(_parts(shape, at, classes.index(label), height, width))
    objects = objects_from_rows(_grouped(parts), width, height, where)
    image_path = find_image(name, folders) or find_image(PurePosixPath(name).name, folders)
    return ImageRecord(name, width, height, objects, image_path, index)


def _size(value: str | None, where: str) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        raise FormatError(f"{where}: expected a number, got {value!r}") from None


def _parts(shape: ET.Element, at: str, label: int, height: int, width: int) -> list[dict]:
    attrs = {a.get("name"): (a.text or "").strip() for a in shape.findall("attribute")}
    base = {
        "label": label,
        "group": int(finite_number(shape.get("group_id") or "0", "group_id", at)),
        "score": finite_number(attrs["score"], "score", at) if attrs.get("score") else np.nan,
        "ignore": attrs.get("is_crowd", "").lower() in ("true", "1"),
        "difficult": int(finite_number(attrs.get("difficult") or "0", "difficult", at)),
        "where": at,
    }
    if shape.tag == "box":
        box = np.array([finite_number(shape.get(k), k, at) for k in ("xtl", "ytl", "xbr", "ybr")], np.float64)
        if box[2] < box[0] or box[3] < box[1]:
            raise FormatError(f"{at}: expected xtl <= xbr and ytl <= ybr, got {box.tolist()}")
        rotation = finite_number(shape.get("rotation") or "0", "rotation", at)
        if rotation % 360:
            centre, size = (box[:2] + box[2:]) / 2, box[2:] - box[:2]
            rbox = np.array([*centre, *size, np.mod(-np.deg2rad(rotation), np.pi)], np.float32)
            return [{**base, "kind": "rbox", "rbox": rbox, "box": rboxes_to_boxes(rbox[None])[0]}]
        return [{**base, "kind": "box", "box": box}]
    if shape.tag == "polygon":
        poly = _points(shape.get("points"), at)
        if len(poly) < 3:
            warn(f"{at}: skipped: a polygon needs 3 points, got {len(poly)}")
            return []
        return [{**base, "kind": "polygon", "polygon": poly, "box": polygons_to_boxes(poly[None])[0]}]
    if shape.tag == "points":
        return [
            {**base, "kind": "point", "point": p, "box": np.full(4, np.nan)}
            for p in _points(shape.get("points"), at)
        ]
    runs = [int(finite_number(v, "rle", at)) for v in (shape.get("rle") or "").split(",") if v.strip()]
    crop = [int(finite_number(shape.get(k), k, at)) for k in ("left", "top", "width", "height")]
    try:
        mask = crop_mask(runs, *crop, (height, width))
    except ValueError as exc:
        raise FormatError(f"{at}: {exc}") from None
    rle = mask_to_rle(mask)
    return [{**base, "kind": "mask", "mask": rle, "box": rle_boxes([rle])[0]}]


def _points(text: str | None, at: str) -> np.ndarray:
    try:
        pairs = [tuple(float(v) for v in pair.split(",")) for pair in (text or "").split(";") if pair.strip()]
    except ValueError:
        raise FormatError(f"{at}: expected points 'x1,y1;x2,y2;...', got {text!r}"[:300]) from None
    if any(len(p) != 2 for p in pairs) or not np.isfinite(pairs).all():
        raise FormatError(f"{at}: expected points 'x1,y1;x2,y2;...' of finite numbers, got {text!r}"[:300])
    return np.array(pairs, np.float32).reshape(-1, 2)


def _grouped(parts: list[dict]) -> list[dict]:
    """One object per shape, except shapes sharing a group and a label: one object."""
    objects, groups = [], {}
    for part in parts:
        key = (part["group"], part["label"])
        if not part["group"] or part["kind"] == "point":
            objects.append(_start(part))
        elif key not in groups:
            groups[key] = _start(part)
            objects.append(groups[key])
        else:
            _join(groups[key], part)
    return objects


def _start(part: dict) -> dict:
    obj = {k: part[k] for k in ("label", "score", "ignore", "difficult", "where", "box")}
    obj["rbox"] = part.get("rbox")
    obj["point"] = part.get("point")
    obj["seg"] = [part["polygon"]] if part["kind"] == "polygon" else part.get("mask")
    return obj


def _join(obj: dict, part: dict) -> None:
    """Add a grouped shape to its object: a box gives the object its box, a polygon joins
    its polygons, a mask joins its mask."""
    if part["kind"] in ("box", "rbox"):
        obj["box"], obj["rbox"] = part["box"], part.get("rbox")
        return
    if part["kind"] == "polygon" and (obj["seg"] is None or isinstance(obj["seg"], list)):
        obj["seg"] = [*(obj["seg"] or []), part["polygon"]]
    elif part["kind"] == "mask" and obj["seg"] is None:
        obj["seg"] = part["mask"]
    else:
        warn(f"{part['where']}: a {part['kind']} grouped with another geometry of its object; not joined")
        return
    if obj["rbox"] is None:  # the grouped parts' enclosing box, unless a box shape gave one
        boxes = np.stack([obj["box"], part["box"]])
        obj["box"] = np.concatenate([np.nanmin(boxes[:, :2], 0), np.nanmax(boxes[:, 2:], 0)])


# --------------------------------------------------------------------------- writing
def write(dataset: Dataset, path: Path) -> list[str]:
    """Write ``path/annotations.xml`` and symlink the images that exist on disk into
    ``path/images/``. Every geometry fewclick holds has a CVAT shape, so nothing is left out;
    an object with a polygon or mask and an oriented box is written as a group of both."""
    path = Path(path)
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    task = ET.SubElement(ET.SubElement(root, "meta"), "task")
    ET.SubElement(task, "size").text = str(len(dataset.images))
    labels = ET.SubElement(task, "labels")
    for name in dataset.classes:
        label = ET.SubElement(labels, "label")
        ET.SubElement(label, "name").text = name
        ET.SubElement(label, "type").text = "any"
    left, group = LeftOut("CVAT"), 0
    for k, rec in enumerate(dataset.images):
        image = ET.SubElement(
            root, "image", id=str(k), name=rec.file_name, width=str(rec.width), height=str(rec.height)
        )
        objs, scores = rec.objects, object_scores(rec.objects)
        for i in range(len(objs)):
            geometry = geometry_of(objs, i)
            if geometry == "none":
                left.add("left out: objects without geometry", rec.file_name)
                continue
            attrs = {"label": dataset.classes[objs.labels[i]], "occluded": "0", "z_order": "0"}
            attrs["source"] = "manual" if scores is None or np.isnan(scores[i]) else "auto"
            both = (
                geometry in ("mask", "polygon")
                and objs.rboxes is not None
                and np.isfinite(objs.rboxes[i]).all()
            )
            if both or (geometry == "polygon" and len(objs.segmentations[i]) > 1):
                group += 1
                attrs["group_id"] = str(group)
            shapes = _shapes(objs, i, geometry, rec, attrs)
            if both:
                shapes += _shapes(objs, i, "rbox", rec, attrs)
            for tag, shape_attrs in shapes:
                shape = ET.SubElement(image, tag, shape_attrs)
                _attributes(shape, objs, i, scores)
    tree = ET.ElementTree(root)
    ET.indent(tree)
    path.mkdir(parents=True, exist_ok=True)
    tree.write(path / NAME, encoding="utf-8", xml_declaration=True)
    for rec in dataset.images:
        link_image(rec.path, path / "images" / rec.file_name)
    return left.report(path / NAME)


def _shapes(objs: Objects, i: int, geometry: str, rec: ImageRecord, attrs: dict) -> list[tuple[str, dict]]:
    if geometry == "point":
        return [("points", {**attrs, "points": _text(objs.points[i][None])})]
    if geometry == "polygon":
        return [("polygon", {**attrs, "points": _text(p)}) for p in objs.segmentations[i]]
    if geometry == "mask":
        window, (x0, y0) = segmentation_window(objs.segmentations[i], rec.height, rec.width)
        if not window.any():
            return []
        runs, (left, top, width, height) = crop_rle(window)  # over its box: never the image's mask
        crop = {"left": str(x0 + left), "top": str(y0 + top), "width": str(width), "height": str(height)}
        return [("mask", {**attrs, "rle": ", ".join(map(str, runs)), **crop})]
    if geometry == "rbox":
        cx, cy, w, h, angle = (float(v) for v in objs.rboxes[i])
        corners = {"xtl": cx - w / 2, "ytl": cy - h / 2, "xbr": cx + w / 2, "ybr": cy + h / 2}
        rotation = float(np.mod(-np.rad2deg(angle), 360))
        return [("box", {**attrs, **{k: repr(v) for k, v in corners.items()}, "rotation": repr(rotation)})]
    box = objs.boxes[i]
    corners = dict(zip(("xtl", "ytl", "xbr", "ybr"), (fmt_number(v) for v in box), strict=True))
    return [("box", {**attrs, **corners})]


def _text(points: np.ndarray) -> str:
    return ";".join(f"{fmt_number(x)},{fmt_number(y)}" for x, y in np.asarray(points).reshape(-1, 2))


def _attributes(shape: ET.Element, objs: Objects, i: int, scores: np.ndarray | None) -> None:
    if scores is not None and not np.isnan(scores[i]):
        ET.SubElement(shape, "attribute", name="score").text = repr(round(float(scores[i]), 5))
    if objs.ignore[i]:
        ET.SubElement(shape, "attribute", name="is_crowd").text = "true"
    if objs.difficult[i]:
        ET.SubElement(shape, "attribute", name="difficult").text = str(int(objs.difficult[i]))
