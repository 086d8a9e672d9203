"""CRCHistoPhenotypes: nucleus centre points in MATLAB files, four classes (format "crchisto").

Layout: ``root/imgN/imgN.bmp`` with ``imgN_detection.mat`` (every marked nucleus) and
``imgN_{epithelial,fibroblast,inflammatory,others}.mat`` (the nuclei that also have a class).
Each ``.mat`` holds one variable ``detection``, ``float64[N, 2]`` rows (x, y) in pixels; an
empty file holds a ``(0, 2)`` or ``(0, 0)`` array.

One object per DETECTION point, and no other. A class-file point gives its class to a
detection point within ``match_radius`` (6 px); the pairing is one-to-one, nearest first, so
exact copies pair before near ones and two class points on a duplicated detection point label
both copies. Class-file points lie up to 6 px off their detection point: on the 75
development images every class point but 40 coincides with one, and those 40 lie 0.97 to
5.96 px from the nearest (the same nuclei, marked again), so 6 px pairs every class point and
the per-class counts equal the class files' (SOURCE.md). Detection points that no class point
reaches get the extra class ``"unclassified"`` (5,168 of 21,491). A class point that pairs
with none is left out and counted in ``Dataset.extra["unpaired_class_points"]`` (0 on the
development images). Objects have ``points`` ``float32[N, 2]`` (x, y) and NaN ``boxes``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fewclick.extras import require
from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.errors import FormatError
from fewclick.io.images import image_size
from fewclick.types import Objects

CLASSES = ("epithelial", "fibroblast", "inflammatory", "others")
UNCLASSIFIED = "unclassified"
MATCH_RADIUS = 6.0  # px: the farthest class-file point from its detection point is 5.96 px


def sniff(path: Path) -> bool:
    """True for a folder whose subfolders ``imgN`` hold ``imgN_detection.mat``."""
    path = Path(path)
    return path.is_dir() and any(_image_dirs(path))


def read(path: Path, match_radius: float = MATCH_RADIUS) -> Dataset:
    """Read a CRCHistoPhenotypes folder; classes are the four of the dataset plus ``"unclassified"``.

    A missing class file counts as a class file with no points; a missing detection file
    means the folder is not an image folder and is skipped.
    """
    root = Path(path)
    folders = sorted(_image_dirs(root), key=lambda d: d.name) if root.is_dir() else []
    if not folders:
        raise FormatError(f"{root}: expected subfolders imgN/ holding imgN_detection.mat, found none")
    images, unpaired, unclassified = [], 0, 0
    for index, folder in enumerate(folders):
        rec, lone = _read_image(root, folder, match_radius)
        rec.id = index
        images.append(rec)
        unpaired += lone
        unclassified += int((rec.objects.labels == len(CLASSES)).sum())
    extra = {"unclassified_detection_points": unclassified, "unpaired_class_points": unpaired}
    return Dataset(classes=[*CLASSES, UNCLASSIFIED], images=images, root=root, extra=extra)


def load_points(path: Path) -> np.ndarray:
    """The ``detection`` variable of one ``.mat`` file as ``float64[N, 2]`` rows (x, y)."""
    matlab = require("scipy.io", "reading MATLAB files")
    loadmat, MatReadError = matlab.loadmat, matlab.matlab.MatReadError

    path = Path(path)
    try:
        content = loadmat(path)
    except (MatReadError, OSError, ValueError, TypeError) as exc:
        raise FormatError(f"{path}: cannot read MATLAB file ({exc})") from None
    if "detection" not in content:
        names = [k for k in content if not k.startswith("__")]
        raise FormatError(f"{path}: expected a variable 'detection', got variables {names}")
    arr = np.asarray(content["detection"])
    if arr.size == 0:
        return np.zeros((0, 2), np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2 or not np.issubdtype(arr.dtype, np.number):
        raise FormatError(
            f"{path}: expected 'detection' of shape (N, 2) numbers, got {arr.shape} {arr.dtype}"
        )
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        row = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise FormatError(f"{path}: expected finite coordinates, got {arr[row].tolist()} in row {row}")
    return arr


def match_points(detections: np.ndarray, others: np.ndarray, radius: float = MATCH_RADIUS) -> np.ndarray:
    """Pair each row of ``others`` ``[M, 2]`` with at most one row of ``detections`` ``[N, 2]``.

    Returns ``int64[M]``: the detection index, or -1. Pairs closer than ``radius`` (inclusive)
    are taken one-to-one, nearest first (ties in the order of ``others``).
    """
    match = np.full(len(others), -1, np.int64)
    if not len(detections) or not len(others):
        return match
    detections, others = np.asarray(detections, np.float64), np.asarray(others, np.float64)
    pairs = []
    for start in range(0, len(others), 1024):  # rows of others x all detections, a block at a time
        block = others[start : start + 1024]
        dist = np.hypot(*np.moveaxis(block[:, None, :] - detections[None, :, :], -1, 0))
        rows, cols = np.nonzero(dist <= radius)
        pairs += zip(dist[rows, cols].tolist(), (rows + start).tolist(), cols.tolist(), strict=True)
    pairs.sort()
    used = np.zeros(len(detections), bool)
    for _, i, j in pairs:
        if match[i] < 0 and not used[j]:
            match[i], used[j] = j, True
    return match


def _image_dirs(root: Path):
    for child in root.iterdir():
        if child.is_dir() and (child / f"{child.name}_detection.mat").is_file():
            yield child


def _read_image(root: Path, folder: Path, radius: float) -> tuple[ImageRecord, int]:
    """The image's record and how many class points paired with no detection point."""
    name = folder.name
    detections = load_points(folder / f"{name}_detection.mat")
    class_points, class_labels = [], []
    for label, cls in enumerate(CLASSES):
        file = folder / f"{name}_{cls}.mat"
        pts = load_points(file) if file.is_file() else np.zeros((0, 2))
        class_points.append(pts)
        class_labels.append(np.full(len(pts), label, np.int64))
    labels = np.concatenate(class_labels)
    match = match_points(detections, np.concatenate(class_points), radius)
    det_labels = np.full(len(detections), len(CLASSES), np.int64)
    det_labels[match[match >= 0]] = labels[match >= 0]
    objects = Objects(
        labels=det_labels,
        boxes=np.full((len(detections), 4), np.nan, np.float32),
        points=detections.astype(np.float32),
    )
    image = folder / f"{name}.bmp"
    width, height = image_size(image)
    return ImageRecord(f"{name}/{name}.bmp", width, height, objects, path=image), int((match < 0).sum())
