"""Pascal VOC XML: ``Annotations/*.xml`` + ``JPEGImages/``, and its oriented variant.

Layouts: ``<root>/Annotations``; ``<root>/normal_xml/Annotations`` with an optional
``<root>/rotate_xml/Annotations`` (HIT-UAV); or one sub-folder holding ``Annotations``
(``bccd/BCCD/``). Images are looked for in ``JPEGImages/`` (or ``images/``) beside
``Annotations/``, by the XML's ``<filename>``, else by the XML's stem.

Per object: ``<name>``; ``<bndbox>`` xmin/ymin/xmax/ymax in pixels, taken as they are
(no 1-based shift); or roLabelImg's ``<robndbox>`` cx/cy/w/h/angle, whose angle turns
clockwise on screen, so ours is ``-angle mod pi`` (checked on HIT-UAV: the box drawn
with this sign holds more image gradient energy than its mirror for 342 of 385 clearly
oriented objects); the box is then the enclosing XYXY box. ``<difficult>`` ->
``difficult``; class ``DontCare`` -> ``ignore``. Size from ``<size>``, or the image
header when it is 0 or missing. Coordinates must be finite numbers; boxes reaching
outside the image are clipped to it, and objects wholly outside it skipped, with a warning.

When ``rotate_xml/Annotations/<stem>.xml`` exists beside ``normal_xml``, its oriented
boxes are attached to the axis-aligned objects in file order. They are used only when both
files list the same class names in the same order, and each oriented box's enclosing box
has its centre and size within 2 px of the axis-aligned box (true for all 1,828 HIT-UAV
objects: at most 1 px); otherwise the image, or that object, gets NaN rboxes and a warning.

Classes: the sorted unique names found, unless ``classes`` is given (then an unknown
name raises :class:`~fewclick.io.errors.FormatError`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.errors import FormatError
from fewclick.io.parsing import clip_boxes, drop_outside, find_image, header_size, image_dimensions, warn
from fewclick.types import Objects, rboxes_to_boxes

__all__ = ["sniff", "read", "rolabelimg_to_rbox"]

IGNORE_NAMES = ("dontcare",)
_MATCH_TOLERANCE = 2.0  # px, between an oriented box's enclosing box and the axis-aligned one


def sniff(path: Path) -> bool:
    """True for a folder in one of the layouts of the module doc."""
    return _layout(Path(path)) is not None


def _layout(path: Path) -> tuple[Path, list[Path], Path | None] | None:
    """(annotations folder, image folders, oriented annotations folder or None)."""
    if not path.is_dir():
        return None
    for base in (path, path / "normal_xml", path / "rotate_xml"):
        ann = base / "Annotations"
        if ann.is_dir() and any(ann.glob("*.xml")):
            rotated = path / "rotate_xml" / "Annotations" if base.name == "normal_xml" else None
            images = [base / "JPEGImages", base / "images", path / "normal_xml" / "JPEGImages", base]
            return ann, images, rotated if rotated and rotated.is_dir() else None
    subs = [d for d in path.iterdir() if d.is_dir() and (d / "Annotations").is_dir()]
    return _layout(subs[0]) if len(subs) == 1 else None


def rolabelimg_to_rbox(cx: float, cy: float, w: float, h: float, angle: float) -> np.ndarray:
    """roLabelImg's ``<robndbox>`` (angle in radians, clockwise on screen) -> fewclick's
    oriented box ``float32[5]`` (cx, cy, w, h, angle counter-clockwise in [0, pi))."""
    return np.array([cx, cy, w, h, np.mod(-angle, np.pi)], np.float32)


def read(path: Path, classes: list[str] | None = None, images_dir: Path | None = None) -> Dataset:
    """Read a VOC folder (see the module doc) into a :class:`Dataset`."""
    path = Path(path)
    layout = _layout(path)
    if layout is None:
        raise FormatError(
            f"{path}: expected a folder with Annotations/*.xml (or normal_xml/Annotations), got none"
        )
    ann_dir, folders, rotated_dir = layout
    folders = [Path(images_dir)] + folders if images_dir else folders
    parsed = [_parse_file(f) for f in sorted(ann_dir.glob("*.xml"))]
    names = sorted({o["name"] for _, objs in parsed for o in objs}) if classes is None else list(classes)
    records = []
    for info, objs in parsed:
        if rotated_dir is not None:
            objs = _attach_rotated(objs, rotated_dir / info["xml"].name, info["xml"])
        records.append(_record(info, objs, names, folders, len(records) + 1))
    return Dataset(classes=names, images=records, format="voc", root=path)


def _parse_file(xml: Path) -> tuple[dict, list[dict]]:
    try:
        root = ET.parse(xml).getroot()
    except ET.ParseError as exc:
        line, col = exc.position
        raise FormatError(
            f"{xml}: expected well-formed XML, got an error at line {line} column {col}: {exc}"
        ) from None
    size = root.find("size")
    info = {
        "xml": xml,
        "filename": (root.findtext("filename") or "").strip(),
        "width": _int(size, "width", xml),
        "height": _int(size, "height", xml),
    }
    return info, [_parse_object(obj, xml, k) for k, obj in enumerate(root.iter("object"))]


def _int(parent: ET.Element | None, tag: str, xml: Path) -> int:
    text = None if parent is None else parent.findtext(tag)
    if not text or not text.strip():
        return 0
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not np.isfinite(value) or value < 0 or value != int(value):
        raise FormatError(f"{xml}: expected a whole number >= 0 in <size><{tag}>, got {text!r}")
    return int(value)


def _parse_object(obj: ET.Element, xml: Path, k: int) -> dict:
    name = (obj.findtext("name") or "").strip()
    where = f"{xml}: object {k} ({name or 'no name'})"
    if not name:
        raise FormatError(f"{where}: expected a <name>, got none")
    difficult = (obj.findtext("difficult") or "0").strip()
    if difficult not in ("0", "1", "2"):
        raise FormatError(f"{where}: expected <difficult> 0 or 1, got {difficult!r}")
    out = {"name": name, "difficult": int(difficult), "rbox": None, "where": where}
    if obj.find("bndbox") is not None:
        out["box"] = _numbers(obj.find("bndbox"), ("xmin", "ymin", "xmax", "ymax"), where)
    elif obj.find("robndbox") is not None:
        cx, cy, w, h, angle = _numbers(obj.find("robndbox"), ("cx", "cy", "w", "h", "angle"), where)
        if w < 0 or h < 0:
            raise FormatError(f"{where}: expected <robndbox> w and h >= 0, got w={w}, h={h}")
        out["rbox"] = rolabelimg_to_rbox(cx, cy, w, h, angle)
        out["box"] = rboxes_to_boxes(out["rbox"][None])[0]
    else:
        raise FormatError(f"{where}: expected a <bndbox> or <robndbox>, got neither")
    if out["box"][2] < out["box"][0] or out["box"][3] < out["box"][1]:
        raise FormatError(f"{where}: expected xmin <= xmax and ymin <= ymax, got {out['box'].tolist()}")
    return out


def _numbers(parent: ET.Element, tags: tuple[str, ...], where: str) -> np.ndarray:
    values = []
    for tag in tags:
        text = parent.findtext(tag)
        try:
            values.append(float(text))
        except (TypeError, ValueError):
            raise FormatError(f"{where}: expected a number in <{parent.tag}><{tag}>, got {text!r}") from None
        if not np.isfinite(values[-1]):
            raise FormatError(f"{where}: expected a finite number in <{parent.tag}><{tag}>, got {text!r}")
    return np.array(values, np.float64)


def _attach_rotated(objs: list[dict], rotated_xml: Path, xml: Path) -> list[dict]:
    if not rotated_xml.is_file():
        return objs
    _, rotated = _parse_file(rotated_xml)
    if [o["name"] for o in objs] != [o["name"] for o in rotated] or any(o["rbox"] is None for o in rotated):
        warn(f"{rotated_xml}: its objects do not match {xml} one to one by class; oriented boxes not used")
        return objs
    out = []
    for obj, rot in zip(objs, rotated, strict=True):
        enclosing = rot["box"]
        centre = np.abs((enclosing[:2] + enclosing[2:]) - (obj["box"][:2] + obj["box"][2:])) / 2
        size = np.abs((enclosing[2:] - enclosing[:2]) - (obj["box"][2:] - obj["box"][:2]))
        if max(centre.max(), size.max()) > _MATCH_TOLERANCE:
            warn(
                f"{rot['where']}: oriented box does not match the axis-aligned box {obj['box'].tolist()}; "
                "not used"
            )
            out.append(obj)
        else:
            out.append({**obj, "rbox": rot["rbox"]})
    return out


def _record(
    info: dict, objs: list[dict], names: list[str], folders: list[Path], image_id: int
) -> ImageRecord:
    xml = info["xml"]
    image_path = find_image(info["filename"], folders) if info["filename"] else None
    image_path = image_path or find_image(xml.stem, folders)
    width, height = info["width"], info["height"]
    if width <= 0 or height <= 0:
        width, height = header_size(image_path, str(xml))
    else:
        image_dimensions(width, height, f"{xml}: <size>")
    file_name = image_path.name if image_path else (info["filename"] or xml.stem + ".jpg")
    for obj in objs:
        if obj["name"] not in names:
            raise FormatError(f"{obj['where']}: expected a class among {names}, got {obj['name']!r}")
    if not objs:
        return ImageRecord(file_name, width, height, Objects.empty(), image_path, image_id)
    keep = drop_outside(
        np.stack([o["box"] for o in objs]), width, height, str(xml), [o["where"] for o in objs]
    )
    objs = [o for o, k in zip(objs, keep, strict=True) if k]
    if not objs:
        return ImageRecord(file_name, width, height, Objects.empty(), image_path, image_id)
    boxes = clip_boxes(
        np.stack([o["box"] for o in objs]).astype(np.float32),
        width,
        height,
        str(xml),
        [o["where"] for o in objs],
    )
    rboxes = None
    if any(o["rbox"] is not None for o in objs):
        rboxes = np.stack([np.full(5, np.nan) if o["rbox"] is None else o["rbox"] for o in objs])
    objects = Objects(
        labels=[names.index(o["name"]) for o in objs],
        boxes=boxes,
        rboxes=rboxes,
        ignore=[o["name"].lower() in IGNORE_NAMES for o in objs],
        difficult=[o["difficult"] for o in objs],
    )
    return ImageRecord(file_name, width, height, objects, image_path, image_id)
