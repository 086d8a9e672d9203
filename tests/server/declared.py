"""Every JSON answer of the API tests checked against the model its route declares.

:func:`clients.client_for` hands out a :class:`CheckedClient`: each 2xx JSON answer it
receives is validated (strictly, from its JSON text) with the ``response_model`` of the
route that answered, and no key of it may be one the model does not name. A mismatch is
an AssertionError naming the route and the problem, so the test that made the request
fails. ``tests/server/test_schemas.py`` checks that every route declares what it answers.
"""

from __future__ import annotations

from functools import cache

from fastapi import routing
from fastapi.datastructures import DefaultPlaceholder
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.routing import compile_path


def api_routes(app) -> list[tuple[str, APIRoute]]:
    """``(path, route)`` for every APIRoute of ``app``, routers' included ones too."""
    contexts = getattr(routing, "iter_route_contexts", None)
    if contexts is None:  # FastAPI before included routers kept their contexts: flat routes
        return [(r.path, r) for r in app.routes if isinstance(r, APIRoute)]
    return [
        (c.path, c.original_route) for c in contexts(app.routes) if isinstance(c.original_route, APIRoute)
    ]


def _matchers(app) -> list[tuple]:
    if not hasattr(app.state, "declared_matchers"):
        app.state.declared_matchers = [
            (compile_path(path)[0], route.methods, path, route) for path, route in api_routes(app)
        ]
    return app.state.declared_matchers


def route_of(app, method: str, path: str) -> tuple[str, APIRoute] | None:
    """The route of ``app`` that answers ``method path`` (None: no API route does)."""
    for regex, methods, template, route in _matchers(app):
        if method in methods and regex.match(path):
            return template, route
    return None


@cache
def _adapter(model) -> TypeAdapter:
    return TypeAdapter(model)


def undeclared(value, where: str = "") -> list[str]:
    """The keys of a validated answer no model names (``extra="allow"`` keeps them)."""
    if isinstance(value, BaseModel):
        found = [f"{where}.{key}" for key in value.model_extra or {}]
        for name in type(value).model_fields:
            found += undeclared(getattr(value, name), f"{where}.{name}")
        return found
    if isinstance(value, list | tuple):
        return [key for i, v in enumerate(value) for key in undeclared(v, f"{where}[{i}]")]
    if isinstance(value, dict):
        return [key for k, v in value.items() for key in undeclared(v, f"{where}[{k!r}]")]
    return []


def check_answer(app, response) -> None:
    """AssertionError unless ``response`` (a 2xx JSON answer of ``app``) is what its route
    declares; other answers are not checked."""
    if not 200 <= response.status_code < 300:
        return
    if not response.headers.get("content-type", "").startswith("application/json"):
        return
    request = response.request
    found = route_of(app, request.method, request.url.path)
    if found is None:
        return
    template, route = found
    label = f"{request.method} {template}"
    if route.response_model is None:
        if not isinstance(route.response_class, DefaultPlaceholder):
            return  # a download (a COCO export is a JSON file): it declares its response class
        raise AssertionError(f"{label} answered JSON but declares no response model")
    try:
        value = _adapter(route.response_model).validate_json(response.content, strict=True)
    except ValidationError as exc:
        raise AssertionError(f"{label}: the answer is not its {route.response_model}: {exc}") from None
    extra = undeclared(value)
    if extra:
        raise AssertionError(f"{label}: the answer has keys its model does not name: {extra}")


class CheckedClient(TestClient):
    """A TestClient that checks every 2xx JSON answer with :func:`check_answer`."""

    def __init__(self, app, *args, **kwargs) -> None:
        super().__init__(app, *args, **kwargs)
        self.checked_app = app

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        response = super().request(method, url, *args, **kwargs)
        check_answer(self.checked_app, response)
        return response
