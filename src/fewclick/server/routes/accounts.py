"""Logging in and out, who am I, and (admins) the users and their roles per project."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response
from pydantic import BaseModel, Field

from fewclick.server import accounts
from fewclick.server.auth import CSRF_HEADER, MAX_ID, SESSION_COOKIE
from fewclick.server.db import Project, User, local_user
from fewclick.server.deps import DB
from fewclick.server.storage import rows, users
from fewclick.wire import answers

router = APIRouter(prefix="/api")
Id = Annotated[int, Path(ge=1, le=MAX_ID)]


class LoginIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1000)


class UserIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: str
    password: str | None = Field(default=None, max_length=1000)  # the policy: accounts.set_password


class MemberIn(BaseModel):
    role: str | None  # None: the user's own role again


def _me(user: User, csrf: str | None) -> dict:
    return {"id": user.id, "name": user.name, "role": user.role, "csrf": csrf, "csrf_header": CSRF_HEADER}


@router.post("/login", response_model=answers.Me)
async def login(body: LoginIn, request: Request, response: Response, session: DB):
    """Check the password and start a browser session: an HttpOnly, SameSite=Strict cookie,
    and the CSRF token the page sends back on every change. Repeated failures of a user
    name or an address are throttled: 429 with Retry-After (:mod:`fewclick.server.throttle`).
    The check runs in the password-hashing pool (:func:`accounts.in_hash_pool`): log-ins
    queue there, never in the thread pool of the image and save routes."""
    address = request.client.host if request.client else "unknown"
    try:
        user, secret, csrf = await accounts.in_hash_pool(
            accounts.log_in, session, body.name, body.password, address
        )
    except accounts.Throttled as exc:
        raise HTTPException(429, str(exc), {"Retry-After": str(exc.retry)}) from None
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=accounts.SESSION_DAYS * 86400,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return _me(user, csrf)


@router.post("/logout", response_model=answers.LoggedOut)
def logout(request: Request, response: Response, session: DB):
    cookie = request.cookies.get(SESSION_COOKIE)
    found = accounts.web_session(session, cookie) if cookie else None
    if found is not None:
        users.end_web_session(session, found)
        session.commit()
    response.delete_cookie(SESSION_COOKIE)
    return {"logged_out": True}


@router.get("/me", response_model=answers.Me)
def me(request: Request, session: DB):
    """The user the request authenticated as, with the session's CSRF token (None for a
    bearer token)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    found = (
        accounts.web_session(session, cookie) if cookie and "authorization" not in request.headers else None
    )
    return _me(local_user(session), found.csrf if found else None)


@router.get("/users", response_model=list[answers.User])
def list_users(session: DB):
    return [{"id": u.id, "name": u.name, "role": u.role} for u in users.active_users(session)]


@router.post("/users", status_code=201, response_model=answers.User)
async def add_user(body: UserIn, session: DB):
    """A new user; their password is hashed in the password-hashing pool."""
    try:
        user = await accounts.in_hash_pool(_add_user, session, body)
    except accounts.AccountError as exc:
        raise HTTPException(400, str(exc)) from None
    return {"id": user.id, "name": user.name, "role": user.role}


def _add_user(session, body: UserIn) -> User:
    user = accounts.add_user(session, body.name, body.role, body.password)
    session.commit()
    return user


@router.put("/projects/{project_id}/members/{user_id}", response_model=answers.Member)
def set_member(project_id: Id, user_id: Id, body: MemberIn, session: DB):
    """Give a user a role on this project (``null``: the user's own role again); a global
    admin's stays admin (403)."""
    project = rows.get(session, Project, project_id, "project")
    user = rows.get(session, User, user_id, "user")
    if user.role == "admin":
        raise HTTPException(
            403, f"{user.name} is a global admin, admin on every project: no project changes that"
        )
    try:
        accounts.set_role(session, project.id, user, body.role)
    except accounts.AccountError as exc:
        raise HTTPException(400, str(exc)) from None
    session.commit()
    return {"project_id": project.id, "user_id": user.id, "role": accounts.role_on(session, user, project.id)}
