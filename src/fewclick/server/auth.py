"""Who is asking and what they may do: every ``/api`` route passes :func:`authorize`.

A request authenticates with ``Authorization: Bearer <token>`` (scripts) or with the
browser's session cookie. A cookie-authenticated request that changes anything must also
send the session's CSRF token in ``X-CSRF-Token``: a page from another origin can make the
browser send the cookie, but cannot read the token, so it cannot act (multipart uploads
included). Bearer requests need no CSRF token: no browser sends them by itself.

What a route needs is :data:`ACTIONS` (method and path -> action, :data:`accounts.MAY`
says which roles may take an action), checked against the user's role on the route's
project. A route missing from the table is for admins only.

The credentials are checked first, by :class:`Authenticate`, an ASGI middleware that runs
before any route reads its body: a request without valid credentials gets 401 before any
JSON or form is parsed and before any query but the credential check. The role check,
which needs the route's project (and for a reviewer the body's fields), follows in the
route's dependency :func:`authorize`.
"""

from __future__ import annotations

import base64

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from fewclick.server import accounts, store
from fewclick.server.db import is_busy
from fewclick.server.deps import DB, database_busy
from fewclick.server.storage import rows

SESSION_COOKIE = "fewclick_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
MAX_ID = 2**63 - 1  # the largest id a database integer holds
# Label Studio sends its ML backend's webhook without the backend's credentials (seen with
# Label Studio 1.23.2); fewclick only acknowledges it, so it is public like the health check.
PUBLIC = {
    ("POST", "/api/login"),
    ("GET", "/api/projects/{project_id}/labelstudio/health"),
    ("POST", "/api/projects/{project_id}/labelstudio/webhook"),
}
ACTIONS = {
    ("GET", "/api/me"): "read",
    ("POST", "/api/logout"): "read",
    ("GET", "/api/users"): "admin",
    ("POST", "/api/users"): "admin",
    ("PUT", "/api/projects/{project_id}/members/{user_id}"): "admin",
    ("GET", "/api/projects"): "read",
    ("POST", "/api/projects"): "admin",
    ("GET", "/api/projects/{project_id}"): "read",
    ("PATCH", "/api/projects/{project_id}"): "admin",
    ("POST", "/api/projects/{project_id}/finish"): "annotate",
    ("POST", "/api/projects/{project_id}/classes"): "admin",
    ("PATCH", "/api/classes/{class_id}"): "admin",
    ("POST", "/api/projects/{project_id}/import"): "admin",
    ("POST", "/api/projects/{project_id}/import/upload"): "admin",
    ("GET", "/api/projects/{project_id}/export"): "read",
    ("GET", "/api/projects/{project_id}/analytics"): "read",
    ("GET", "/api/projects/{project_id}/images"): "read",
    ("POST", "/api/projects/{project_id}/images"): "admin",
    ("GET", "/api/images/{image_id}"): "read",
    ("PATCH", "/api/images/{image_id}"): "annotate or review",
    ("GET", "/api/images/{image_id}/file"): "read",
    ("GET", "/api/images/{image_id}/tiles/{level}/{col}/{row}"): "read",
    ("POST", "/api/images/{image_id}/annotations"): "annotate",
    ("POST", "/api/images/{image_id}/annotations/batch"): "annotate",
    ("PATCH", "/api/annotations/{annotation_id}"): "annotate or review",
    ("DELETE", "/api/annotations/{annotation_id}"): "annotate",
    ("PUT", "/api/annotations/{annotation_id}/exemplar"): "annotate",
    ("POST", "/api/images/{image_id}/detect"): "annotate",
    ("POST", "/api/images/{image_id}/lookalikes"): "annotate",
    ("GET", "/api/images/{image_id}/lookalikes"): "annotate",
    ("DELETE", "/api/images/{image_id}/lookalikes"): "annotate",
    ("POST", "/api/images/{image_id}/prepare"): "annotate",
    ("POST", "/api/images/{image_id}/mask_proposals"): "annotate",
    ("POST", "/api/images/{image_id}/segment"): "annotate",
    ("POST", "/api/images/{image_id}/snap"): "annotate",
    ("POST", "/api/images/{image_id}/fullimage"): "annotate",
    ("POST", "/api/images/{image_id}/outline"): "annotate",
    ("GET", "/api/projects/{project_id}/backends"): "read",
    ("PUT", "/api/projects/{project_id}/backend"): "admin",
    ("POST", "/api/projects/{project_id}/compare"): "annotate",
    ("POST", "/api/projects/{project_id}/train"): "annotate",
    ("POST", "/api/projects/{project_id}/trainer"): "annotate",
    ("POST", "/api/jobs/{job_id}/control"): "annotate",
    ("POST", "/api/projects/{project_id}/queue"): "annotate",
    ("POST", "/api/projects/{project_id}/preannotate"): "annotate",
    ("GET", "/api/projects/{project_id}/queue"): "read",
    ("POST", "/api/queries/{query_id}/answer"): "annotate",
    ("GET", "/api/jobs/{job_id}"): "read",
    ("GET", "/api/projects/{project_id}/jobs"): "read",
    ("POST", "/api/projects/{project_id}/events"): "read",  # every role's actions are logged
    ("GET", "/api/projects/{project_id}/events"): "read",
    ("POST", "/api/projects/{project_id}/labelstudio/setup"): "read",
    ("POST", "/api/projects/{project_id}/labelstudio/predict"): "annotate",
}
# what a reviewer may change where the action is "annotate or review": the review verdict
# of an annotation, and an image's status (which moves a reviewer may make is store.MOVES)
REVIEW_FIELDS = {
    "/api/annotations/{annotation_id}": {"review", "revision"},
    "/api/images/{image_id}": {"status"},
}
_PUBLIC_PATHS = [(method, compile_path(path)[0]) for method, path in sorted(PUBLIC)]
USER_ID = "fewclick.user_id"  # the key of the authenticated user's id in the request scope


