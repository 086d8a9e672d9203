"""Coelho et al. 2009 hand-segmented nuclei (format "coelho2009"): label PNGs.

Layout: ``root/data/images/dna-images/<set>/dna-<n>.png`` (the images) and
``root/data/preprocessed-data/<set>/dna-<n>.png`` (8-bit label images of the same name and
size: 0 = background, 1..N = one id per nucleus). One object per nucleus, class
``"nucleus"``, with a COCO RLE and its box. The background is no object: the full-image
protocol makes it one region of its own.
"""

from __future__ import annotations

from pathlib import Path

from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.errors import FormatError
from fewclick.io.images import image_size, load_array
from fewclick.io.labelmap import label_objects
from fewclick.io.parsing import check_image_size

CLASSES = ["nucleus"]
IMAGES = Path("data/images/dna-images")
LABELS = Path("data/preprocessed-data")


def sniff(path: Path) -> bool:
    """True for a folder holding both ``data/images/dna-images/`` and ``data/preprocessed-data/``."""
    path = Path(path)
    return (path / IMAGES).is_dir() and (path / LABELS).is_dir()


def read(path: Path) -> Dataset:
    """Every image that has a label image; records sorted by set, then by name."""
    root = Path(path)
    if not sniff(root):
        raise FormatError(f"{root}: expected {IMAGES}/ and {LABELS}/ (the Coelho 2009 layout)")
    images = []
    for label_file in sorted((root / LABELS).glob("*/*.png")):
        image = root / IMAGES / label_file.parent.name / label_file.name
        if not image.is_file():
            raise FormatError(f"{label_file}: no image {image.relative_to(root)} for this label image")
        width, height = image_size(image)
        labels = load_array(label_file)
        if labels.ndim == 3:
            raise FormatError(
                f"{label_file}: expected a one-channel label image, got {labels.shape[2]} channels"
            )
        check_image_size(labels, label_file, height, width, "a label image of ")
        objects = label_objects(labels, skip=(0,))
        name = image.relative_to(root).as_posix()
        images.append(ImageRecord(name, width, height, objects, path=image, id=len(images)))
    return Dataset(classes=list(CLASSES), images=images, root=root)
