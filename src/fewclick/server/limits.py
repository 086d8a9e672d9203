"""Caps on what a client sends, each answered with a 413 or 422 that names the limit.

- Names (projects, classes): :data:`MAX_NAME` characters (the database's column size);
  :data:`MAX_CLASSES` classes given with a new project.
- Events in one POST: :data:`MAX_EVENTS_PER_POST`, each event's detail at most
  :data:`MAX_EVENT_DETAIL` characters as JSON (the page's are under 100); creates in one
  annotation batch: :data:`MAX_CREATES`, deletes :data:`MAX_DELETES` (the page splits a
  larger save, thousands of proposals across a large image, into requests of these sizes:
  ``static/js/changes.js``; a script can split its work).
- The body of every request, read as it arrives, stops at the first byte over its route's
  limit (:class:`BodyLimit`, one ASGI middleware for every route): an upload (a form with
  a file) at the app's upload limit (``Settings.max_upload_mb``); a route that carries masks
  as RLE (:data:`MASK_ROUTES`) at :data:`MAX_MASK_BYTES`; every other route at
  :data:`MAX_JSON_BYTES`. Measured: a complex mask of an 8000 x 8000 image (blurred noise
  thresholded at its median) is 0.9 MB of compressed RLE, a 2000 x 2000 one 0.1 MB, so a
  batch of dozens of large masks fits in 64 MB, and no other route needs more than 8 MB.
- Image pixels: an upload's size is read from its header and refused over
  ``imports.MAX_UPLOAD_PIXELS`` before any pixel is decoded; Pillow's own decompression-bomb
  limit is on (:mod:`fewclick.io.images`).
"""

from __future__ import annotations

from fastapi import HTTPException, params
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_NAME = 200
MAX_CLASSES = 1000  # classes a new project is given at once
MAX_EVENTS_PER_POST = 1000
MAX_EVENT_DETAIL = 2000
MAX_CREATES = 1000
MAX_DELETES = 10000  # an image's every object at once, in the densest crowds
MAX_JSON_BYTES = 8 * 2**20
MAX_MASK_BYTES = 64 * 2**20
MASK_ROUTES = {
    "/api/images/{image_id}/annotations",
    "/api/images/{image_id}/annotations/batch",
    "/api/annotations/{annotation_id}",
}


def limited_receive(
    receive: Receive, limit: int, declared: int | None, what: str = "upload limit"
) -> Receive:
    """``receive`` that raises 413 naming ``limit`` (bytes) as soon as the body sent, or
    its declared length, is over it, so that no more of it is read."""
    received = 0

    def too_large() -> HTTPException:
        return HTTPException(413, f"the request body is over the {what} of {limit / 2**20:g} MB")

    async def receive_at_most() -> Message:
        nonlocal received
        if declared is not None and declared > limit:
            raise too_large()
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise too_large()
        return message

    return receive_at_most


def body_limit(scope: Scope) -> tuple[int, str]:
    """The most bytes the body of a request to the route in ``scope`` may have, and the
    limit's name."""
    route = scope.get("route")
    if isinstance(route, APIRoute) and isinstance(getattr(route.body_field, "field_info", None), params.Form):
        return scope["app"].state.settings.max_upload_bytes, "upload limit"
    if isinstance(route, APIRoute) and route.path in MASK_ROUTES:
        return MAX_MASK_BYTES, "limit for bodies carrying masks"
    return MAX_JSON_BYTES, "request body limit"


class BodyLimit:
    """ASGI middleware: every HTTP request's body is read through :func:`limited_receive`
    with its route's :func:`body_limit` (known once routing has run, when the handler
    first reads the body)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limited: Receive | None = None

        async def receive_limited() -> Message:
            nonlocal limited
            if limited is None:
                length = dict(scope["headers"]).get(b"content-length", b"").decode("latin-1")
                limit, what = body_limit(scope)
                limited = limited_receive(receive, limit, int(length) if length.isdigit() else None, what)
            return await limited()

        await self.app(scope, receive_limited, send)