class Authenticate:
    """ASGI middleware: every ``/api`` request but the :data:`PUBLIC` routes' authenticates
    here, before its route reads the body; the user's id goes on in the scope (USER_ID)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api") and not _public(scope):
            request = Request(scope)  # headers and cookies only: the body stays unread
            try:
                scope[USER_ID] = await run_in_threadpool(_user_id, request)
            except HTTPException as exc:
                answer = JSONResponse({"detail": exc.detail}, exc.status_code, exc.headers)
                return await answer(scope, receive, send)
        await self.app(scope, receive, send)


def _public(scope: Scope) -> bool:
    """Whether the request is for one of the PUBLIC routes (every other one, unknown paths
    included, needs credentials)."""
    method = "GET" if scope["method"] == "HEAD" else scope["method"]
    path = scope["path"].removeprefix(scope.get("root_path", ""))
    return any(method == m and pattern.fullmatch(path) for m, pattern in _PUBLIC_PATHS)


def _user_id(request: Request) -> int:
    with request.app.state.sessions() as session:
        try:
            return _authenticate(request, session).id
        except OperationalError as exc:  # a locked database: 503, not 500
            if not is_busy(exc):
                raise
            raise database_busy() from None
        except store.StoreError as exc:  # an expired token: the route's handlers are not in reach here
            raise HTTPException(exc.status, str(exc), {"WWW-Authenticate": "Bearer"}) from None


async def authorize(request: Request, session: DB) -> None:
    """Check the authenticated user's role for the route (:class:`Authenticate` checked the
    credentials); the user becomes the session's acting user (``session.info["user"]``, see
    :func:`db.local_user`). The database work runs on the thread pool, as the routes' own
    does, never on the event loop."""
    route = request.scope["route"].path
    key = (request.method, route)
    if key in PUBLIC:
        return
    action = ACTIONS.get(key, "admin")
    user, role = await run_in_threadpool(_user_and_role, request, session)
    review = action == "annotate or review" and await _is_review(request, route)
    if action == "annotate or review":
        allowed = role in accounts.MAY["annotate"] or (role in accounts.MAY["review"] and review)
    else:
        allowed = role in accounts.MAY[action]
    if not allowed:
        raise HTTPException(403, f"{user.name} is {role} here, and {action} needs {_roles(action)}")


def _user_and_role(request: Request, session) -> tuple[accounts.User, str]:
    """The authenticated user, in the request's session, and their role on the route's project."""
    user_id = request.scope.get(USER_ID)
    user = rows.find(session, accounts.User, user_id) if user_id is not None else None
    if user is None:  # not authenticated by the middleware, or removed since: fail closed
        raise HTTPException(401, "log in first", {"WWW-Authenticate": "Bearer"})
    session.info["user"] = user
    return user, accounts.role_on(session, user, _project_of(session, request.path_params))


def _authenticate(request: Request, session):
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() == "basic":  # Label Studio's ML-backend credentials: user name and token
            return _basic_user(session, secret.strip())
        user = accounts.token_user(session, secret.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise HTTPException(401, "the bearer token is not valid", {"WWW-Authenticate": "Bearer"})
        return user
    cookie = request.cookies.get(SESSION_COOKIE)
    found = accounts.web_session(session, cookie) if cookie else None
    if found is None:
        raise HTTPException(401, "log in first", {"WWW-Authenticate": "Bearer"})
    if request.method not in SAFE_METHODS and not accounts.csrf_matches(
        found, request.headers.get(CSRF_HEADER)
    ):
        raise HTTPException(403, f"missing or wrong {CSRF_HEADER}: reload the page")
    return rows.find(session, accounts.User, found.user_id)


def _basic_user(session, encoded: str):
    """The user of HTTP Basic credentials whose password is a bearer token of theirs."""
    try:
        name, _, token = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        name, token = "", ""
    user = accounts.token_user(session, token) if token else None
    if user is None or user.name != name:
        raise HTTPException(
            401,
            "basic credentials must be a user name and a token of that user",
            {"WWW-Authenticate": "Basic"},
        )
    return user


def _project_of(session, params: dict) -> int | None:
    """The project the path's ids belong to (None where there is none, or it does not exist:
    the route answers 404 for it); one query at most."""
    if "project_id" in params:
        return _id(params, "project_id")
    for name in rows.OWNED:
        if name in params:
            return rows.project_of(session, name, _id(params, name))
    return None


def _id(params: dict, name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise HTTPException(422, f"{name} must be an integer, not {raw!r}") from None
    if not 0 <= value <= MAX_ID:
        raise HTTPException(404, f"no {name.removesuffix('_id')} {value}")
    return value


async def _is_review(request: Request, route: str) -> bool:
    """Whether the request's body changes only what a reviewer may change (any JSON value
    is a body here: a dict's keys are strings, and nothing else of it is looked at)."""
    try:
        body = await request.json()
    except (ValueError, RecursionError):
        return False
    return isinstance(body, dict) and set(body) <= REVIEW_FIELDS.get(route, set())


def _roles(action: str) -> str:
    if action == "annotate or review":
        return "annotator or admin (a reviewer may set review verdicts and an image's status)"
    return " or ".join(sorted(accounts.MAY[action]))
