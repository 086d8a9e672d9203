"""Label Studio JSON: the list of tasks Label Studio exports (and imports).

One task per image::

    [{"id": 1, "data": {"image": "images/a.jpg"},
      "annotations": [{"result": [<result>, ...]}],
      "predictions": [{"model_version": "fewclick", "score": 0.8, "result": [...]}]}]

A result is ``{"type", "from_name", "to_name", "original_width", "original_height",
"value"}`` with ``value`` in percent of the image size:
- ``rectanglelabels``: ``x, y, width, height, rotation``; ``(x, y)`` is the top-left corner
  and ``rotation`` turns the rectangle clockwise on screen about that corner, in degrees;
- ``polygonlabels``: ``points [[x, y], ...]``;
- ``keypointlabels``: ``x, y``;
- ``brushlabels``: ``format "rle"`` and ``rle``: Label Studio's packed RLE of the mask as
  an RGBA image (:func:`brush_encode` / :func:`brush_decode`).
The class is the one name in ``value["<type>"]``; a result's ``score`` is kept in
``Objects.extra["scores"]`` (a prediction's own ``score`` when its results have none).

Reading takes a task's first annotation that was not cancelled, else its first
prediction; other result types (choices, text, ...) are skipped with a warning. Images are
found by ``data.image`` (a path, or a Label Studio URL such as ``/data/upload/3/ab12cd34-a.jpg``
or ``/data/local-files/?d=dir/a.jpg``, matched by its file name, with or without the
8-character prefix uploads get) in ``images_dir``, beside the JSON or in ``images/``.

``write`` puts an image's objects in a prediction when every one has a score, else in an
annotation (scores kept on the results that have one), and writes a matching labeling
config beside the JSON (``<name>.label_config.xml``). Crowd regions are left out.
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qs, unquote, urlparse

import numpy as np

from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.errors import FormatError
from fewclick.io.leftout import LeftOut, geometry_of, object_scores
from fewclick.io.parsing import find_image, finite_number, header_size, load_json, objects_from_rows, warn
from fewclick.io.rle import mask_to_rle, rle_boxes, segmentation_to_mask
from fewclick.types import Objects, polygons_to_boxes, rboxes_to_boxes

__all__ = [
    "sniff",
    "read",
    "write",
    "result",
    "image_name",
    "uploaded_name",
    "brush_encode",
    "brush_decode",
    "label_config",
    "TYPES",
]

#: Result type -> the control name fewclick writes it with.
TYPES = {
    "rectanglelabels": "label",
    "polygonlabels": "polygon",
    "keypointlabels": "keypoint",
    "brushlabels": "brush",
}
_SNIFF_BYTES = 16 * 2**20
_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")


def sniff(path: Path) -> bool:
    """True for a JSON file holding a list of tasks with ``data`` and ``annotations`` or
    ``predictions``."""
    path = Path(path)
    if path.suffix.lower() != ".json" or not path.is_file() or path.stat().st_size > _SNIFF_BYTES:
        return False
    with open(path, "rb") as f:
        if not f.read(64).lstrip().startswith(b"["):
            return False
    try:
        data = load_json(path)
    except (OSError, FormatError):
        return False
    return (
        isinstance(data, list)
        and bool(data)
        and isinstance(data[0], dict)
        and isinstance(data[0].get("data"), dict)
        and ("annotations" in data[0] or "predictions" in data[0])
    )


# --------------------------------------------------------------------------- brush RLE
# Label Studio stores a brush mask as the RGBA image of the mask, flattened, packed by the
# rle-pack scheme: a header (32 bits: value count; 5 bits: word size - 1; 4 x 4 bits: the
# four run-length field sizes - 1), then blocks of 1 bit (1: a repeated value, 0: literal
# values), 2 bits (which run-length field size), the count - 1, and the value(s). Bits are
# most significant first.
_WORD = 8
_RUN_BITS = (3, 4, 8, 16)


def brush_encode(mask: np.ndarray) -> list[int]:
    """``bool[H, W]`` -> Label Studio's brush ``rle`` (a list of bytes): every pixel as
    four bytes of 255 (the mask) or 0, coded as repeated runs."""
    flat = np.repeat(np.asarray(mask, bool).reshape(-1), 4)
    edges = np.concatenate([[0], np.flatnonzero(np.diff(flat.astype(np.int8))) + 1, [flat.size]])
    bits = [_bits(flat.size, 32), _bits(_WORD - 1, 5)] + [_bits(b - 1, 4) for b in _RUN_BITS]
    for start, end in zip(edges[:-1], edges[1:]):
        value = 255 if flat[start] else 0
        remaining = int(end - start)
        while remaining:
            count = min(remaining, 2 ** _RUN_BITS[-1])
            size = next(k for k, b in enumerate(_RUN_BITS) if count - 1 < 2**b)
            bits += ["1", _bits(size, 2), _bits(count - 1, _RUN_BITS[size]), _bits(value, _WORD)]
            remaining -= count
    text = "".join(bits)
    text += "0" * (-len(text) % 8)
    return list(int(text, 2).to_bytes(len(text) // 8, "big")) if text else []


def _bits(value: int, width: int) -> str:
    return format(value, f"0{width}b")


def brush_decode(rle: list[int], height: int, width: int) -> np.ndarray:
    """Label Studio's brush ``rle`` -> ``bool[H, W]`` (the mask is the RGBA image's alpha
    above 0); a ValueError names what is wrong with a malformed one."""
    data = np.unpackbits(np.asarray(rle, np.uint8))
    pos = 0

    def read(n: int) -> int:
        nonlocal pos
        if pos + n > len(data):
            raise ValueError("brush rle ends before its values do")
        value = int("".join(map(str, data[pos : pos + n])) or "0", 2)
        pos += n
        return value

    total, word = read(32), read(5) + 1
    sizes = [read(4) + 1 for _ in range(4)]
    if total != height * width * 4:
        raise ValueError(
            f"brush rle holds {total} values, expected {height} x {width} x 4 = {height * width * 4}"
        )
    out = np.zeros(total, np.uint16 if word > 8 else np.uint8)
    i = 0
    while i < total:
        repeated = read(1)
        end = min(i + 1 + read(sizes[read(2)]), total)
        if repeated:
            out[i:end] = read(word)
        else:
            for k in range(i, end):
                out[k] = read(word)
        i = end
    return out.reshape(height, width, 4)[..., 3] > 0


# --------------------------------------------------------------------------- reading
def read(path: Path, images_dir: Path | None = None) -> Dataset:
    """Read a Label Studio JSON export (see the module doc) into a :class:`Dataset`."""
    path = Path(path)
    tasks = load_json(path)
    if not isinstance(tasks, list):
        raise FormatError(f"{path}: expected a list of Label Studio tasks, got {type(tasks).__name__}")
    folders = ([Path(images_dir)] if images_dir else []) + [path.parent, path.parent / "images"]
    classes: list[str] = []
    records, skipped = [], {}
    for k, task in enumerate(tasks):
        records.append(_record(task, f"{path}: task {k}", classes, folders, len(records) + 1, skipped))
    if skipped:
        kinds = ", ".join(f"{n} {kind}" for kind, n in skipped.items())
        warn(f"{path}: skipped results of types fewclick does not hold: {kinds}")
    return Dataset(classes=classes, images=records, format="labelstudio", root=path.parent)


def _record(
    task, where: str, classes: list[str], folders: list[Path], index: int, skipped: dict
) -> ImageRecord:
    if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
        raise FormatError(f"{where}: expected a task with a 'data' object, got {str(task)[:200]}")
    where = f"{where} (id {task.get('id', '?')})"
    image = task["data"].get("image")
    if not isinstance(image, str) or not image:
        raise FormatError(f"{where}: expected data.image naming the image, got {image!r}")
    name = image_name(image)
    results, default_score = _results(task, where)
    image_path = find_image(name, folders) or find_image(uploaded_name(name), folders)
    width, height = _size(results, image_path, where)
    rows = []
    for k, result in enumerate(results):
        at = f"{where}: result {k}"
        if not isinstance(result, dict) or not isinstance(result.get("value"), dict):
            raise FormatError(f"{at}: expected a result with a 'value' object, got {str(result)[:200]}")
        kind = result.get("type")
        if kind not in TYPES:
            skipped[kind] = skipped.get(kind, 0) + 1
            continue
        rows.append(_row(result, kind, at, classes, width, height, default_score))
    return ImageRecord(name, width, height, objects_from_rows(rows, width, height, where), image_path, index)


def uploaded_name(name: str) -> str:
    """The file name without the 8-character prefix Label Studio gives uploads
    (``1f2e3d4c-a.jpg`` -> ``a.jpg``; other names unchanged)."""
    return _UPLOAD_PREFIX.sub("", PurePosixPath(name).name)


def image_name(image: str) -> str:
    """The image's relative name from ``data.image`` (a path or a Label Studio URL)."""
    url = urlparse(image)
    if "d" in parse_qs(url.query):  # /data/local-files/?d=dir/a.jpg
        return unquote(parse_qs(url.query)["d"][0])
    if url.scheme or url.path.startswith("/data/"):
        return unquote(PurePosixPath(url.path).name)
    return unquote(image)


