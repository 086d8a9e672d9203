"""Small helpers the annotation readers share: warnings, JSON loading and sniffing,
box clipping and finding an image file next to its annotation."""

from __future__ import annotations

import contextlib
import contextvars
import json
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from fewclick.io.errors import FormatError
from fewclick.io.images import IMAGE_SUFFIXES, ImageError, image_size, max_pixels_default
from fewclick.types import Objects

#: Files up to this size are parsed whole when sniffed; larger ones are scanned.
_SNIFF_PARSE_BYTES = 16 * 2**20


class FormatWarning(UserWarning):
    """Annotations that were repaired or skipped while reading (clipped boxes, degenerate polygons, ...)."""


#: the list :func:`warn` appends to while :func:`collected_warnings` says so (None: it warns)
_COLLECTED: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "collected_warnings", default=None
)


def warn(message: str) -> None:
    """Warn with :class:`FormatWarning`, pointing at the caller of the reader; within
    :func:`collected_warnings`, add the message to its list instead."""
    collected = _COLLECTED.get()
    if collected is not None:
        collected.append(message)
        return
    warnings.warn(message, FormatWarning, stacklevel=3)


@contextlib.contextmanager
def collected_warnings():
    """Within it, the readers' repairs (:func:`warn`) are kept in the list it gives, each
    message once per time it was said, and not warned: a server says them in the answer.
    Unlike ``warnings.catch_warnings`` it holds for this thread (context) only, so requests
    read at once keep their own."""
    collected: list[str] = []
    token = _COLLECTED.set(collected)
    try:
        yield collected
    finally:
        _COLLECTED.reset(token)


def parse_xml(path: Path) -> ET.Element:
    """The root of an XML file, or :class:`FormatError` naming the file and the position."""
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as exc:
        line, col = exc.position
        raise FormatError(
            f"{path}: expected well-formed XML, got an error at line {line} column {col}: {exc}"
        ) from None


