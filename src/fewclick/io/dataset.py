"""One in-memory dataset that every reader fills and every writer reads."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fewclick.types import Objects


@dataclass
class ImageRecord:
    """One image and its objects.

    ``path`` is the image file on disk; ``file_name`` the name a written dataset uses for
    it (relative, with forward slashes). ``extra`` carries what a format has beyond
    objects (DOTA's ``imagesource``/``gsd``, GrabCut's void band and scribble maps, ...).
    """

    file_name: str
    width: int
    height: int
    objects: Objects
    path: Path | None = None
    id: int | None = None
    extra: dict = field(default_factory=dict)

    def load_image(self, max_pixels: int | None = None) -> np.ndarray:
        """The image as ``uint8[H, W, 3]`` RGB, checked against the annotated size: an
        :class:`~fewclick.io.images.ImageError` naming the file when its pixels are not
        ``width x height`` (annotations drawn for another size would be silently wrong);
        ``FileNotFoundError`` when the record has no file."""
        from fewclick.io.images import ImageError, load_image

        if self.path is None or not Path(self.path).is_file():
            raise FileNotFoundError(f"image {self.file_name!r}: no image file found (path {self.path})")
        image = load_image(self.path, max_pixels)
        if image.shape[:2] != (self.height, self.width):
            got = f"{image.shape[1]} x {image.shape[0]}"
            raise ImageError(
                f"{self.path}: expected the annotated size {self.width} x {self.height} "
                f"(image {self.file_name!r}), got {got} pixels"
            )
        return image


@dataclass
class Dataset:
    """Images, class names and per-image objects.

    Object ``labels`` index ``classes``. ``category_ids`` keeps the file's own class ids
    (COCO's 1..90) so that a written COCO file keeps them; None means ``1..len(classes)``.
    """

    classes: list[str]
    images: list[ImageRecord]
    format: str = "unknown"
    root: Path | None = None
    category_ids: list[int] | None = None
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    def image(self, name: str) -> ImageRecord:
        """The image whose ``file_name`` or file stem is ``name``."""
        for rec in self.images:
            if name in (rec.file_name, Path(rec.file_name).name, Path(rec.file_name).stem):
                return rec
        shown = ", ".join(r.file_name for r in self.images[:5])
        raise KeyError(f"no image named {name!r} in the dataset (it has {len(self.images)}: {shown}, ...)")

    def class_id(self, name: str) -> int:
        try:
            return self.classes.index(name)
        except ValueError:
            raise KeyError(f"unknown class {name!r}; the dataset has {self.classes}") from None

    def summary(self) -> dict:
        """The JSON-ready summary that ``fewclick data info`` prints."""
        per_class: Counter[str] = Counter()
        n_objects = n_ignore = 0
        sizes: Counter[str] = Counter()
        for rec in self.images:
            objs = rec.objects
            n_objects += len(objs)
            n_ignore += int(objs.ignore.sum())
            for label in objs.labels:
                per_class[self.classes[label]] += 1
            sizes[f"{rec.width}x{rec.height}"] += 1
        return {
            "format": self.format,
            "images": len(self.images),
            "objects": n_objects,
            "ignore_objects": n_ignore,
            "classes": list(self.classes),
            "objects_per_class": {c: per_class[c] for c in self.classes if per_class[c]},
            "image_sizes": dict(sizes.most_common()),
            "objects_per_image": _range([len(r.objects) for r in self.images]),
            **({"details": self.extra} if self.extra else {}),
        }


def _range(values: list[int]) -> dict:
    if not values:
        return {"min": 0, "max": 0, "mean": 0.0}
    arr = np.asarray(values)
    return {"min": int(arr.min()), "max": int(arr.max()), "mean": round(float(arr.mean()), 2)}


def split_by_image(dataset: Dataset, every: int = 4, part: str = "train") -> Dataset:
    """A deterministic split by image: images sorted by name, every ``every``-th one
    (0-based positions every-1, 2*every-1, ...) is "test", the rest "train" (the rule the
    shared datasets were split by, applied again inside their development part)."""
    if part not in ("train", "test"):
        raise ValueError(f"expected part 'train' or 'test', got {part!r}")
    if every < 2:
        raise ValueError(f"expected every >= 2, got {every}")
    ordered = sorted(dataset.images, key=lambda r: r.file_name)
    chosen = [r for i, r in enumerate(ordered) if (i % every == every - 1) == (part == "test")]
    return Dataset(
        dataset.classes, chosen, dataset.format, dataset.root, dataset.category_ids, dict(dataset.extra)
    )
