"""Plain point annotations for users (format "points"): one point and class per object.

Two forms, each beside an ``images/`` folder (or the images themselves):

- CSV with the header ``image,x,y,class`` and optionally ``score``; ``image`` is the file name
  relative to the images folder; x, y in pixels (x = column). A row with empty x, y and class
  declares an image without points. An optional ``classes.txt`` beside the CSV (one name a
  line) fixes the class order and rejects other names; without it classes are taken in
  order of first appearance. Image sizes come from the image headers.
- JSON ``{"classes": [...], "images": [{"file_name": ..., "width": ..., "height": ...,
  "points": [[x, y, class_name], ...]}]}``; a point may carry a score as a fourth item.

Objects get ``points`` ``float32[N, 2]`` (x, y) and NaN ``boxes``; scores, when the file has
them, go to ``Objects.extra["scores"]`` (``float32[N]``, NaN where a row has none).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.errors import FormatError
from fewclick.io.images import ImageError, image_size
from fewclick.io.leftout import LeftOut, geometry_of
from fewclick.io.parsing import drop_outside, finite_number
from fewclick.types import Objects

COLUMNS = ("image", "x", "y", "class")
NAMES = ("points.csv", "points.json")


def sniff(path: Path) -> bool:
    """True for a points CSV/JSON, or a folder holding ``points.csv`` or ``points.json``."""
    path = Path(path)
    if path.is_dir():
        return any((path / name).is_file() for name in NAMES)
    if path.suffix.lower() == ".csv":
        return _sniff_csv(path)
    if path.suffix.lower() == ".json":
        return _sniff_json(path)
    return False


def read(path: Path, images_dir: Path | None = None, classes: list[str] | None = None) -> Dataset:
    """Read a points CSV or JSON (or the folder holding ``points.csv`` / ``points.json``).

    ``images_dir`` defaults to ``images/`` beside the file when it exists, else the file's
    folder. ``classes`` fixes the class list (CSV only; overrides ``classes.txt``).
    """
    file = _points_file(Path(path))
    if images_dir is None:
        images_dir = file.parent / "images" if (file.parent / "images").is_dir() else file.parent
    images_dir = Path(images_dir)
    if file.suffix.lower() == ".csv":
        dataset = _read_csv(file, images_dir, classes)
    else:
        dataset = _read_json(file, images_dir)
    dataset.root = file.parent
    return dataset


def write(dataset: Dataset, path: Path) -> list[str]:
    """Write ``dataset`` as a points CSV (plus ``classes.txt`` beside it) or JSON.

    Each object's point is its annotated point, else its box centre; objects with neither
    are left out. Images are not copied; ``file_name`` is written as given. Returns the
    messages counting the objects written as a centre and those left out.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise FormatError(f"{path}: expected a file name ending in .csv or .json, got {path.suffix!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        _write_csv(dataset, path)
    else:
        _write_json(dataset, path)
    left = LeftOut("points")
    for rec in dataset.images:
        objs = rec.objects
        has_point = np.zeros(len(objs), bool) if objs.points is None else np.isfinite(objs.points).all(1)
        for i in np.flatnonzero(~has_point):
            geometry = geometry_of(objs, i)
            if np.isfinite(objs.boxes[i]).all():
                left.add(f"approximated: {geometry} objects written as their box centre", rec.file_name)
            else:
                left.add("left out: objects without a point or box", rec.file_name)
    return left.report(path)


def object_points(objects: Objects) -> np.ndarray:
    """``float32[N, 2]`` (x, y): the annotated point where finite, else the box centre (may be NaN)."""
    return objects.centers if objects.points is None else _prefer_points(objects)


# --------------------------------------------------------------------------- reading
def _points_file(path: Path) -> Path:
    if path.is_dir():
        for name in NAMES:
            if (path / name).is_file():
                return path / name
        raise FormatError(f"{path}: expected a folder holding {' or '.join(NAMES)}, found neither")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such points file")
    if path.suffix.lower() not in (".csv", ".json"):
        raise FormatError(f"{path}: expected a .csv or .json points file, got {path.suffix!r}")
    return path


def _read_csv(file: Path, images_dir: Path, classes: list[str] | None) -> Dataset:
    if classes is None and (file.parent / "classes.txt").is_file():
        text = (file.parent / "classes.txt").read_text(encoding="utf-8")
        classes = [line.strip() for line in text.splitlines() if line.strip()]
    fixed = classes is not None
    classes = list(classes or [])
    try:
        rows = _csv_rows(file, classes, fixed)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise FormatError(f"{file}: expected UTF-8 CSV text, got {exc}") from None
    images = [_csv_record(name, found, images_dir, file, i) for i, (name, found) in enumerate(rows.items())]
    return Dataset(classes=classes, images=images)


def _csv_rows(file: Path, classes: list[str], fixed: bool) -> dict[str, list]:
    """``{image name: [(x, y, label, score), ...]}`` from the CSV rows, in file order."""
    rows: dict[str, list[tuple[float, float, int, float]]] = {}
    with open(file, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        reader.fieldnames = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise FormatError(
                f"{file}: expected columns {list(COLUMNS)}, got {reader.fieldnames}; missing {missing}"
            )
        for line, row in enumerate(reader, start=2):
            if not (row["image"] or "").strip():
                raise FormatError(f"{file} line {line}: expected an image name, got an empty 'image' cell")
            entries = rows.setdefault(row["image"].strip(), [])
            if all(not (row[c] or "").strip() for c in ("x", "y", "class")):
                continue
            entries.append(_parse_row(row, f"{file} line {line}", classes, fixed))
    return rows


def _parse_row(row: dict, where: str, classes: list[str], fixed: bool) -> tuple[float, float, int, float]:
    x, y = finite_number(row["x"], "x", where), finite_number(row["y"], "y", where)
    name = (row["class"] or "").strip()
    if not name:
        raise FormatError(f"{where}: expected a class name, got an empty cell")
    if name not in classes:
        if fixed:
            raise FormatError(f"{where}: unknown class {name!r}; expected one of {classes}")
        classes.append(name)
    score = row.get("score")
    score = float("nan") if score is None or not score.strip() else finite_number(score, "score", where)
    return x, y, classes.index(name), score


def _csv_record(name: str, entries: list, images_dir: Path, file: Path, index: int) -> ImageRecord:
    image = images_dir / name
    try:
        width, height = image_size(image)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{file}: image {name!r}: {exc}") from None
    except ImageError as exc:
        raise FormatError(f"{file}: image {name!r}: {exc}") from None
    items = [f"point {k} of {name}" for k in range(len(entries))]
    entries = _inside(entries, width, height, str(file), items)
    objects = _objects([(x, y, label) for x, y, label, _ in entries], [s for *_, s in entries])
    return ImageRecord(name, width, height, objects, path=image, id=index)


def _inside(entries: list, width: int, height: int, where: str, items: list[str]) -> list:
    """The (x, y, ...) entries inside ``[0, width] x [0, height]``; warns naming the others."""
    if not entries:
        return entries
    points = np.array([e[:2] for e in entries], np.float64)
    keep = drop_outside(np.full((len(entries), 4), np.nan), width, height, where, items, points)
    return [e for e, k in zip(entries, keep, strict=True) if k]


def _read_json(file: Path, images_dir: Path) -> Dataset:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{file}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise FormatError(f"{file}: expected an object with an 'images' list, got {type(data).__name__}")
    classes = data.get("classes", [])
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise FormatError(f"{file}: expected 'classes' to be a list of names, got {classes!r}")
    images = [_json_record(entry, i, classes, images_dir, file) for i, entry in enumerate(data["images"])]
    seen: dict[str, int] = {}
    for i, rec in enumerate(images):
        if rec.file_name in seen:
            raise FormatError(
                f"{file} images[{i}]: file_name {rec.file_name!r} is also images[{seen[rec.file_name]}]; "
                "expected each image once"
            )
        seen[rec.file_name] = i
    return Dataset(classes=list(classes), images=images)


def _json_record(entry, index: int, classes: list[str], images_dir: Path, file: Path) -> ImageRecord:
    where = f"{file} images[{index}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str):
        raise FormatError(f"{where}: expected an object with a 'file_name' string, got {entry!r:.80}")
    image = images_dir / entry["file_name"]
    width, height = _json_size(entry, where) if "width" in entry else image_size(image)
    rows = []
    points = entry.get("points", [])
    if not isinstance(points, list):
        raise FormatError(f"{where}: expected 'points' to be a list, got {points!r:.80}")
    for k, point in enumerate(points):
        at = f"{where} ({entry['file_name']}) points[{k}]"
        if not isinstance(point, list) or len(point) not in (3, 4):
            raise FormatError(
                f"{at}: expected [x, y, class_name] or [x, y, class_name, score], got {point!r}"
            )
        if not isinstance(point[2], str) or point[2] not in classes:
            raise FormatError(f"{at}: unknown class {point[2]!r}; expected one of {classes}")
        x, y = finite_number(point[0], "x", at, text=False), finite_number(point[1], "y", at, text=False)
        score = finite_number(point[3], "score", at, text=False) if len(point) == 4 else float("nan")
        rows.append((x, y, classes.index(point[2]), score))
    rows = _inside(rows, width, height, where, [f"points[{k}]" for k in range(len(rows))])
    objects = _objects([r[:3] for r in rows], [r[3] for r in rows])
    return ImageRecord(entry["file_name"], width, height, objects, path=image, id=index)


def _json_size(entry: dict, where: str) -> tuple[int, int]:
    size = [finite_number(entry.get(key), key, where, text=False) for key in ("width", "height")]
    if min(size) < 1 or any(v != int(v) for v in size):
        raise FormatError(f"{where}: expected a positive integer width and height, got {size}")
    return int(size[0]), int(size[1])


def _objects(rows: list[tuple[float, float, int]], scores: list[float]) -> Objects:
    n = len(rows)
    xy = np.array([r[:2] for r in rows], np.float32).reshape(n, 2)
    extra = {"scores": np.array(scores, np.float32)} if not np.isnan(scores).all() else {}
    return Objects(
        labels=np.array([r[2] for r in rows], np.int64),
        boxes=np.full((n, 4), np.nan, np.float32),
        points=xy,
        extra=extra,
    )


# --------------------------------------------------------------------------- writing
def _prefer_points(objects: Objects) -> np.ndarray:
    pts = objects.points.copy()
    missing = np.isnan(pts).any(axis=1)
    pts[missing] = objects.centers[missing]
    return pts


def _image_rows(rec: ImageRecord, classes: list[str]):
    """(x, y, class name, score or None) per object that has a point."""
    objects = rec.objects
    pts = object_points(objects) if len(objects) else np.zeros((0, 2), np.float32)
    scores = objects.extra.get("scores")
    for i, ((x, y), label) in enumerate(zip(pts, objects.labels, strict=True)):
        if np.isnan(x) or np.isnan(y):
            continue
        score = None if scores is None or np.isnan(scores[i]) else _short(scores[i])
        yield _short(x), _short(y), classes[label], score


def _short(value: float) -> float:
    """The shortest float that reads back to the same float32 (12.3, not 12.300000190734863)."""
    return float(str(np.float32(value)))


def _has_scores(dataset: Dataset) -> bool:
    return any("scores" in rec.objects.extra for rec in dataset.images)


def _write_csv(dataset: Dataset, path: Path) -> None:
    scored = _has_scores(dataset)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([*COLUMNS, "score"] if scored else COLUMNS)
        for rec in dataset.images:
            rows = list(_image_rows(rec, dataset.classes))
            if not rows:
                writer.writerow([rec.file_name, "", "", ""] + ([""] if scored else []))
            for x, y, name, score in rows:
                tail = ["" if score is None else repr(score)] if scored else []
                writer.writerow([rec.file_name, repr(x), repr(y), name, *tail])
    (path.parent / "classes.txt").write_text("".join(f"{c}\n" for c in dataset.classes), encoding="utf-8")


def _write_json(dataset: Dataset, path: Path) -> None:
    images = []
    for rec in dataset.images:
        points = [
            [x, y, name] + ([] if score is None else [score])
            for x, y, name, score in _image_rows(rec, dataset.classes)
        ]
        images.append(
            {"file_name": rec.file_name, "width": rec.width, "height": rec.height, "points": points}
        )
    path.write_text(
        json.dumps({"classes": list(dataset.classes), "images": images}, indent=1), encoding="utf-8"
    )


# --------------------------------------------------------------------------- sniffing
def _sniff_csv(path: Path) -> bool:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    return all(c in [h.strip() for h in header] for c in COLUMNS)


def _sniff_json(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    if not isinstance(data, dict) or "annotations" in data or not isinstance(data.get("images"), list):
        return False
    images = data["images"]
    if not images:
        return "classes" in data
    return all(isinstance(im, dict) and "points" in im for im in images)