def load_json(path: Path) -> Any:
    """Parse a JSON file, or raise :class:`FormatError` naming the file and the position."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        ends = " (where the text ends: is the file cut off?)" if exc.pos >= len(exc.doc.rstrip()) else ""
        raise FormatError(
            f"{path}: expected valid JSON, got an error at line {exc.lineno} column {exc.colno}: "
            f"{exc.msg}{ends}"
        ) from None
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path}: expected UTF-8 JSON text, got undecodable bytes ({exc.reason})") from None


def json_kind(path: Path) -> str | None:
    """``"panoptic"``, ``"instances"`` or None for a COCO-style JSON file.

    A file is COCO when it is a JSON object with ``images`` and ``annotations`` lists;
    it is panoptic when its annotations carry ``segments_info``. Files over 16 MiB are
    not parsed: their text is scanned for the first of ``"segments_info"`` / ``"bbox"``
    / ``"segmentation"``.
    """
    try:
        if path.suffix.lower() != ".json" or not path.is_file():
            return None
        if path.stat().st_size > _SNIFF_PARSE_BYTES:
            return _scan_kind(path)
        data = load_json(path)
    except (OSError, FormatError):
        return None
    if not isinstance(data, dict):
        return None
    images, anns = data.get("images"), data.get("annotations")
    if not isinstance(images, list) or not isinstance(anns, list):
        return None
    if anns and isinstance(anns[0], dict) and "segments_info" in anns[0]:
        return "panoptic"
    if not anns and path.stem.startswith("panoptic"):
        return "panoptic"
    return "instances"


def _scan_kind(path: Path) -> str | None:
    markers = (b'"segments_info"', b'"bbox"', b'"segmentation"')
    tail = b""
    with open(path, "rb") as f:
        if not f.read(64).lstrip().startswith(b"{"):
            return None
        f.seek(0)
        while chunk := f.read(8 * 2**20):
            text = tail + chunk
            found = [(text.find(m), m) for m in markers if text.find(m) >= 0]
            if found:
                return "panoptic" if min(found)[1] == markers[0] else "instances"
            tail = text[-32:]
    return None


def clip_boxes(boxes: np.ndarray, width: int, height: int, where: str, items: list) -> np.ndarray:
    """Clip XYXY ``float32[N, 4]`` boxes to the image ``[0, width] x [0, height]``.

    Warns once, naming ``where`` (the file) and the ``items`` (one name per box, e.g.
    annotation ids) of the boxes that were changed. NaN rows are left alone.
    """
    if not len(boxes) or width <= 0 or height <= 0:
        return boxes
    limits = np.array([width, height, width, height], np.float32)
    clipped = np.clip(boxes, 0, limits)
    changed = np.flatnonzero(np.any(clipped != boxes, axis=1) & ~np.isnan(boxes).any(axis=1))
    if len(changed):
        names = ", ".join(str(items[i]) for i in changed[:10])
        more = f" and {len(changed) - 10} more" if len(changed) > 10 else ""
        warn(
            f"{where}: clipped {len(changed)} box(es) reaching outside the {width} x {height} image "
            f"to the image: {names}{more}"
        )
        boxes = np.where(np.isnan(boxes), boxes, clipped)
    return boxes


def outside_image(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """``bool[N]``: the XYXY ``float32[N, 4]`` boxes outside the image: boxes that do not
    touch ``[0, width] x [0, height]``, and boxes with an area that share none with it (a
    zero-area box on the border counts as inside). NaN rows are False."""
    if not len(boxes) or width <= 0 or height <= 0:
        return np.zeros(len(boxes), bool)
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    c = np.clip(b, 0, [width, height, width, height])
    with np.errstate(invalid="ignore"):
        has_area = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
        keeps_area = (c[:, 2] > c[:, 0]) & (c[:, 3] > c[:, 1])
        apart = (b[:, 0] > width) | (b[:, 2] < 0) | (b[:, 1] > height) | (b[:, 3] < 0)
    return apart | (has_area & ~keeps_area)


def drop_outside(
    boxes: np.ndarray, width: int, height: int, where: str, items: list, points: np.ndarray | None = None
) -> np.ndarray:
    """``bool[N]`` keep-mask of the objects inside the image; warns naming the others.

    An object is outside when its XYXY box ``float32[N, 4]`` shares no area with the image,
    or its point ``float[N, 2]`` (x, y) lies outside ``[0, width] x [0, height]``. Such a box
    cannot be clipped to anything but a zero-area box on the border, which no detection
    could match: readers skip these objects instead.
    """
    outside = outside_image(boxes, width, height)
    if points is not None and len(points) and width > 0 and height > 0:
        x, y = np.asarray(points, np.float64).reshape(-1, 2).T
        with np.errstate(invalid="ignore"):
            outside |= (x < 0) | (x > width) | (y < 0) | (y > height)
    if outside.any():
        names = ", ".join(str(items[i]) for i in np.flatnonzero(outside)[:10])
        more = f" and {int(outside.sum()) - 10} more" if outside.sum() > 10 else ""
        warn(
            f"{where}: skipped {int(outside.sum())} object(s) wholly outside the {width} x {height} "
            f"image: {names}{more}"
        )
    return ~outside


#: pixels an annotation file may declare for one image beyond the pixel limit, while
#: :func:`declared_pixels` says so
_DECLARED = contextvars.ContextVar("declared_pixels", default=0)


@contextlib.contextmanager
def declared_pixels(pixels: int):
    """Within it, annotation files may declare images of up to ``pixels`` (when more than
    the pixel limit): an import into a project that holds a slide read by regions, whose
    annotations name its size, while no image is decoded whole."""
    token = _DECLARED.set(int(pixels))
    try:
        yield
    finally:
        _DECLARED.reset(token)


def image_dimensions(width: Any, height: Any, where: str) -> tuple[int, int]:
    """``(width, height)`` as given by an annotation file, checked: positive integers (an
    integral float such as ``640.0`` is accepted) whose product is within the pixel limit
    (:func:`fewclick.io.images.max_pixels_default`, or :func:`declared_pixels`'s)."""
    size = []
    for name, value in (("width", width), ("height", height)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not np.isfinite(value) or value != int(value) or value < 1:
            raise FormatError(f"{where}: expected a positive integer {name}, got {value!r}")
        size.append(int(value))
    limit = max(max_pixels_default(), _DECLARED.get())
    if size[0] * size[1] > limit:
        raise FormatError(
            f"{where}: {size[0]} x {size[1]} = {size[0] * size[1]:,} pixels exceeds the limit of "
            f"{limit:,} (raise FEWCLICK_MAX_PIXELS if the file is trusted)"
        )
    return size[0], size[1]


def read_text(path: Path) -> str:
    """A UTF-8 text file's content, or :class:`FormatError` naming the file."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path}: expected UTF-8 text, got undecodable bytes ({exc.reason})") from None


def find_image(name: str, folders: list[Path]) -> Path | None:
    """The first existing ``folder / name`` (or, when ``name`` has no image suffix, ``folder /
    name + suffix``), else None."""
    for folder in folders:
        candidate = folder / name
        if candidate.is_file():
            return candidate
        if Path(name).suffix.lower() not in IMAGE_SUFFIXES:
            for suffix in IMAGE_SUFFIXES + tuple(s.upper() for s in IMAGE_SUFFIXES):
                candidate = folder / f"{name}{suffix}"
                if candidate.is_file():
                    return candidate
    return None


def header_size(path: Path | None, where: str) -> tuple[int, int]:
    """``(width, height)`` from an image header; ``(0, 0)`` with a warning when the image
    is missing (a label file without its image); :class:`FormatError` when it is unreadable."""
    if path is None:
        warn(f"{where}: image not found; its width and height are set to 0")
        return 0, 0
    try:
        return image_size(path)
    except ImageError as exc:
        raise FormatError(f"{where}: expected a readable image, got {exc}") from None


def fmt_number(value: float) -> str:
    """The shortest text that reads back as the same float32 (``937.0``, ``12.25``)."""
    return np.format_float_positional(np.float32(value), trim="0")


def link_image(record_path: Path | None, target: Path) -> None:
    """Symlink an image file into a written dataset at ``target`` (nothing is copied);
    images without a file on disk, or a target that exists, are left alone."""
    if record_path is not None and Path(record_path).is_file() and not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(Path(record_path).resolve())


def check_image_size(pixels: np.ndarray, path: Path, height: int, width: int, what: str = "") -> None:
    """A ``FormatError`` naming ``path`` unless ``pixels`` is ``height x width``; ``what``
    names the file's role in the message ("a mask of " -> "expected a mask of the image size")."""
    if pixels.shape[:2] != (height, width):
        got = f"{pixels.shape[1]} x {pixels.shape[0]}"
        raise FormatError(f"{path}: expected {what}the image size {width} x {height}, got {got}")


def finite_number(value: Any, name: str, where: str, text: bool = True) -> float:
    """``value`` as a finite float, or :class:`FormatError` naming ``where`` and ``name``;
    ``text=False`` (JSON) accepts only JSON numbers, not numbers written as strings."""
    if not text and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise FormatError(f"{where}: expected a number for {name}, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise FormatError(f"{where}: expected a number for {name}, got {value!r}") from None
    if not np.isfinite(number):
        raise FormatError(f"{where}: expected a finite number for {name}, got {value!r}")
    return number


def objects_from_rows(rows: list[dict], width: int, height: int, where: str) -> Objects:
    """Objects from per-object rows of a reader: ``label``, ``box`` (XYXY, NaN for a
    point), ``rbox``, ``point``, ``seg`` and ``score`` (None / NaN where absent), optional
    ``ignore`` and ``difficult``, and ``where`` naming the object in warnings. Objects
    wholly outside the image are skipped and boxes clipped to it, both with a warning;
    scores go to ``extra["scores"]`` when any object has one."""
    if rows:
        items = [r["where"] for r in rows]
        points = np.stack([np.full(2, np.nan) if r["point"] is None else r["point"] for r in rows])
        keep = drop_outside(np.stack([r["box"] for r in rows]), width, height, where, items, points)
        rows = [r for r, k in zip(rows, keep, strict=True) if k]
    if not rows:
        return Objects.empty()
    items = [r["where"] for r in rows]
    boxes = clip_boxes(np.stack([r["box"] for r in rows]).astype(np.float32), width, height, where, items)

    def column(key: str, size: int) -> np.ndarray | None:
        if all(r[key] is None for r in rows):
            return None
        return np.stack([np.full(size, np.nan) if r[key] is None else r[key] for r in rows]).astype(
            np.float32
        )

    scores = np.array([np.nan if r["score"] is None else r["score"] for r in rows], np.float32)
    return Objects(
        labels=[r["label"] for r in rows],
        boxes=boxes,
        rboxes=column("rbox", 5),
        points=column("point", 2),
        segmentations=[r["seg"] for r in rows] if any(r["seg"] is not None for r in rows) else None,
        ignore=[r.get("ignore", False) for r in rows],
        difficult=[r.get("difficult", 0) for r in rows],
        extra={} if np.isnan(scores).all() else {"scores": scores},
    )
