"""The server's log: every request gets an id, and every record made while it runs names it.

:func:`add_request_ids` gives an app ``asgi-correlation-id``'s middleware: a request's id is
its ``X-Request-ID`` header when that is a plain token (letters, digits, ``._-``, at most 64),
else a new one, and every response carries it back in ``X-Request-ID``. An exception no
handler took answers 500 ``{"detail": "internal error", "request_id": ...}`` and its
traceback goes to the log under that id. :func:`configure` sends the ``fewclick`` loggers to
stderr with the id on each line (``-`` outside a request).
"""

from __future__ import annotations

import logging
import re
import sys

from asgi_correlation_id import CorrelationIdFilter, CorrelationIdMiddleware, correlation_id
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

HEADER = "X-Request-ID"
FORMAT = "%(asctime)s %(levelname)s %(name)s [request %(correlation_id)s] %(message)s"
_TOKEN = re.compile(r"[A-Za-z0-9._-]{1,64}")

log = logging.getLogger("fewclick.server")


def add_request_ids(app: FastAPI) -> None:
    """Give ``app`` request ids and the 500 answer for exceptions no handler took."""
    app.add_middleware(CorrelationIdMiddleware, header_name=HEADER, validator=_TOKEN.fullmatch)
    app.add_exception_handler(Exception, _internal_error)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    rid = correlation_id.get() or "-"
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal error", "request_id": rid}, 500, headers={HEADER: rid})


def configure(level: int | str = logging.INFO) -> None:
    """Send the ``fewclick`` loggers' records to stderr, each with its request id; once per
    process (a second call changes nothing)."""
    logger = logging.getLogger("fewclick")
    if any(getattr(h, "_fewclick", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(CorrelationIdFilter(default_value="-"))
    handler.setFormatter(logging.Formatter(FORMAT))
    handler._fewclick = True
    logger.addHandler(handler)
    logger.setLevel(level)
