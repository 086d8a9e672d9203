"""The data types every fewclick package speaks.

Conventions, everywhere:
- coordinates are (x, y) in pixels of the full image, x = column, y = row;
- axis-aligned boxes are absolute XYXY ``float32[N, 4]``;
- oriented boxes are ``float32[N, 5]`` rows ``(cx, cy, w, h, angle)``, angle in radians,
  counter-clockwise from the x axis as seen on screen with y pointing down
  (OpenCV's ``minAreaRect`` convention converted to radians); their DOTA form is the
  ``float32[N, 4, 2]`` array of the four corners;
- masks are ``bool[N, H, W]``; RLE only at file and network boundaries;
- class ids index the dataset's list of class names, in the file's order.

Only numpy is imported here, so ``fewclick.types`` loads fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Click",
    "Clicks",
    "Detections",
    "Objects",
    "Scribble",
    "ExtremePoints",
    "as_boxes",
    "as_rboxes",
    "rboxes_to_polygons",
    "polygons_to_rboxes",
    "polygons_to_boxes",
    "rboxes_to_boxes",
    "box_centers",
]


# --------------------------------------------------------------------------- clicks
@dataclass(frozen=True)
class Click:
    """One click at pixel ``(x, y)``.

    ``label`` is the class id for click-to-detect; ``positive`` says whether a mask
    click adds (True) or removes (False) pixels. A click used for detection leaves
    ``positive`` at True; a mask click leaves ``label`` at 0.
    """

    x: float
    y: float
    label: int = 0
    positive: bool = True


@dataclass(frozen=True)
class Clicks:
    """A columnar set of clicks: ``xy float32[N, 2]``, ``labels int64[N]``, ``positive bool[N]``."""

    xy: np.ndarray
    labels: np.ndarray
    positive: np.ndarray

    def __post_init__(self) -> None:
        xy = np.asarray(self.xy, dtype=np.float32).reshape(-1, 2)
        n = len(xy)
        labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        positive = np.asarray(self.positive, dtype=bool).reshape(-1)
        if len(labels) != n or len(positive) != n:
            raise ValueError(
                f"expected xy, labels and positive of one length, got {n}, {len(labels)}, {len(positive)}"
            )
        object.__setattr__(self, "xy", xy)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "positive", positive)

    @classmethod
    def empty(cls) -> Clicks:
        return cls(np.zeros((0, 2), np.float32), np.zeros(0, np.int64), np.zeros(0, bool))

    @classmethod
    def from_list(cls, clicks: list[Click]) -> Clicks:
        if not clicks:
            return cls.empty()
        return cls(
            np.array([(c.x, c.y) for c in clicks], np.float32),
            np.array([c.label for c in clicks], np.int64),
            np.array([c.positive for c in clicks], bool),
        )

    def to_list(self) -> list[Click]:
        return [
            Click(float(x), float(y), int(lab), bool(pos))
            for (x, y), lab, pos in zip(self.xy, self.labels, self.positive)
        ]

    def __len__(self) -> int:
        return len(self.xy)

    def __getitem__(self, index: Any) -> Clicks:
        index = _as_index(index)
        return Clicks(self.xy[index], self.labels[index], self.positive[index])

    def __add__(self, other: Clicks) -> Clicks:
        return Clicks(
            np.concatenate([self.xy, other.xy]),
            np.concatenate([self.labels, other.labels]),
            np.concatenate([self.positive, other.positive]),
        )


# --------------------------------------------------------------------------- strokes
@dataclass(frozen=True)
class Scribble:
    """A polyline ``points float32[K, 2]`` (x, y) of one stroke; ``region`` is the id of
    the region it extends (full-image mode) or 1 / 0 for foreground / background."""

    points: np.ndarray
    region: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "points", np.asarray(self.points, np.float32).reshape(-1, 2))


@dataclass(frozen=True)
class ExtremePoints:
    """The four extreme points of a region, ``points float32[4, 2]`` in the order
    left-most, top-most, right-most, bottom-most."""

    points: np.ndarray

    def __post_init__(self) -> None:
        pts = np.asarray(self.points, np.float32)
        if pts.shape != (4, 2):
            raise ValueError(f"expected extreme points of shape (4, 2), got {pts.shape}")
        object.__setattr__(self, "points", pts)

    @property
    def box(self) -> np.ndarray:
        """The XYXY box the four points define, ``float32[4]``."""
        return np.array(
            [self.points[0, 0], self.points[1, 1], self.points[2, 0], self.points[3, 1]], np.float32
        )


# --------------------------------------------------------------------------- boxes
def as_boxes(boxes: Any) -> np.ndarray:
    """Validate and return XYXY boxes as ``float32[N, 4]``."""
    return _rows(boxes, 4, "boxes")


def mask_box(mask: np.ndarray) -> np.ndarray | None:
    """The tight XYXY box of a ``bool[H, W]`` mask, edges at pixel borders (x1 / y1 one past
    the last mask pixel), ``float32[4]``; None for an empty mask."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def as_rboxes(rboxes: Any) -> np.ndarray:
    """Validate and return oriented boxes ``(cx, cy, w, h, angle)`` as ``float32[N, 5]``."""
    return _rows(rboxes, 5, "oriented boxes")


