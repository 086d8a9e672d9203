"""Data Science Bowl 2018 nuclei (format "dsb2018"): one PNG per nucleus mask.

Layout: ``root/<id>/images/<id>.png`` and ``root/<id>/masks/*.png`` (0 = background, any
non-zero value = this nucleus); ``root`` may also be the folder above ``stage1_train/``.
One object per mask file, class ``"nucleus"``, with a COCO RLE segmentation and the XYXY
box of its pixels. Mask files without any pixel are skipped with a warning naming them.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.errors import FormatError
from fewclick.io.images import IMAGE_SUFFIXES, image_size, load_array
from fewclick.io.parsing import check_image_size
from fewclick.io.rle import mask_to_rle, rle_boxes
from fewclick.types import Objects

CLASSES = ["nucleus"]


def sniff(path: Path) -> bool:
    """True for a folder whose subfolders (or ``stage1_train/``'s) hold ``images/`` and ``masks/``."""
    root = _root(Path(path))
    return root is not None


def read(path: Path) -> Dataset:
    """Read a DSB 2018 folder; image records are sorted by image id."""
    path = Path(path)
    root = _root(path)
    if root is None:
        raise FormatError(f"{path}: expected subfolders <id>/ holding images/<id>.png and masks/, found none")
    folders = sorted(d for d in root.iterdir() if _is_sample(d))
    images = [_read_sample(root, folder, index) for index, folder in enumerate(folders)]
    return Dataset(classes=list(CLASSES), images=images, root=root)


def mask_objects(mask_files: list[Path], height: int, width: int, label: int = 0) -> Objects:
    """One object per binary mask file (non-zero = object), all of class ``label``.

    Every mask must be ``height x width``; empty masks are skipped with a warning.
    """
    rles = []
    for file in mask_files:
        mask = load_array(file)
        if mask.ndim == 3:
            mask = mask[..., :3].any(axis=2) if mask.shape[2] != 2 else mask[..., 0]
        check_image_size(mask, file, height, width, "a mask of ")
        if not mask.any():
            warnings.warn(f"{file}: empty mask (no object pixels), skipped", stacklevel=2)
            continue
        rles.append(mask_to_rle(mask != 0))
    n = len(rles)
    return Objects(labels=np.full(n, label, np.int64), boxes=rle_boxes(rles), segmentations=rles)


def _root(path: Path) -> Path | None:
    if not path.is_dir():
        return None
    for candidate in (path, path / "stage1_train"):
        if candidate.is_dir() and any(_is_sample(d) for d in candidate.iterdir()):
            return candidate
    return None


def _is_sample(folder: Path) -> bool:
    return (folder / "images").is_dir() and (folder / "masks").is_dir()


def _read_sample(root: Path, folder: Path, index: int) -> ImageRecord:
    image = _image_file(folder)
    width, height = image_size(image)
    masks = sorted(f for f in (folder / "masks").iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    objects = mask_objects(masks, height, width)
    return ImageRecord(image.relative_to(root).as_posix(), width, height, objects, path=image, id=index)


def _image_file(folder: Path) -> Path:
    files = sorted(f for f in (folder / "images").iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    named = [f for f in files if f.stem == folder.name]
    if named:
        return named[0]
    if len(files) == 1:
        return files[0]
    raise FormatError(
        f"{folder / 'images'}: expected one image named {folder.name}.png, got {[f.name for f in files]}"
    )