def _results(task: dict, where: str) -> tuple[list, float]:
    """The results to read (first kept annotation, else first prediction) and the
    prediction's score (NaN for an annotation)."""
    for key in ("annotations", "predictions"):
        entries = task.get(key) or []
        if not isinstance(entries, list):
            raise FormatError(f"{where}: expected '{key}' to be a list, got {type(entries).__name__}")
        kept = [e for e in entries if isinstance(e, dict) and not e.get("was_cancelled")]
        if kept:
            if len(kept) > 1:
                warn(f"{where}: {len(kept)} {key}; the first is read")
            results = kept[0].get("result") or []
            if not isinstance(results, list):
                raise FormatError(
                    f"{where}: expected {key}[0].result to be a list, got {type(results).__name__}"
                )
            score = kept[0].get("score") if key == "predictions" else None
            return results, float(score) if isinstance(score, (int, float)) else float("nan")
    return [], float("nan")


def _size(results: list, image_path: Path | None, where: str) -> tuple[int, int]:
    for result in results:
        if isinstance(result, dict) and "original_width" in result and "original_height" in result:
            w, h = result["original_width"], result["original_height"]
            if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
                return w, h
            raise FormatError(f"{where}: expected positive integer original_width/height, got {w!r}, {h!r}")
    return header_size(image_path, where)