def _rows(values: Any, width: int, what: str) -> np.ndarray:
    """``values`` as ``float32[N, width]`` (empty input: N = 0), or ValueError naming ``what``."""
    arr = np.asarray(values, dtype=np.float32)
    if arr.size == 0:
        return np.zeros((0, width), np.float32)
    if arr.ndim != 2 or arr.shape[1] != width:
        raise ValueError(f"expected {what} of shape (N, {width}), got {arr.shape}")
    return arr


def rboxes_to_polygons(rboxes: Any) -> np.ndarray:
    """Oriented boxes ``float32[N, 5]`` -> corner polygons ``float32[N, 4, 2]``.

    The corners run clockwise on screen (y down), starting at the corner that is at
    ``(-w/2, -h/2)`` in the box frame, as DOTA lists them for an unrotated box.
    """
    rb = as_rboxes(rboxes).astype(np.float64)
    cx, cy, w, h, a = (rb[:, i] for i in range(5))
    local = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
    dx = local[None, :, 0] * w[:, None]
    dy = local[None, :, 1] * h[:, None]
    # y points down, so a counter-clockwise on-screen rotation by `a` is (x, y) ->
    # (x cos a + y sin a, -x sin a + y cos a).
    cos, sin = np.cos(a)[:, None], np.sin(a)[:, None]
    px = cx[:, None] + dx * cos + dy * sin
    py = cy[:, None] - dx * sin + dy * cos
    return np.stack([px, py], axis=-1).astype(np.float32)


def polygons_to_rboxes(polygons: Any) -> np.ndarray:
    """Quadrilaterals ``float[N, 4, 2]`` (DOTA corners) -> the minimum-area oriented
    boxes that enclose them, ``float32[N, 5]``; ``w`` is the side along ``angle``.

    For a rectangle this is an exact inverse of :func:`rboxes_to_polygons` up to the
    box symmetry (angle modulo pi, or w/h swapped with angle shifted by pi/2).
    """
    from fewclick.extras import require

    cv2 = require("cv2", "oriented boxes from corners (DOTA, YOLO-OBB)")

    polys = np.asarray(polygons, dtype=np.float32)
    if polys.size == 0:
        return np.zeros((0, 5), np.float32)
    if polys.ndim != 3 or polys.shape[2] != 2:
        raise ValueError(f"expected polygons of shape (N, K, 2), got {polys.shape}")
    out = np.zeros((len(polys), 5), np.float32)
    for i, poly in enumerate(polys):
        (cx, cy), (w, h), deg = cv2.minAreaRect(poly)
        # OpenCV's angle turns clockwise on screen; ours turns counter-clockwise.
        angle = -np.deg2rad(deg)
        out[i] = (cx, cy, w, h, _wrap_angle(angle))
    return out


def _wrap_angle(angle: float) -> float:
    """Map an angle to [0, pi): a box is the same after a half turn."""
    return float(np.mod(angle, np.pi))


def polygons_to_boxes(polygons: Any) -> np.ndarray:
    """Corner polygons ``float[N, K, 2]`` -> their enclosing XYXY boxes ``float32[N, 4]``."""
    polys = np.asarray(polygons, dtype=np.float32)
    if polys.size == 0:
        return np.zeros((0, 4), np.float32)
    return np.concatenate([polys.min(axis=1), polys.max(axis=1)], axis=1)


