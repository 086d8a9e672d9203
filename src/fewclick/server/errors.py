"""What the store refuses, each with the HTTP status the app answers it with (the app's
handler turns a :class:`StoreError` into ``{"detail": message}``). Here, below every server
module, so that the store and the accounts it checks roles with both raise them."""

from __future__ import annotations

__all__ = ["StoreError", "NotFound", "Forbidden", "Conflict", "TooLarge"]


class StoreError(ValueError):
    status = 400


class NotFound(StoreError):
    status = 404


class Forbidden(StoreError):
    status = 403


class Conflict(StoreError):
    status = 409


class TooLarge(StoreError):
    status = 413