def _row(
    result: dict, kind: str, at: str, classes: list[str], width: int, height: int, default: float
) -> dict:
    value = result["value"]
    names = value.get(kind)
    if not isinstance(names, list) or len(names) != 1 or not isinstance(names[0], str):
        raise FormatError(f"{at}: expected value.{kind} to name one class, got {names!r}")
    if names[0] not in classes:
        classes.append(names[0])
    score = result.get("score", default)
    score = None if isinstance(score, float) and np.isnan(score) else score
    row = {
        "label": classes.index(names[0]),
        "where": at,
        "score": float("nan") if score is None else finite_number(score, "score", at, text=False),
        "rbox": None,
        "point": None,
        "seg": None,
    }
    scale = np.array([width, height], np.float64) / 100
    if kind == "rectanglelabels":
        x, y, w, h = (finite_number(value.get(k), k, at, text=False) for k in ("x", "y", "width", "height"))
        corner, size = np.array([x, y]) * scale, np.array([w, h]) * scale
        rotation = finite_number(value.get("rotation", 0), "rotation", at, text=False)
        if size.min() < 0:
            raise FormatError(f"{at}: expected width and height >= 0, got {w}, {h}")
        if rotation % 360:
            phi = np.deg2rad(rotation)  # clockwise on screen (y down) about the top-left corner
            turn = np.array([[np.cos(phi), -np.sin(phi)], [np.sin(phi), np.cos(phi)]])
            centre = corner + turn @ (size / 2)
            row["rbox"] = np.array([*centre, *size, np.mod(-phi, np.pi)], np.float32)
            row["box"] = rboxes_to_boxes(row["rbox"][None])[0]
        else:
            row["box"] = np.concatenate([corner, corner + size])
    elif kind == "polygonlabels":
        points = value.get("points")
        try:
            poly = np.asarray(points, np.float64).reshape(-1, 2) * scale
        except (TypeError, ValueError):
            raise FormatError(f"{at}: expected points [[x, y], ...], got {str(points)[:200]}") from None
        if len(poly) < 3 or not np.isfinite(poly).all():
            raise FormatError(f"{at}: expected 3 or more finite points, got {str(points)[:200]}")
        row["seg"] = [poly.astype(np.float32)]
        row["box"] = polygons_to_boxes(poly[None])[0]
    elif kind == "keypointlabels":
        row["point"] = np.array([finite_number(value.get(k), k, at, text=False) for k in ("x", "y")]) * scale
        row["box"] = np.full(4, np.nan)
    else:
        if value.get("format", "rle") != "rle" or not isinstance(value.get("rle"), list):
            raise FormatError(f"{at}: expected a brush value with format 'rle' and an 'rle' list of bytes")
        try:
            mask = brush_decode(value["rle"], height, width)
        except ValueError as exc:
            raise FormatError(f"{at}: {exc}") from None
        row["seg"] = mask_to_rle(mask)
        row["box"] = rle_boxes([row["seg"]])[0]
    return row