def rboxes_to_boxes(rboxes: Any) -> np.ndarray:
    """Oriented boxes -> their enclosing XYXY boxes ``float32[N, 4]``."""
    return polygons_to_boxes(rboxes_to_polygons(rboxes))


def box_centers(boxes: Any) -> np.ndarray:
    """XYXY boxes -> their centres ``float32[N, 2]`` (x, y)."""
    b = as_boxes(boxes)
    return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], axis=1)


# --------------------------------------------------------------------------- detections
@dataclass(frozen=True)
class Detections:
    """Model output for one image, columnar.

    boxes ``float32[N, 4]`` XYXY; scores ``float32[N]``; labels ``int64[N]`` class ids;
    rboxes ``float32[N, 5]`` or None (oriented models; then ``boxes`` encloses them);
    masks ``bool[N, H, W]`` or None; points ``float32[N, 2]`` or None (points mode).
    Indexing with an int, slice, index array or boolean mask returns ``Detections``.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    rboxes: np.ndarray | None = None
    masks: np.ndarray | None = None
    points: np.ndarray | None = None

    def __post_init__(self) -> None:
        boxes = as_boxes(self.boxes)
        n = len(boxes)
        scores = np.asarray(self.scores, np.float32).reshape(-1)
        labels = np.asarray(self.labels, np.int64).reshape(-1)
        _check_len("scores", scores, n)
        _check_len("labels", labels, n)
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "labels", labels)
        if self.rboxes is not None:
            rboxes = as_rboxes(self.rboxes)
            _check_len("rboxes", rboxes, n)
            object.__setattr__(self, "rboxes", rboxes)
        if self.masks is not None:
            masks = np.asarray(self.masks, bool)
            if masks.ndim != 3:
                raise ValueError(f"expected masks of shape (N, H, W), got {masks.shape}")
            _check_len("masks", masks, n)
            object.__setattr__(self, "masks", masks)
        if self.points is not None:
            points = np.asarray(self.points, np.float32).reshape(-1, 2)
            _check_len("points", points, n)
            object.__setattr__(self, "points", points)

    @classmethod
    def empty(cls, oriented: bool = False) -> Detections:
        return cls(
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros(0, np.int64),
            rboxes=np.zeros((0, 5), np.float32) if oriented else None,
        )

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, index: Any) -> Detections:
        index = _as_index(index)
        return Detections(
            self.boxes[index],
            self.scores[index],
            self.labels[index],
            rboxes=None if self.rboxes is None else self.rboxes[index],
            masks=None if self.masks is None else self.masks[index],
            points=None if self.points is None else self.points[index],
        )

    @classmethod
    def concatenate(cls, parts: list[Detections]) -> Detections:
        """Join detections of one image; all parts must carry the same optional fields."""
        if not parts:
            return cls.empty()

        def cat(name: str) -> np.ndarray | None:
            values = [getattr(p, name) for p in parts]
            if all(v is None for v in values):
                return None
            if any(v is None for v in values):
                raise ValueError(f"cannot concatenate detections with and without {name}")
            return np.concatenate(values)

        return cls(
            cat("boxes"),
            cat("scores"),
            cat("labels"),
            rboxes=cat("rboxes"),
            masks=cat("masks"),
            points=cat("points"),
        )


# --------------------------------------------------------------------------- ground truth
Polygons = list  # list[np.ndarray[K, 2]] - the parts of one object's outline
RLE = dict  # COCO run-length encoding {"size": [h, w], "counts": str | list[int]}


@dataclass
class Objects:
    """The annotated objects of one image, columnar.

    labels ``int64[N]``; boxes ``float32[N, 4]`` XYXY (NaN rows for objects known only by
    a point); rboxes ``float32[N, 5]`` or None; points ``float32[N, 2]`` or None (annotated
    points, NaN where an object has none); segmentations: a list of N entries, each a list
    of polygons ``float32[K, 2]``, a COCO RLE dict, or None; ignore ``bool[N]`` (COCO
    crowd, DontCare, ...; evaluation neither rewards nor penalises them); difficult
    ``uint8[N]`` (DOTA's flag, 0 elsewhere); extra: format-specific values, where a numpy
    array or list of length N is per object (indexing takes its items) and anything else
    is copied.
    """

    labels: np.ndarray
    boxes: np.ndarray
    rboxes: np.ndarray | None = None
    points: np.ndarray | None = None
    segmentations: list | None = None
    ignore: np.ndarray | None = None
    difficult: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, np.int64).reshape(-1)
        n = len(self.labels)
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4) if n else np.zeros((0, 4), np.float32)
        _check_len("boxes", self.boxes, n)
        if self.rboxes is not None:
            self.rboxes = as_rboxes(self.rboxes)
            _check_len("rboxes", self.rboxes, n)
        if self.points is not None:
            self.points = np.asarray(self.points, np.float32).reshape(-1, 2)
            _check_len("points", self.points, n)
        if self.segmentations is not None:
            self.segmentations = list(self.segmentations)
            _check_len("segmentations", self.segmentations, n)
        self.ignore = np.zeros(n, bool) if self.ignore is None else np.asarray(self.ignore, bool).reshape(-1)
        _check_len("ignore", self.ignore, n)
        self.difficult = (
            np.zeros(n, np.uint8)
            if self.difficult is None
            else np.asarray(self.difficult, np.uint8).reshape(-1)
        )
        _check_len("difficult", self.difficult, n)

    @classmethod
    def empty(cls) -> Objects:
        return cls(np.zeros(0, np.int64), np.zeros((0, 4), np.float32))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: Any) -> Objects:
        index = _as_index(index)
        idx = np.arange(len(self))[index].reshape(-1)
        return Objects(
            self.labels[idx],
            self.boxes[idx],
            rboxes=None if self.rboxes is None else self.rboxes[idx],
            points=None if self.points is None else self.points[idx],
            segmentations=None if self.segmentations is None else [self.segmentations[i] for i in idx],
            ignore=self.ignore[idx],
            difficult=self.difficult[idx],
            extra={k: _take(v, idx, len(self)) for k, v in self.extra.items()},
        )

    @property
    def centers(self) -> np.ndarray:
        """Object centres ``float32[N, 2]``: the box centre, else the annotated point."""
        centers = box_centers(self.boxes) if len(self) else np.zeros((0, 2), np.float32)
        if self.points is not None:
            missing = np.isnan(centers).any(axis=1)
            centers[missing] = self.points[missing]
        return centers


def _take(value: Any, idx: np.ndarray, n: int) -> Any:
    if isinstance(value, np.ndarray) and len(value) == n:
        return value[idx]
    if isinstance(value, list) and len(value) == n:
        return [value[i] for i in idx]
    return value


def _check_len(name: str, values: Any, n: int) -> None:
    if len(values) != n:
        raise ValueError(f"expected {n} {name} (one per object), got {len(values)}")


def _as_index(index: Any) -> Any:
    """Normalise an index so that indexing a column keeps its leading axis."""
    if isinstance(index, (int, np.integer)):
        return slice(int(index), int(index) + 1) if index != -1 else slice(-1, None)
    return index


def geometry_only(objects: Objects, oriented: bool = True) -> Objects:
    """``objects`` without segmentations (and without oriented boxes when ``oriented`` is
    False): what detectors learn from, and masks are slow to crop. ``extra`` stays (a
    training loss weight travels there)."""
    return Objects(
        objects.labels,
        objects.boxes,
        rboxes=objects.rboxes if oriented else None,
        points=objects.points,
        ignore=objects.ignore,
        difficult=objects.difficult,
        extra=objects.extra,
    )


def scaled_geometry(objects: Objects, scale: float) -> Objects:
    """``objects``' geometry (as :func:`geometry_only`) with every coordinate multiplied by
    ``scale``: the objects of the image resized by that factor (angles unchanged)."""
    rboxes = None
    if objects.rboxes is not None:
        rboxes = objects.rboxes.copy()
        rboxes[:, :4] *= scale
    return Objects(
        objects.labels,
        objects.boxes * scale,
        rboxes=rboxes,
        points=None if objects.points is None else objects.points * scale,
        ignore=objects.ignore,
        difficult=objects.difficult,
        extra=objects.extra,
    )
