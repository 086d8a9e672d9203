"""YOLO txt: ``images/**/<name>.<ext>`` + ``labels/**/<name>.txt`` (same relative path).

One object per line, coordinates normalised by the image width and height:
``cls cx cy w h`` (a box), ``cls x1 y1 x2 y2 x3 y3 x4 y4`` (an oriented box, Ultralytics
OBB; kept like DOTA: its corners as the segmentation, the min-area oriented box, the
corners' min/max as box) or ``cls x1 y1 ... xk yk`` with k >= 3, k != 4 (a YOLO-seg
polygon; box = its min/max). Class names come from ``classes``, else ``data.yaml``
(``names`` as a list or an ``{id: name}`` map), ``obj.names`` or ``classes.txt`` in the
root or ``labels/``; without any, classes are named ``"0"``, ``"1"``, ... with a warning.

``write`` writes ``labels/`` and ``classes.txt`` and symlinks each image with a known
path into ``images/``. YOLO has no crowd/ignore, difficult, points, RLE or free polygons:
those are not written (objects without a box are skipped with a warning).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.dota import object_corners
from fewclick.io.errors import FormatError
from fewclick.io.images import IMAGE_SUFFIXES
from fewclick.io.parsing import clip_boxes, drop_outside, header_size, link_image, read_text, warn
from fewclick.types import Objects, polygons_to_boxes, polygons_to_rboxes

__all__ = ["sniff", "read", "write"]

_NAME_FILES = ("obj.names", "classes.txt")


def sniff(path: Path) -> bool:
    """True for a folder with ``images/`` and a ``labels/`` holding ``.txt`` files."""
    path = Path(path)
    return (path / "images").is_dir() and (path / "labels").is_dir() and any((path / "labels").rglob("*.txt"))


# --------------------------------------------------------------------------- class names
def class_names(root: Path) -> list[str] | None:
    """Class names from ``data.yaml``, ``obj.names`` or ``classes.txt``; None when absent."""
    for folder in (root, root / "labels"):
        for yaml_name in ("data.yaml", "dataset.yaml"):
            if (folder / yaml_name).is_file():
                return _yaml_names(folder / yaml_name)
        for name in _NAME_FILES:
            if (folder / name).is_file():
                lines = read_text(folder / name).splitlines()
                return _check_names([line.strip() for line in lines if line.strip()], folder / name)
    return None


def _yaml_names(path: Path) -> list[str]:
    import yaml

    try:
        content = yaml.safe_load(read_text(path)) or {}
    except yaml.YAMLError as exc:
        raise FormatError(f"{path}: expected valid YAML, got {str(exc).splitlines()[0]}") from None
    names = content.get("names") if isinstance(content, dict) else None
    if isinstance(names, dict):
        ids = [int(k) if str(k).strip().isdigit() else k for k in names]
        if sorted(map(str, ids)) != sorted(map(str, range(len(ids)))):
            raise FormatError(f"{path}: expected 'names' ids 0..{len(ids) - 1}, got {list(names)}")
        names = [str(names[k]) for k in sorted(names, key=int)]
    if not isinstance(names, list):
        raise FormatError(f"{path}: expected a 'names' list or {{id: name}} map, got {names!r}")
    return _check_names([str(n) for n in names], path)


def _check_names(names: list[str], path: Path) -> list[str]:
    if not names:
        raise FormatError(f"{path}: expected at least one class name, got none")
    return names


# --------------------------------------------------------------------------- reading
def read(path: Path, classes: list[str] | None = None) -> Dataset:
    """Read a YOLO folder (see the module doc) into a :class:`Dataset`."""
    path = Path(path)
    if not (path / "images").is_dir():
        raise FormatError(f"{path}: expected a YOLO folder with images/ and labels/, got no images/")
    names = list(classes) if classes is not None else class_names(path)
    images = sorted(p for p in (path / "images").rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    parsed = []
    for image in images:
        rel = image.relative_to(path / "images")
        label_file = (path / "labels" / rel).with_suffix(".txt")
        parsed.append((image, rel, label_file, _parse_label_file(label_file)))
    _warn_orphans(path, {p[2] for p in parsed})
    if names is None:
        top = max((r[0] for *_, rows in parsed for r in rows), default=-1)
        names = [str(i) for i in range(top + 1)]
        warn(f"{path}: no data.yaml, obj.names or classes.txt; classes named {names[:5]}...")
    records = []
    for image, rel, label_file, rows in parsed:
        width, height = header_size(image, str(label_file))
        objects = _objects(rows, names, width, height, label_file)
        records.append(ImageRecord(rel.as_posix(), width, height, objects, image, len(records) + 1))
    return Dataset(classes=names, images=records, format="yolo", root=path)


def _warn_orphans(path: Path, used: set[Path]) -> None:
    orphans = sorted(
        p for p in (path / "labels").rglob("*.txt") if p not in used and p.name not in _NAME_FILES
    )
    if orphans:
        shown = ", ".join(str(p.relative_to(path)) for p in orphans[:5])
        warn(f"{path}: {len(orphans)} label file(s) have no image in images/ and were not read: {shown}")


def _parse_label_file(path: Path) -> list[tuple[int, np.ndarray, int]]:
    """Rows of (class id, normalised numbers ``float64[k]``, line number); none when absent."""
    if not path.is_file():
        return []
    rows = []
    for line_no, line in enumerate(read_text(path).splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 5 and (len(parts) < 7 or len(parts) % 2 == 0):
            raise FormatError(
                f"{path}:{line_no}: expected 'cls cx cy w h', 'cls x1 y1 ... x4 y4' or a polygon "
                f"'cls x1 y1 ... xk yk' (k >= 3), got {len(parts)} fields: {line.strip()!r}"
            )
        try:
            cls = int(parts[0])
            values = np.array([float(v) for v in parts[1:]], np.float64)
        except ValueError:
            raise FormatError(
                f"{path}:{line_no}: expected an integer class and numbers, got {line.strip()!r}"
            ) from None
        if not np.isfinite(values).all() or (len(values) == 4 and (values[2:] < 0).any()):
            raise FormatError(
                f"{path}:{line_no}: expected finite coordinates (and w, h >= 0), got {line.strip()!r}"
            )
        rows.append((cls, values, line_no))
    return rows


def _objects(rows: list, names: list[str], width: int, height: int, path: Path) -> Objects:
    if not rows:
        return Objects.empty()
    scale = np.array([width, height], np.float64)
    labels, boxes, rboxes, segs = [], [], [], []
    for cls, values, line_no in rows:
        if not 0 <= cls < len(names):
            raise FormatError(f"{path}:{line_no}: expected a class id in 0..{len(names) - 1}, got {cls}")
        labels.append(cls)
        if len(values) == 4:
            centre, size = values[:2] * scale, values[2:] * scale
            boxes.append(np.concatenate([centre - size / 2, centre + size / 2]))
            rboxes.append(np.full(5, np.nan))
            segs.append(None)
            continue
        poly = (values.reshape(-1, 2) * scale).astype(np.float32)
        boxes.append(polygons_to_boxes(poly[None])[0])
        rboxes.append(polygons_to_rboxes(poly[None])[0] if len(poly) == 4 else np.full(5, np.nan))
        segs.append([poly])
    items = [f"line {r[2]}" for r in rows]
    keep = drop_outside(np.stack(boxes), width, height, str(path), items)
    if not keep.all():
        labels, boxes, rboxes, segs, items = (
            [v for v, k in zip(c, keep, strict=True) if k] for c in (labels, boxes, rboxes, segs, items)
        )
    if not labels:
        return Objects.empty()
    boxes = clip_boxes(np.stack(boxes).astype(np.float32), width, height, str(path), items)
    has_rbox = any(not np.isnan(r).any() for r in rboxes)
    return Objects(
        labels=labels,
        boxes=boxes,
        rboxes=np.stack(rboxes) if has_rbox else None,
        segmentations=segs if any(s is not None for s in segs) else None,
    )


# --------------------------------------------------------------------------- writing
def write(dataset: Dataset, path: Path) -> None:
    """Write ``path/labels/<image path>.txt`` per image and ``path/classes.txt``; symlink
    images whose ``path`` exists into ``path/images/``."""
    path = Path(path)
    (path / "labels").mkdir(parents=True, exist_ok=True)
    (path / "classes.txt").write_text("".join(f"{name}\n" for name in dataset.classes), encoding="utf-8")
    for rec in dataset.images:
        if rec.width <= 0 or rec.height <= 0:
            raise ValueError(
                f"{rec.file_name}: expected a positive image size to normalise by, "
                f"got {rec.width} x {rec.height}"
            )
        _check_relative(rec.file_name)
        label_file = (path / "labels" / rec.file_name).with_suffix(".txt")
        label_file.parent.mkdir(parents=True, exist_ok=True)
        label_file.write_text("".join(line + "\n" for line in _lines(rec)), encoding="utf-8")
        link_image(rec.path, path / "images" / rec.file_name)


def _check_relative(name: str) -> None:
    """YOLO files are written at ``labels/<file_name>``: refuse names that would leave the folder."""
    parts = Path(name).parts
    if Path(name).is_absolute() or ".." in parts or not parts:
        raise ValueError(
            f"{name!r}: expected a relative image file name without '..', to write labels/{name}"
        )


def _lines(rec: ImageRecord) -> list[str]:
    objs, lines, skipped = rec.objects, [], 0
    scale = np.array([rec.width, rec.height], np.float64)
    for i in range(len(objs)):
        corners = object_corners(objs, i, box_fallback=False)
        if corners is not None:
            values = (corners.astype(np.float64) / scale).reshape(-1)
        elif not np.isnan(objs.boxes[i]).any():
            box = objs.boxes[i].astype(np.float64)
            values = np.concatenate([(box[:2] + box[2:]) / 2 / scale, (box[2:] - box[:2]) / scale])
        else:
            skipped += 1
            continue
        lines.append(" ".join([str(int(objs.labels[i]))] + [repr(float(v)) for v in values]))
    if skipped:
        warn(f"{rec.file_name}: skipped {skipped} object(s) without a box (YOLO has no points)")
    return lines
