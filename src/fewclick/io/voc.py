"""Pascal VOC XML: ``Annotations/*.xml`` + ``JPEGImages/``, and its oriented variant.

Layouts: ``<root>/Annotations``; ``<root>/normal_xml/Annotations`` with an optional
``<root>/rotate_xml/Annotations`` (HIT-UAV); or one sub-folder holding ``Annotations``
(``bccd/BCCD/``). Images are looked for in ``JPEGImages/`` (or ``images/``) beside
``Annotations/``, by the XML's ``<filename>``, else by the XML's stem.

Per object: ``<name>``; ``<bndbox>`` xmin/ymin/xmax/ymax, VOC's 1-based pixel indices
(the first pixel is 1, xmax is the last pixel the box holds), so our XYXY box is
``[xmin - 1, ymin - 1, xmax, ymax]`` (as the VOC devkit, labelImg, detectron2 and
supervision read them; an ``xmin`` of 0 from a 0-based writer reads as 0); or
roLabelImg's ``<robndbox>`` cx/cy/w/h/angle, whose angle turns clockwise on screen, so
ours is ``-angle mod pi`` (checked on HIT-UAV: the box drawn with this sign holds more
image gradient energy than its mirror for 342 of 385 clearly oriented objects); the box
is then the enclosing XYXY box. ``<difficult>`` -> ``difficult``; class ``DontCare`` ->
``ignore``. Size from ``<size>``, or the image header when it is 0 or missing.
Coordinates must be finite numbers; boxes reaching outside the image are clipped to it,
and objects wholly outside it skipped, with a warning.

When ``rotate_xml/Annotations/<stem>.xml`` exists beside ``normal_xml``, its oriented
boxes are attached to the axis-aligned objects in file order. They are used only when both
files list the same class names in the same order, and each oriented box's enclosing box
has its centre and size within 2 px of the axis-aligned box (true for all 1,828 HIT-UAV
objects: at most 1 px); otherwise the image, or that object, gets NaN rboxes and a warning.

Classes: the sorted unique names found, unless ``classes`` is given (then an unknown
name raises :class:`~fewclick.io.errors.FormatError`). An object holding both a
``<bndbox>`` and a ``<robndbox>`` (what :func:`write` makes of an oriented box) keeps both;
a ``<score>`` goes to ``Objects.extra["scores"]``.

``write`` makes ``Annotations/<stem>.xml``, ``ImageSets/Main/default.txt`` and symlinks
in ``JPEGImages/``; ``<bndbox>`` coordinates are whole 1-based pixels (tools read them as
integers), rounded outward so the written box holds the whole box: ``xmin = floor(x0) + 1``,
``xmax = ceil(x1)``; a box on whole pixels reads back exactly, any other grows by under a
pixel a side. ``<depth>`` is the image file's channels (1 for grayscale, 3 when the file is
missing). VOC holds boxes: polygons and masks are
written as their boxes, points and crowd regions are left out, and the returned messages
count both.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.errors import FormatError
from fewclick.io.leftout import LeftOut, object_scores
from fewclick.io.parsing import (
    clip_boxes,
    drop_outside,
    find_image,
    fmt_number,
    header_size,
    image_dimensions,
    link_image,
    parse_xml,
    warn,
)
from fewclick.types import Objects, rboxes_to_boxes

__all__ = ["sniff", "read", "write", "rolabelimg_to_rbox", "from_voc_pixels", "to_voc_pixels"]

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


def from_voc_pixels(bndbox: np.ndarray) -> np.ndarray:
    """VOC's 1-based ``[xmin, ymin, xmax, ymax]`` -> our XYXY box ``float64[4]`` (pixel
    edges from 0): xmin and ymin less 1, not below 0 when they were at least 0."""
    box = np.asarray(bndbox, np.float64).copy()
    for k in (0, 1):
        box[k] = max(box[k] - 1, 0.0) if box[k] >= 0 else box[k] - 1
    return box


def to_voc_pixels(box: np.ndarray) -> list[int]:
    """Our XYXY box -> VOC's whole 1-based ``[xmin, ymin, xmax, ymax]``, rounded outward
    (``floor(x0) + 1``, ``ceil(x1)``; a box narrower than a pixel keeps one pixel)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    xmin, ymin = math.floor(x0) + 1, math.floor(y0) + 1
    return [xmin, ymin, max(math.ceil(x1), xmin), max(math.ceil(y1), ymin)]


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
    root = parse_xml(xml)
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
    out = {"name": name, "difficult": int(difficult), "rbox": None, "where": where, "score": np.nan}
    if obj.find("score") is not None:
        out["score"] = _numbers(obj, ("score",), where)[0]
    if obj.find("robndbox") is not None:
        cx, cy, w, h, angle = _numbers(obj.find("robndbox"), ("cx", "cy", "w", "h", "angle"), where)
        if w < 0 or h < 0:
            raise FormatError(f"{where}: expected <robndbox> w and h >= 0, got w={w}, h={h}")
        out["rbox"] = rolabelimg_to_rbox(cx, cy, w, h, angle)
        out["box"] = rboxes_to_boxes(out["rbox"][None])[0]
    if obj.find("bndbox") is not None:
        out["box"] = from_voc_pixels(_numbers(obj.find("bndbox"), ("xmin", "ymin", "xmax", "ymax"), where))
    elif out["rbox"] is None:
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
    scores = np.array([o["score"] for o in objs], np.float32)
    objects = Objects(
        labels=[names.index(o["name"]) for o in objs],
        boxes=boxes,
        rboxes=rboxes,
        ignore=[o["name"].lower() in IGNORE_NAMES for o in objs],
        difficult=[o["difficult"] for o in objs],
        extra={} if np.isnan(scores).all() else {"scores": scores},
    )
    return ImageRecord(file_name, width, height, objects, image_path, image_id)


