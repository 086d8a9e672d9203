"""Logging in and out, the user, the users and their roles per project."""

from __future__ import annotations

from fewclick.wire.answers.base import Answer


class Me(Answer):
    """The user a request authenticated as; ``csrf``: the browser session's token to send
    back in ``csrf_header`` on every change (None for a bearer token)."""

    id: int
    name: str
    role: str
    csrf: str | None
    csrf_header: str


class LoggedOut(Answer):
    logged_out: bool


class User(Answer):
    id: int
    name: str
    role: str


class Member(Answer):
    """A user's role on a project (their own role where the project sets none)."""

    project_id: int
    user_id: int
    role: str
