"""The GrabCut interactive-segmentation benchmark (format "grabcut"), with scribble maps.

Layout: ``images/<name>.<ext>``, ``ground-truth/<name>.png`` (255 = object, 0 = background,
128 = unlabelled band along the boundary) and optionally ``scribbles-set-1/<name>-anno.png``,
``scribbles-set-2/<name>-anno.png`` (1 = foreground scribble, 2 = background, 0 = none).

One object per image, class ``"object"``, whose RLE segmentation is the 255 pixels (none
when the ground truth has no 255 pixel).
``ImageRecord.extra["void"]`` is the RLE of the 128 band (evaluation ignores it; an image
without a band gets an empty RLE) and ``extra["scribble_maps"]`` maps ``"set-1"`` /
``"set-2"`` to the scribble file paths that exist; :func:`load_scribble_map` reads one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.errors import FormatError
from fewclick.io.images import IMAGE_SUFFIXES, image_size, load_array
from fewclick.io.parsing import check_image_size
from fewclick.io.rle import mask_to_rle, rle_boxes
from fewclick.types import Objects

CLASSES = ["object"]
OBJECT, VOID = 255, 128
SCRIBBLE_SETS = ("set-1", "set-2")


def sniff(path: Path) -> bool:
    """True for a folder holding ``images/`` and ``ground-truth/``."""
    path = Path(path)
    return (path / "images").is_dir() and (path / "ground-truth").is_dir()


def read(path: Path) -> Dataset:
    """Read the benchmark; images without a ground-truth file are an error."""
    root = Path(path)
    if not sniff(root):
        raise FormatError(f"{root}: expected folders images/ and ground-truth/")
    files = sorted(f for f in (root / "images").iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    images = [_read_image(root, file, index) for index, file in enumerate(files)]
    return Dataset(classes=list(CLASSES), images=images, root=root)


def load_scribble_map(path: Path) -> np.ndarray:
    """A scribble map as ``uint8[H, W]``: 0 = no input, 1 = foreground, 2 = background."""
    path = Path(path)
    arr = load_array(path)
    if arr.ndim != 2:
        raise FormatError(f"{path}: expected a single-channel (palette) scribble map, got shape {arr.shape}")
    bad = ~np.isin(arr, (0, 1, 2))
    if bad.any():
        y, x = np.argwhere(bad)[0]
        raise FormatError(f"{path}: expected values 0, 1, 2, got {arr[y, x]} at (x={x}, y={y})")
    return arr.astype(np.uint8)


def _read_image(root: Path, image: Path, index: int) -> ImageRecord:
    width, height = image_size(image)
    truth = root / "ground-truth" / f"{image.stem}.png"
    gt = _load_truth(truth, height, width)
    rles = [mask_to_rle(gt == OBJECT)] if (gt == OBJECT).any() else []
    objects = Objects(labels=np.zeros(len(rles), np.int64), boxes=rle_boxes(rles), segmentations=rles)
    scribbles = {}
    for name in SCRIBBLE_SETS:
        file = root / f"scribbles-{name}" / f"{image.stem}-anno.png"
        if file.is_file():
            scribbles[name] = file
    extra = {"void": mask_to_rle(gt == VOID), "scribble_maps": scribbles}
    return ImageRecord(f"images/{image.name}", width, height, objects, path=image, id=index, extra=extra)


def _load_truth(path: Path, height: int, width: int) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no ground-truth file for image {path.stem}")
    gt = load_array(path)
    if gt.ndim == 3:
        gt = gt[..., 0]
    check_image_size(gt, path, height, width, "a ground truth of ")
    bad = ~np.isin(gt, (0, VOID, OBJECT))
    if bad.any():
        y, x = np.argwhere(bad)[0]
        raise FormatError(f"{path}: expected values 0, 128, 255, got {gt[y, x]} at (x={x}, y={y})")
    return gt
