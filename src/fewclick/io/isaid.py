"""iSAID instance masks on DOTA aerial images (format "isaid").

Per image ``<name>.png``: ``<name>_instance_id_RGB.png`` (instance id = R + 256 G + 65536 B,
0 = background) and ``<name>_instance_color_RGB.png`` (the class colour of every pixel, see
:data:`CLASS_COLORS`). The files may sit anywhere below the folder read (the devkit keeps
them in ``{train,val}/images/``).

One object per instance id: a COCO RLE segmentation, the XYXY box of its pixels and the
minimum-area oriented box of its pixel squares (``cv2.minAreaRect`` through
:func:`fewclick.types.polygons_to_rboxes`). The class is the colour most of the instance's
pixels carry; instances whose pixels carry several colours are reported with a warning and
counted in ``Dataset.extra["mixed_class_instances"]`` (none in the devkit samples).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from fewclick.extras import require
from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.errors import FormatError
from fewclick.io.images import image_size, load_array
from fewclick.io.parsing import check_image_size
from fewclick.io.rle import mask_to_rle, rle_boxes
from fewclick.types import Objects, polygons_to_rboxes

ID_SUFFIX = "_instance_id_RGB.png"
COLOR_SUFFIX = "_instance_color_RGB.png"

#: The devkit's class colours (R, G, B), in its label order.
CLASS_COLORS: dict[str, tuple[int, int, int]] = {
    "ship": (0, 0, 63),
    "storage_tank": (0, 63, 63),
    "baseball_diamond": (0, 63, 0),
    "tennis_court": (0, 63, 127),
    "basketball_court": (0, 63, 191),
    "Ground_Track_Field": (0, 63, 255),
    "Bridge": (0, 127, 63),
    "Large_Vehicle": (0, 127, 127),
    "Small_Vehicle": (0, 0, 127),
    "Helicopter": (0, 0, 191),
    "Swimming_pool": (0, 0, 255),
    "Roundabout": (0, 191, 127),
    "Soccer_ball_field": (0, 127, 191),
    "plane": (0, 127, 255),
    "Harbor": (0, 100, 155),
}
CLASSES = list(CLASS_COLORS)


def sniff(path: Path) -> bool:
    """True for a folder with ``*_instance_id_RGB.png`` files below it, or one such file."""
    path = Path(path)
    if path.is_file():
        return path.name.endswith(ID_SUFFIX)
    return path.is_dir() and next(path.rglob(f"*{ID_SUFFIX}"), None) is not None


def read(path: Path) -> Dataset:
    """Read every ``*_instance_id_RGB.png`` below ``path`` with its image and colour map."""
    root = Path(path)
    id_files = [root] if root.is_file() else sorted(root.rglob(f"*{ID_SUFFIX}"))
    if root.is_file():
        root = root.parent
    if not id_files:
        raise FormatError(f"{root}: expected files named <image>{ID_SUFFIX}, found none")
    images, mixed = [], 0
    for index, id_file in enumerate(id_files):
        rec, n_mixed = _read_image(root, id_file, index)
        images.append(rec)
        mixed += n_mixed
    return Dataset(classes=list(CLASSES), images=images, root=root, extra={"mixed_class_instances": mixed})


def mask_rbox(mask: np.ndarray) -> np.ndarray:
    """The minimum-area oriented box ``float32[5]`` (cx, cy, w, h, angle) around the pixel
    squares of ``bool[H, W]`` (pixel (x, y) covers [x, x + 1) x [y, y + 1))."""
    cv2 = require("cv2", "oriented boxes of iSAID masks")

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    xy = np.concatenate([c.reshape(-1, 2) for c in contours]).astype(np.float32)
    corners = (xy[:, None, :] + np.array([[0, 0], [1, 0], [0, 1], [1, 1]], np.float32)).reshape(-1, 2)
    quad = cv2.boxPoints(cv2.minAreaRect(corners))
    return polygons_to_rboxes(quad[None])[0]


def _read_image(root: Path, id_file: Path, index: int) -> tuple[ImageRecord, int]:
    stem = id_file.name[: -len(ID_SUFFIX)]
    image = id_file.with_name(f"{stem}.png")
    width, height = image_size(image)
    ids = _load_rgb(id_file, height, width).astype(np.int64)
    ids = ids[..., 0] + 256 * ids[..., 1] + 65536 * ids[..., 2]
    colors = _color_labels(id_file.with_name(f"{stem}{COLOR_SUFFIX}"), height, width)
    objects, mixed = _objects(ids, colors, id_file)
    if mixed:
        warnings.warn(
            f"{id_file}: {mixed} instance(s) carry several class colours; each took its majority class",
            stacklevel=3,
        )
    rel = image.relative_to(root).as_posix()
    return ImageRecord(rel, width, height, objects, path=image, id=index), mixed


def _load_rgb(path: Path, height: int, width: int) -> np.ndarray:
    arr = load_array(path)
    if arr.ndim != 3 or arr.shape[2] < 3:
        raise FormatError(f"{path}: expected an RGB image, got pixels of shape {arr.shape}")
    check_image_size(arr, path, height, width)
    return arr[..., :3]


def _color_labels(path: Path, height: int, width: int) -> np.ndarray:
    """``int64[H, W]``: class id per pixel, -1 for black (background)."""
    rgb = _load_rgb(path, height, width).astype(np.int64)
    code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    lookup = {(r << 16) | (g << 8) | b: k for k, (r, g, b) in enumerate(CLASS_COLORS.values())}
    lookup[0] = -1
    values, inverse = np.unique(code, return_inverse=True)
    unknown = [v for v in values.tolist() if v not in lookup]
    if unknown:
        v = unknown[0]
        y, x = np.argwhere(code == v)[0]
        colour = (v >> 16, (v >> 8) & 255, v & 255)
        known = list(CLASS_COLORS.values())
        raise FormatError(f"{path}: unknown class colour {colour} at (x={x}, y={y}); expected one of {known}")
    return np.array([lookup[v] for v in values.tolist()], np.int64)[inverse.reshape(code.shape)]


def _objects(ids: np.ndarray, colors: np.ndarray, id_file: Path) -> tuple[Objects, int]:
    find_objects = require("scipy.ndimage", "reading iSAID").find_objects
    values, index = np.unique(ids, return_inverse=True)
    index = index.reshape(ids.shape)
    if values[0] != 0:  # no background pixel: shift so that index k + 1 is instance values[k]
        values, index = np.concatenate([[0], values]), index + 1
    labels, rles, rboxes, mixed = [], [], [], 0
    full = np.zeros(ids.shape, bool)
    for k, box in enumerate(find_objects(index), start=1):
        crop = index[box] == k
        classes, counts = np.unique(colors[box][crop], return_counts=True)
        if not (classes >= 0).any():
            raise FormatError(
                f"{id_file}: instance {values[k]} has no class colour (black in {COLOR_SUFFIX})"
            )
        mixed += int(len(classes) > 1)
        counts[classes < 0] = 0
        labels.append(int(classes[np.argmax(counts)]))
        full[box] = crop
        rles.append(mask_to_rle(full))
        full[box] = False
        rboxes.append(mask_rbox(crop) + np.array([box[1].start, box[0].start, 0, 0, 0], np.float32))
    objects = Objects(
        labels=np.array(labels, np.int64),
        boxes=rle_boxes(rles),
        rboxes=np.array(rboxes, np.float32).reshape(-1, 5),
        segmentations=rles,
        extra={"instance_ids": np.asarray(values[1:], np.int64)},
    )
    return objects, mixed
