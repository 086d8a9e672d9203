"""YOLO txt: ``images/**/<name>.<ext>`` + ``labels/**/<name>.txt`` (same relative path).

One object per line, coordinates normalised by the image width and height:
``cls cx cy w h`` (a box), ``cls x1 y1 x2 y2 x3 y3 x4 y4`` (an oriented box, Ultralytics
OBB; kept like DOTA: its corners as the segmentation, the min-area oriented box, the
corners' min/max as box) or ``cls x1 y1 ... xk yk`` with k >= 3, k != 4 (a YOLO-seg
polygon; box = its min/max). A line with an even number of fields ends with a score
(Ultralytics' ``save_conf``), kept in ``Objects.extra["scores"]``. Class names come from
``classes``, else ``data.yaml`` (``names`` as a list or an ``{id: name}`` map),
``obj.names`` or ``classes.txt`` in the root or ``labels/``; without any, classes are
named ``"0"``, ``"1"``, ... with a warning.

``write(dataset, path, kind)`` writes detection, segmentation or OBB labels with a
``data.yaml``; what a kind cannot hold is counted in the messages it returns.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import yaml

from fewclick.io.coco_fields import polygon_area
from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.dota import object_corners
from fewclick.io.errors import FormatError
from fewclick.io.images import IMAGE_SUFFIXES
from fewclick.io.leftout import LeftOut, object_scores
from fewclick.io.parsing import clip_boxes, drop_outside, header_size, link_image, read_text, warn
from fewclick.io.rle import mask_to_polygons, segmentation_outlines, segmentation_window
from fewclick.types import Objects, polygons_to_boxes, polygons_to_rboxes, rboxes_to_polygons

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


def _parse_label_file(path: Path) -> list[tuple[int, np.ndarray, int, float]]:
    """Rows of (class id, normalised numbers ``float64[k]``, line number, score or NaN);
    none when the file is absent."""
    if not path.is_file():
        return []
    rows = []
    for line_no, line in enumerate(read_text(path).splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        geometry = len(parts) - 1 - (len(parts) % 2 == 0)  # an even count ends with a score
        if geometry != 4 and (geometry < 6 or geometry % 2):
            raise FormatError(
                f"{path}:{line_no}: expected 'cls cx cy w h', 'cls x1 y1 ... x4 y4' or a polygon "
                f"'cls x1 y1 ... xk yk' (k >= 3), each with an optional score, got {len(parts)} "
                f"fields: {line.strip()!r}"
            )
        try:
            cls = int(parts[0])
            values = np.array([float(v) for v in parts[1:]], np.float64)
        except ValueError:
            raise FormatError(
                f"{path}:{line_no}: expected an integer class and numbers, got {line.strip()!r}"
            ) from None
        score = float(values[-1]) if len(values) > geometry else float("nan")
        values = values[:geometry]
        if not np.isfinite(values).all() or (len(values) == 4 and (values[2:] < 0).any()):
            raise FormatError(
                f"{path}:{line_no}: expected finite coordinates (and w, h >= 0), got {line.strip()!r}"
            )
        rows.append((cls, values, line_no, score))
    return rows


def _objects(rows: list, names: list[str], width: int, height: int, path: Path) -> Objects:
    if not rows:
        return Objects.empty()
    scale = np.array([width, height], np.float64)
    labels, boxes, rboxes, segs, scores = [], [], [], [], []
    for cls, values, line_no, score in rows:
        if not 0 <= cls < len(names):
            raise FormatError(f"{path}:{line_no}: expected a class id in 0..{len(names) - 1}, got {cls}")
        labels.append(cls)
        scores.append(score)
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
        labels, boxes, rboxes, segs, items, scores = (
            [v for v, k in zip(c, keep, strict=True) if k]
            for c in (labels, boxes, rboxes, segs, items, scores)
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
        extra={} if np.isnan(scores).all() else {"scores": np.array(scores, np.float32)},
    )


# --------------------------------------------------------------------------- writing
#: Writer kinds: what one line holds.
KINDS = ("detect", "segment", "obb")


def write(dataset: Dataset, path: Path, kind: str = "detect") -> list[str]:
    """Write a YOLO folder of ``kind`` (see :data:`KINDS`): ``labels/<image path>.txt`` per
    image, ``data.yaml`` naming the classes (Ultralytics' layout: ``path``, ``train``,
    ``val``, ``names``), and symlinks of the images that exist on disk in ``images/``.

    - ``detect``: ``cls cx cy w h`` per object with a box (a polygon's or mask's enclosing box);
    - ``segment``: ``cls x1 y1 ... xk yk`` per object with a polygon or mask (a mask as its
      outer contour, an object in several parts as its largest part), ``cls cx cy w h`` for
      one with only a box;
    - ``obb``: ``cls x1 y1 ... x4 y4``: the corners of its oriented box, of its one
      4-point polygon, of the min-area rectangle around its polygons, or of its box.

    A score (``Objects.extra["scores"]``) is appended as the line's last number, as
    Ultralytics' ``save_conf`` does. Points and crowd regions are left out; the returned
    messages count them (and what was approximated)."""
    if kind not in KINDS:
        raise ValueError(f"expected a YOLO kind among {KINDS}, got {kind!r}")
    path = Path(path)
    (path / "labels").mkdir(parents=True, exist_ok=True)
    names = {i: name for i, name in enumerate(dataset.classes)}
    data_yaml = {"path": ".", "train": "images", "val": "images", "names": names}
    (path / "data.yaml").write_text(yaml.safe_dump(data_yaml, sort_keys=False, allow_unicode=True), "utf-8")
    label_files = Counter(Path(rec.file_name).with_suffix(".txt") for rec in dataset.images)
    repeated = sorted(str(n) for n, count in label_files.items() if count > 1)
    if repeated:
        raise ValueError(f"expected one label file per image, got labels/{repeated[0]} for several images")
    left = LeftOut(f"YOLO {kind}")
    for rec in dataset.images:
        if rec.width <= 0 or rec.height <= 0:
            raise ValueError(
                f"{rec.file_name}: expected a positive image size to normalise by, "
                f"got {rec.width} x {rec.height}"
            )
        _check_relative(rec.file_name)
        label_file = (path / "labels" / rec.file_name).with_suffix(".txt")
        label_file.parent.mkdir(parents=True, exist_ok=True)
        lines = _lines(rec, kind, left)
        label_file.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        link_image(rec.path, path / "images" / rec.file_name)
    return left.report(path)


def _check_relative(name: str) -> None:
    """YOLO files are written at ``labels/<file_name>``: refuse names that would leave the folder."""
    parts = Path(name).parts
    if Path(name).is_absolute() or ".." in parts or not parts:
        raise ValueError(
            f"{name!r}: expected a relative image file name without '..', to write labels/{name}"
        )


def _lines(rec: ImageRecord, kind: str, left: LeftOut) -> list[str]:
    objs, lines = rec.objects, []
    scores = object_scores(objs)
    scale = np.array([rec.width, rec.height], np.float64)
    for i in range(len(objs)):
        geometry = left.writable(objs, i, rec.file_name, "YOLO", "YOLO holds boxes and polygons")
        if geometry is None:
            continue
        if kind == "detect" or (kind == "segment" and geometry in ("box", "rbox")):
            box = objs.boxes[i].astype(np.float64)
            values = np.concatenate([(box[:2] + box[2:]) / 2 / scale, (box[2:] - box[:2]) / scale])
        elif kind == "segment":
            outline = _outline(objs.segmentations[i], rec, left)
            if outline is None:  # a mask too small to outline: its box
                box = objs.boxes[i].astype(np.float64)
                outline = np.array([box[:2], box[[2, 1]], box[2:], box[[0, 3]]])
            values = (outline / scale).reshape(-1)
        else:
            if geometry in ("polygon", "mask") and object_corners(objs, i, box_fallback=False) is None:
                left.add(f"approximated: {geometry}s written as their min-area rectangle", rec.file_name)
            values = (_corners(objs, i).astype(np.float64) / scale).reshape(-1)
        if scores is not None and not np.isnan(scores[i]):
            values = np.append(values, scores[i])
        lines.append(" ".join([str(int(objs.labels[i]))] + [repr(float(v)) for v in values]))
    return lines


def _outline(seg, rec: ImageRecord, left: LeftOut) -> np.ndarray | None:
    """One polygon ``float64[K, 2]`` for a segmentation: its only polygon, else its largest;
    None when it has none of 3 points or more."""
    if isinstance(seg, dict):
        polygons = segmentation_outlines(seg, rec.height, rec.width)
        left.add("approximated: masks written as the outline of their pixels", rec.file_name)
    else:
        polygons = [np.asarray(p, np.float64).reshape(-1, 2) for p in seg]
    polygons = [p for p in polygons if len(p) >= 3]
    if not polygons:
        return None
    if len(polygons) > 1:
        left.add("approximated: objects in several parts written as their largest part", rec.file_name)
    return max(polygons, key=lambda p: abs(polygon_area(np.asarray(p, np.float64)))).astype(np.float64)


def _corners(objs: Objects, i: int) -> np.ndarray:
    corners = object_corners(objs, i, box_fallback=False)
    if corners is None and objs.segmentations is not None and objs.segmentations[i] is not None:
        seg = objs.segmentations[i]
        if isinstance(seg, dict):
            window, (x0, y0) = segmentation_window(seg, *seg["size"])
            seg = [p + np.float32([x0, y0]) for p in mask_to_polygons(window, min_points=1)]
        points = np.concatenate([np.asarray(p, np.float32).reshape(-1, 2) for p in seg])
        corners = rboxes_to_polygons(polygons_to_rboxes(points[None]))[0]
    return object_corners(objs, i) if corners is None else corners
