"""What may name a project image's file: an upload's name made safe on the way in, and the
check an export makes before it names a file after an image.

An upload keeps its own base name: the part after the last slash of either kind (a browser
on Windows may send ``C:\\Users\\ann\\a.png``), without a drive letter, surrounding spaces
or leading dots; the characters Windows cannot hold in a name (``<>:"|?*``) become ``_``
so that an export unzips anywhere. A name with a control character (NUL, a line break, a
right-to-left override) or longer than :data:`MAX_NAME` characters is refused, naming why.

A name already stored (a project made before uploads were normalised) is checked again
by :func:`export_problem`: an export leaves out an image whose name would put a file
outside its folder, and says so, instead of failing as a whole.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath

from fewclick.server.errors import shown

MAX_NAME = 200  # characters in an upload's name (file systems hold 255 bytes; ".part" is added)
_DRIVE = re.compile(r"^[A-Za-z]:")
_WINDOWS_RESERVED = re.compile(r'[<>:"|?*]')


class FileNameError(ValueError):
    """A file name that cannot name an image, said in words."""


def _control(name: str) -> str | None:
    """The first control or format character in ``name`` (C0, C1, bidi overrides), or None."""
    return next((c for c in name if unicodedata.category(c) in ("Cc", "Cf")), None)


def upload_name(name: str) -> str:
    """The base name an upload sent as ``name`` is stored under; a :class:`FileNameError`
    naming the problem when none is left or it holds a control character."""
    bad = _control(name)
    if bad is not None:
        raise FileNameError(
            f"expected a file name without control characters, got {shown(name)} (holds {bad!r})"
        )
    base = _DRIVE.sub("", name.replace("\\", "/").rsplit("/", 1)[-1]).strip().lstrip(".").strip()
    if not base:
        raise FileNameError(f"expected a file name, got no file name in {shown(name)}")
    if len(base) > MAX_NAME:
        raise FileNameError(f"expected a file name of at most {MAX_NAME} characters, got {len(base)}")
    return _WINDOWS_RESERVED.sub("_", base)


def export_problem(name: str) -> str | None:
    """Why ``name`` (an image's stored ``file_name``) cannot name a file inside an export
    folder, or None when it can: a relative name, slash-separated, with no ``..``, no
    backslash, no drive letter and no control character."""
    path = PurePosixPath(name)
    if _control(name) is not None:
        return "it holds a control character"
    if "\\" in name or _DRIVE.match(name):
        return "it holds a backslash or a drive letter"
    if path.is_absolute() or ".." in path.parts or not path.name:
        return "it is absolute, holds '..' or names no file"
    return None
