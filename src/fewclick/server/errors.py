"""What the store refuses, each with the HTTP status the app answers it with (the app's
handler turns a :class:`StoreError` into ``{"detail": message}``). Here, below every server
module, so that the store and the accounts it checks roles with both raise them."""

from __future__ import annotations

__all__ = [
    "StoreError",
    "NotFound",
    "Forbidden",
    "Conflict",
    "Duplicate",
    "TooLarge",
    "Unprocessable",
    "shown",
]

SHOWN_CHARS = 80  # the most of a refused text a message repeats


def shown(text: str) -> str:
    """``text`` as a message repeats it: its repr, cut after :data:`SHOWN_CHARS` characters
    with its length said (a refused 1 MB name is not sent back whole)."""
    if len(text) <= SHOWN_CHARS:
        return repr(text)
    return f"{text[:SHOWN_CHARS]!r}... ({len(text):,} characters)"


class StoreError(ValueError):
    status = 400


class NotFound(StoreError):
    status = 404


class Forbidden(StoreError):
    status = 403


class Conflict(StoreError):
    status = 409


class Duplicate(Conflict):
    """The file is in the project already, byte for byte: an upload of many says it skipped."""


class TooLarge(StoreError):
    status = 413


class Unprocessable(StoreError):
    status = 422
