"""DOTA labelTxt: ``images/<name>.png`` + ``labelTxt/<name>.txt``.

A label file has optional header lines ``imagesource:<text>`` and ``gsd:<text>`` (kept
as strings in ``ImageRecord.extra``), then one object per line:
``x1 y1 x2 y2 x3 y3 x4 y4 class_name [difficult]`` (difficult 0, 1 or 2; missing = 0).

Each object keeps its 4 corners as its segmentation (one ``float32[4, 2]`` polygon, so
writing gives the same numbers back), the minimum-area oriented box around them
(:func:`fewclick.types.polygons_to_rboxes`) and the min/max of the corners as its box.
Classes are the DOTA v1.0 list (or the ``classes`` option), plus any other name found,
appended in order of appearance with a warning. Width and height come from the image
header; a label file without an image gets 0 x 0 and a warning. Objects wholly outside
the image are skipped with a warning; objects reaching partly outside are kept as they are
(DOTA's own labels do this), and so are objects whose corners enclose no area, with a
warning naming their lines (ImgSplit writes such slivers at crop borders, as difficult 2).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.errors import FormatError
from fewclick.io.leftout import LeftOut, geometry_of
from fewclick.io.parsing import drop_outside, find_image, fmt_number, header_size, link_image, read_text, warn
from fewclick.types import Objects, polygons_to_boxes, polygons_to_rboxes, rboxes_to_polygons

__all__ = ["DOTA_V1_CLASSES", "sniff", "read", "write", "box_corners"]

DOTA_V1_CLASSES = [
    "plane",
    "ship",
    "storage-tank",
    "baseball-diamond",
    "tennis-court",
    "basketball-court",
    "ground-track-field",
    "harbor",
    "bridge",
    "large-vehicle",
    "small-vehicle",
    "helicopter",
    "roundabout",
    "soccer-ball-field",
    "swimming-pool",
]

_HEADER_KEYS = ("imagesource", "gsd")


def sniff(path: Path) -> bool:
    """True for a folder with a ``labelTxt/`` folder holding ``.txt`` files."""
    path = Path(path)
    return path.is_dir() and (path / "labelTxt").is_dir() and any((path / "labelTxt").glob("*.txt"))


def read(path: Path, classes: list[str] | None = None, images_dir: Path | None = None) -> Dataset:
    """Read a DOTA folder (``labelTxt/`` + ``images/``) into a :class:`Dataset`.

    ``classes`` replaces the DOTA v1.0 list (e.g. for v1.5 / v2.0); ``images_dir``
    replaces ``images/``.
    """
    path = Path(path)
    if not (path / "labelTxt").is_dir():
        raise FormatError(f"{path}: expected a DOTA folder with labelTxt/, got none")
    names = list(DOTA_V1_CLASSES if classes is None else classes)
    folders = [Path(images_dir) if images_dir else path / "images", path]
    records = []
    for label_file in sorted((path / "labelTxt").glob("*.txt")):
        header, rows = parse_label_file(label_file)
        for name, line_no in {r[1]: r[3] for r in reversed(rows)}.items():
            if name not in names:
                warn(
                    f"{label_file}:{line_no}: class {name!r} is not in the class list; added as {len(names)}"
                )
                names.append(name)
        image_path = find_image(label_file.stem, folders)
        width, height = header_size(image_path, str(label_file))
        file_name = image_path.name if image_path else label_file.stem + ".png"
        objects = _objects(_usable(rows, width, height, label_file), names)
        records.append(ImageRecord(file_name, width, height, objects, image_path, len(records) + 1, header))
    return Dataset(classes=names, images=records, format="dota", root=path)


def parse_label_file(path: Path) -> tuple[dict, list[tuple[np.ndarray, str, int, int]]]:
    """A labelTxt file -> (header dict, rows of (corners ``float32[4, 2]``, class name,
    difficult, line number)). Malformed lines raise :class:`FormatError` naming file:line."""
    header: dict[str, str] = {}
    rows = []
    lines = read_text(path).splitlines()
    for line_no, line in enumerate(lines, start=1):
        text = line.strip()
        key = text.split(":", 1)[0]
        if not text:
            continue
        if key in _HEADER_KEYS and ":" in text:
            header[key] = text.split(":", 1)[1]
            continue
        rows.append(_parse_line(text, path, line_no))
    return header, rows


def _parse_line(text: str, path: Path, line_no: int) -> tuple[np.ndarray, str, int, int]:
    parts = text.split()
    if len(parts) not in (9, 10):
        raise FormatError(
            f"{path}:{line_no}: expected 'x1 y1 x2 y2 x3 y3 x4 y4 class [difficult]' (9 or 10 fields), "
            f"got {len(parts)} fields: {text!r}"
        )
    try:
        corners = np.array([float(v) for v in parts[:8]], np.float32).reshape(4, 2)
    except ValueError:
        raise FormatError(
            f"{path}:{line_no}: expected 8 numbers before the class name, got {text!r}"
        ) from None
    if not np.isfinite(corners).all():
        raise FormatError(f"{path}:{line_no}: expected finite corner coordinates, got {text!r}")
    difficult = parts[9] if len(parts) == 10 else "0"
    if difficult not in ("0", "1", "2"):
        raise FormatError(f"{path}:{line_no}: expected difficult 0, 1 or 2, got {difficult!r}")
    return corners, parts[8], int(difficult), line_no


def _usable(rows: list, width: int, height: int, label_file: Path) -> list:
    """The rows that overlap the image; warns naming the others, and the rows whose corners
    enclose no area (kept: the devkit's ImgSplit writes such slivers, marked difficult 2)."""
    if not rows:
        return rows
    corners = np.stack([r[0] for r in rows]).astype(np.float64)
    x, y = corners[..., 0], corners[..., 1]
    area = np.abs((x * np.roll(y, -1, 1) - y * np.roll(x, -1, 1)).sum(1)) / 2
    flat = [f"line {r[3]}" for r, a in zip(rows, area, strict=True) if a == 0]
    if flat:
        shown = ", ".join(flat[:10])
        warn(f"{label_file}: {len(flat)} object(s) whose 4 corners enclose no area (kept): {shown}")
    items = [f"line {r[3]}" for r in rows]
    keep = drop_outside(polygons_to_boxes(corners), width, height, str(label_file), items)
    return [r for r, k in zip(rows, keep, strict=True) if k]


def _objects(rows: list, names: list[str]) -> Objects:
    if not rows:
        return Objects.empty()
    corners = np.stack([r[0] for r in rows])
    return Objects(
        labels=[names.index(r[1]) for r in rows],
        boxes=polygons_to_boxes(corners),
        rboxes=polygons_to_rboxes(corners),
        segmentations=[[c] for c in corners],
        difficult=[r[2] for r in rows],
    )


def box_corners(boxes: np.ndarray) -> np.ndarray:
    """XYXY boxes ``float[N, 4]`` -> their corners ``float32[N, 4, 2]``, clockwise on screen
    from the top-left (x0, y0), (x1, y0), (x1, y1), (x0, y1)."""
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    x0, y0, x1, y1 = b.T
    return np.stack(
        [np.stack([x0, y0], 1), np.stack([x1, y0], 1), np.stack([x1, y1], 1), np.stack([x0, y1], 1)], 1
    )


def write(dataset: Dataset, path: Path) -> list[str]:
    """Write ``path/labelTxt/<image stem>.txt`` for every image and symlink the images that
    exist on disk into ``path/images/`` (nothing is copied).

    Corners per object: its segmentation when that is one 4-point polygon, else its
    oriented box's corners, else its axis-aligned box's corners. Header lines are written
    when the image's ``extra`` has ``imagesource`` / ``gsd``. Objects with neither box nor
    polygon (points only) are left out, and polygons of other than 4 points and masks are
    written as their oriented or axis-aligned box: the returned messages count both.
    """
    out = Path(path) / "labelTxt"
    out.mkdir(parents=True, exist_ok=True)
    stems = [Path(rec.file_name).stem for rec in dataset.images]
    repeated = sorted(s for s, n in Counter(stems).items() if n > 1)
    if repeated:
        raise ValueError(
            f"{out}: expected unique image file stems for labelTxt files, got repeated {repeated[:5]}"
        )
    left = LeftOut("DOTA")
    for stem, rec in zip(stems, dataset.images, strict=True):
        lines = [f"{key}:{rec.extra[key]}" for key in _HEADER_KEYS if key in rec.extra]
        lines += _object_lines(rec, dataset.classes, left)
        (out / f"{stem}.txt").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        link_image(rec.path, Path(path) / "images" / f"{stem}{Path(rec.file_name).suffix}")
    return left.report(out)


def _object_lines(rec: ImageRecord, classes: list[str], left: LeftOut) -> list[str]:
    objs, lines = rec.objects, []
    for i in range(len(objs)):
        corners = object_corners(objs, i)
        if corners is None:
            left.add("left out: objects without a box or polygon (DOTA holds quadrilaterals)", rec.file_name)
            continue
        geometry = geometry_of(objs, i)
        seg = None if objs.segmentations is None else objs.segmentations[i]
        if geometry == "mask" or (geometry == "polygon" and not np.array_equal(corners, np.asarray(seg[0]))):
            left.add(f"approximated: {geometry}s written as their box", rec.file_name)
        coords = " ".join(fmt_number(v) for v in corners.reshape(-1))
        name = classes[objs.labels[i]]
        if len(name.split()) != 1:  # a DOTA line is split at spaces
            left.add(
                "renamed: class names with spaces written with '_' (DOTA lines split at spaces)",
                rec.file_name,
            )
            name = "_".join(name.split())
        lines.append(f"{coords} {name} {int(objs.difficult[i])}")
    return lines


def object_corners(objs: Objects, i: int, box_fallback: bool = True) -> np.ndarray | None:
    """The four corners ``float32[4, 2]`` of object ``i``: its segmentation when that is one
    4-point polygon, else its oriented box's corners, else (``box_fallback``) its box's."""
    seg = None if objs.segmentations is None else objs.segmentations[i]
    if isinstance(seg, list) and len(seg) == 1 and np.asarray(seg[0]).shape == (4, 2):
        return np.asarray(seg[0], np.float32)
    if objs.rboxes is not None and not np.isnan(objs.rboxes[i]).any():
        return rboxes_to_polygons(objs.rboxes[i : i + 1])[0]
    if box_fallback and not np.isnan(objs.boxes[i]).any():
        return box_corners(objs.boxes[i])[0]
    return None
