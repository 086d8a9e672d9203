"""Which files a request may make the server read.

A project's folder, a dataset to import and every image file such a dataset names must
resolve (``~`` expanded, links followed) inside one of the app's data roots
(``fewclick serve --data-root``; by default its data folder), else 403 naming the path and
the roots. A dataset's image names must stay inside the dataset: an absolute name or one
with ``..`` is refused, naming the image entry. A file becomes a project image only when
Pillow reads it as an image whose size the tile limits allow
(:func:`fewclick.server.tiles.check_size`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePath

from fewclick.io.dataset import Dataset
from fewclick.io.images import ImageError
from fewclick.io.regions import image_extent
from fewclick.server.store import StoreError
from fewclick.server.tiles import check_size


class Forbidden(StoreError):
    status = 403


def resolve(text: str | Path, what: str) -> Path:
    """``text`` with ``~`` expanded and links followed; a StoreError (400) naming it when
    that fails (an unknown user in ``~user``, a loop of links, a NUL byte)."""
    try:
        return Path(text).expanduser().resolve()
    except (RuntimeError, OSError, ValueError) as exc:
        raise StoreError(f"{what} {str(text)!r} cannot be resolved: {exc}") from None


def allowed(text: str | Path, roots: Sequence[Path], what: str) -> Path:
    """``text`` resolved, when it lies inside one of ``roots``; else :class:`Forbidden`
    naming the path and the roots."""
    path = resolve(text, what)
    if not any(path.is_relative_to(root) for root in roots):
        raise Forbidden(
            f"{what} {str(text)!r} ({path}) is outside the data roots ({', '.join(map(str, roots))}): "
            "start the server with --data-root to allow another folder"
        )
    return path


def check_dataset(data: Dataset, roots: Sequence[Path], adds_images: bool) -> None:
    """Refuse a dataset that names an image outside itself; with ``adds_images`` (its
    images become the project's), also one whose image file lies outside ``roots``, is not
    an image, or is too large to serve. Every error names the image entry."""
    for i, rec in enumerate(data.images):
        where = f"image entry {i} (id {rec.id}, file_name {rec.file_name!r})"
        name = PurePath(rec.file_name)
        if name.is_absolute() or ".." in name.parts:
            raise StoreError(
                f"{where}: expected a file name inside the dataset's image folder, "
                "got an absolute name or one with '..'"
            )
        if adds_images and rec.path is not None:
            path = allowed(rec.path, roots, f"{where}: the image file")
            if path.is_file():
                try:
                    check_size(*image_extent(path))
                except ImageError as exc:
                    raise StoreError(f"{where}: {exc}") from None
                except ValueError as exc:
                    raise StoreError(f"{where}: {path}: {exc}") from None