# --------------------------------------------------------------------------- writing
def label_config(classes: list[str]) -> str:
    """A Label Studio labeling config with the controls :func:`write` names."""
    labels = "".join(f'<Label value="{_attr(name)}"/>' for name in classes)
    controls = {
        "rectanglelabels": "RectangleLabels",
        "polygonlabels": "PolygonLabels",
        "keypointlabels": "KeyPointLabels",
        "brushlabels": "BrushLabels",
    }
    body = "".join(
        f'\n  <{tag} name="{TYPES[kind]}" toName="image">{labels}</{tag}>' for kind, tag in controls.items()
    )
    return f'<View>\n  <Image name="image" value="$image"/>{body}\n</View>\n'


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def write(dataset: Dataset, path: Path) -> list[str]:
    """Write the tasks to the JSON file ``path`` and the labeling config beside it."""
    path = Path(path)
    left = LeftOut("Label Studio")
    tasks = []
    for k, rec in enumerate(dataset.images):
        objs, scores = rec.objects, object_scores(rec.objects)
        results = []
        for i in range(len(objs)):
            if objs.ignore[i]:
                left.add("left out: crowd regions (Label Studio has no crowd flag)", rec.file_name)
                continue
            found = result(objs, i, rec, dataset.classes)
            if found is None:
                left.add("left out: objects without geometry or with an empty mask", rec.file_name)
                continue
            if scores is not None and not np.isnan(scores[i]):
                found["score"] = round(float(scores[i]), 5)
            results.append(found)
        task = {"id": rec.id if rec.id is not None else k + 1, "data": {"image": rec.file_name}}
        if results and all("score" in r for r in results):
            mean = round(float(np.mean([r["score"] for r in results])), 5)
            task.update(
                annotations=[], predictions=[{"model_version": "fewclick", "score": mean, "result": results}]
            )
        else:
            task.update(annotations=[{"result": results}], predictions=[])
        tasks.append(task)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(tasks, f)
    path.with_name(f"{path.stem}.label_config.xml").write_text(label_config(dataset.classes), "utf-8")
    return left.report(path)


def result(
    objs: Objects,
    i: int,
    rec: ImageRecord,
    classes: list[str],
    controls: dict[str, str] | None = None,
    to_name: str = "image",
) -> dict | None:
    """Object ``i`` as one Label Studio result, its class named from ``classes``;
    ``controls`` maps a result type to the control name of the labeling config
    (default :data:`TYPES`), ``to_name`` names its image. None when the object has no
    geometry (or an empty mask)."""
    geometry = geometry_of(objs, i)
    scale = 100 / np.array([rec.width, rec.height], np.float64)
    if geometry == "mask":
        mask = segmentation_to_mask(objs.segmentations[i], rec.height, rec.width)
        if not mask.any():
            return None
        kind, value = "brushlabels", {"format": "rle", "rle": brush_encode(mask)}
    elif geometry == "polygon":
        if len(objs.segmentations[i]) > 1:  # one Label Studio polygon per object: a mask keeps every part
            mask = segmentation_to_mask(objs.segmentations[i], rec.height, rec.width)
            kind, value = "brushlabels", {"format": "rle", "rle": brush_encode(mask)}
        else:
            points = np.asarray(objs.segmentations[i][0], np.float64).reshape(-1, 2) * scale
            kind, value = "polygonlabels", {"points": points.tolist(), "closed": True}
    elif geometry == "rbox":
        cx, cy, w, h, angle = (float(v) for v in objs.rboxes[i])
        phi = -angle
        turn = np.array([[np.cos(phi), -np.sin(phi)], [np.sin(phi), np.cos(phi)]])
        corner = np.array([cx, cy]) - turn @ np.array([w / 2, h / 2])
        kind = "rectanglelabels"
        value = {
            "x": corner[0] * scale[0],
            "y": corner[1] * scale[1],
            "width": w * scale[0],
            "height": h * scale[1],
            "rotation": float(np.mod(np.rad2deg(phi), 360)),
        }
    elif geometry == "box":
        x0, y0, x1, y1 = objs.boxes[i].astype(np.float64)
        kind = "rectanglelabels"
        value = {
            "x": x0 * scale[0],
            "y": y0 * scale[1],
            "width": (x1 - x0) * scale[0],
            "height": (y1 - y0) * scale[1],
        }
        value["rotation"] = 0
    elif geometry == "point":
        x, y = objs.points[i].astype(np.float64) * scale
        kind, value = "keypointlabels", {"x": x, "y": y, "width": 0.5}
    else:
        return None
    return {
        "id": f"{rec.id or 0}_{i}",
        "type": kind,
        "from_name": (controls or TYPES)[kind],
        "to_name": to_name,
        "original_width": rec.width,
        "original_height": rec.height,
        "image_rotation": 0,
        "value": {**value, kind: [classes[objs.labels[i]]]},
    }
