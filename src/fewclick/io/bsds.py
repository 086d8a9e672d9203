"""BSDS500 (format "bsds500"): full-image human segmentations in MATLAB files.

Layout: ``root/BSDS500/data/images/<split>/<id>.jpg`` with
``root/BSDS500/data/groundTruth/<split>/<id>.mat`` (``root`` may also be ``BSDS500/`` or
``BSDS500/data/``). Each ``.mat`` holds 4-8 independent segmentations (``groundTruth{k}
.Segmentation``, region ids 1..n, every pixel in a region). Per image the reader keeps one:
the segmentation whose region count is the median of the image's counts (the lower median
for an even number; the first annotator's among equals). Every region is one object of
class ``"region"`` with its RLE and box; ``extra`` says which segmentation was kept
(``segmentation``, 0-based) of how many (``segmentations``). There is no void: the
full-image protocol makes regions under a share of the image void (its ``--min-region``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fewclick.extras import require
from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.errors import FormatError
from fewclick.io.images import IMAGE_SUFFIXES, image_size
from fewclick.io.labelmap import label_objects
from fewclick.io.parsing import check_image_size

CLASSES = ["region"]


def sniff(path: Path) -> bool:
    """True for a folder whose ``images/`` and ``groundTruth/`` (under ``BSDS500/data/``) exist."""
    return _data(Path(path)) is not None


def read(path: Path) -> Dataset:
    """Every image with a ``.mat``; records sorted by split, then by id."""
    path = Path(path)
    data = _data(path)
    if data is None:
        raise FormatError(
            f"{path}: expected BSDS500/data/images/ and BSDS500/data/groundTruth/, found neither"
        )
    images = []
    for mat in sorted((data / "groundTruth").glob("*/*.mat")):
        image = _image(data / "images" / mat.parent.name, mat.stem)
        width, height = image_size(image)
        segmentations = human_segmentations(mat)
        kept = median_segmentation(segmentations)
        labels = segmentations[kept]
        check_image_size(labels, mat, height, width, "a segmentation of ")
        record = ImageRecord(
            image.relative_to(data).as_posix(),
            width,
            height,
            label_objects(labels),
            path=image,
            id=len(images),
            extra={"segmentation": kept, "segmentations": len(segmentations)},
        )
        images.append(record)
    return Dataset(classes=list(CLASSES), images=images, root=data)


def human_segmentations(mat: Path) -> list[np.ndarray]:
    """The region maps of one ``.mat``, one per annotator."""
    loadmat = require("scipy.io", "reading MATLAB files").loadmat
    try:
        cells = loadmat(mat)["groundTruth"]
        return [np.asarray(cells[0, k]["Segmentation"][0, 0]) for k in range(cells.shape[1])]
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise FormatError(
            f"{mat}: expected a 1 x K cell array groundTruth of Segmentation maps ({exc})"
        ) from None


def median_segmentation(segmentations: list[np.ndarray]) -> int:
    """The index of the segmentation whose region count is the (lower) median count."""
    if not segmentations:
        raise FormatError("no segmentation to choose from")
    counts = [len(np.unique(s)) for s in segmentations]
    median = sorted(counts)[(len(counts) - 1) // 2]
    return counts.index(median)


def _data(path: Path) -> Path | None:
    for candidate in (path / "BSDS500" / "data", path / "data", path):
        if (candidate / "images").is_dir() and (candidate / "groundTruth").is_dir():
            return candidate
    return None


def _image(folder: Path, stem: str) -> Path:
    for suffix in sorted(IMAGE_SUFFIXES):
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    raise FormatError(f"{folder}: no image {stem}.jpg for {stem}.mat")