# --------------------------------------------------------------------------- writing
def write(dataset: Dataset, path: Path) -> list[str]:
    """Write a VOC folder (see the module doc); returns what was left out or approximated."""
    path = Path(path)
    stems = [Path(rec.file_name).stem for rec in dataset.images]
    repeated = sorted(s for s, n in Counter(stems).items() if n > 1)
    if repeated:
        raise ValueError(
            f"expected unique image file stems for Annotations/*.xml, got repeated {repeated[:5]}"
        )
    (path / "Annotations").mkdir(parents=True, exist_ok=True)
    (path / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    left = LeftOut("Pascal VOC")
    for stem, rec in zip(stems, dataset.images, strict=True):
        name = f"{stem}{Path(rec.file_name).suffix}"
        tree = ET.ElementTree(_xml(rec, name, dataset.classes, left))
        ET.indent(tree)
        tree.write(path / "Annotations" / f"{stem}.xml", encoding="utf-8", xml_declaration=False)
        link_image(rec.path, path / "JPEGImages" / name)
    (path / "ImageSets" / "Main" / "default.txt").write_text("".join(s + "\n" for s in stems), "utf-8")
    return left.report(path)


def _xml(rec: ImageRecord, name: str, classes: list[str], left: LeftOut) -> ET.Element:
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "JPEGImages"
    ET.SubElement(root, "filename").text = name
    size = ET.SubElement(root, "size")
    depth = rec.extra.get("depth") or image_depth(rec.path)
    for tag, value in (("width", rec.width), ("height", rec.height), ("depth", depth)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(root, "segmented").text = "0"
    objs = rec.objects
    scores = object_scores(objs)
    for i in range(len(objs)):
        geometry = left.writable(objs, i, rec.file_name, "VOC", "VOC holds boxes")
        if geometry is None:
            continue
        if geometry in ("mask", "polygon"):
            left.add(f"approximated: {geometry}s written as their boxes", rec.file_name)
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = classes[objs.labels[i]]
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = str(int(objs.difficult[i] > 0))
        if scores is not None and not np.isnan(scores[i]):
            ET.SubElement(obj, "score").text = fmt_number(scores[i])
        box = ET.SubElement(obj, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), to_voc_pixels(objs.boxes[i]), strict=True):
            ET.SubElement(box, tag).text = str(value)
        if geometry == "rbox":
            cx, cy, w, h, angle = objs.rboxes[i]
            rbox = ET.SubElement(obj, "robndbox")  # roLabelImg's angle turns clockwise on screen
            for tag, value in zip(("cx", "cy", "w", "h"), (cx, cy, w, h), strict=True):
                ET.SubElement(rbox, tag).text = fmt_number(value)
            ET.SubElement(rbox, "angle").text = repr(float(np.mod(-float(angle), np.pi)))
    return root


def image_depth(path: Path | None) -> int:
    """The channels of the image file at ``path`` (its header only): 1 for grayscale (L,
    I;16, F), 3 for RGB and palette images, 4 with alpha; 3 when there is no file. A
    record's ``extra["depth"]``, when set, is written instead (the app's export, which sends
    no image files, reads it from them first)."""
    if path is None or not Path(path).is_file():
        return 3
    with PILImage.open(path) as im:
        mode = im.mode
    return {"P": 3, "PA": 4}.get(mode) or PILImage.getmodebands(mode)
