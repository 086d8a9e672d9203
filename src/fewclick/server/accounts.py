"""Accounts: users with an argon2-hashed password and a role, per-project roles, bearer
tokens for scripts and browser sessions with their CSRF token.

Secrets (tokens, session cookies) are random and shown once; the database keeps only their
SHA-256 digest, so a copy of the database logs no one in.

A user's role on a project is the project's :class:`Membership` role where there is one,
else the user's own role; a global admin is admin on every project. What each role may do
is :data:`MAY`.

Passwords follow :mod:`fewclick.server.passwords`. A token may expire (``expires_at``); an
expired one is refused with a 401 that says so. A removed user is marked so, not deleted
(their annotations, events and jobs keep naming them): their password, tokens, browser
sessions and project roles go at once, and their name stays taken.

argon2 is slow and memory-hungry by design (64 MiB, about 0.13 s on 2 cores). The routes
that hash (log-in, adding a user) run their work in threads of its own, at most
:data:`HASH_THREADS` at once (:func:`in_hash_pool`): a burst of log-ins queues on the event
loop, holding none of the thread tokens the image and save routes run on.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

import anyio.to_thread
from anyio import CapacityLimiter
from anyio.lowlevel import RunVar
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from fewclick.server import passwords, throttle
from fewclick.server.db import ROLES, ApiToken, User, WebSession, now
from fewclick.server.errors import StoreError, shown
from fewclick.server.storage import rows, users

SESSION_DAYS = 7  # a browser login lasts this long
TOKEN_USE_EVERY = timedelta(minutes=1)  # how often a token's last use is written down
MAY = {  # action -> the roles that may take it
    "read": {"admin", "annotator", "reviewer"},
    "annotate": {"admin", "annotator"},
    "review": {"admin", "reviewer"},
    "admin": {"admin"},
}
_HASHER = PasswordHasher()
# One log-in at a time per server process: the throttle's check and the failure it then
# records are one step (40 log-ins sent at once all passed the check before any failure was
# saved: 40 guesses instead of 5), and one argon2 hash (64 MiB) is computed at a time.
_LOG_IN = threading.Lock()
#: how many of the routes' argon2 calls run at once: one hash already keeps 2 cores busy
#: (argon2's 4 lanes), and a log-in holds _LOG_IN while it hashes anyway
HASH_THREADS = 1
_HASH_LIMITER: RunVar[CapacityLimiter] = RunVar("fewclick_hash_limiter")  # one per event loop
T = TypeVar("T")


async def in_hash_pool(fn: Callable[..., T], *args) -> T:
    """``fn(*args)``, work that hashes a password, in a worker thread under a limiter of its
    own (:data:`HASH_THREADS` tokens), awaited: the requests queued for it wait on the event
    loop, not for the tokens of the thread pool the other routes share (anyio's default
    limiter). As for those routes, a request cancelled once ``fn`` runs waits for its end,
    so the request's database session is never closed under it."""
    return await anyio.to_thread.run_sync(functools.partial(fn, *args), limiter=_hash_limiter())


def _hash_limiter() -> CapacityLimiter:
    try:
        return _HASH_LIMITER.get()
    except LookupError:
        limiter = CapacityLimiter(HASH_THREADS)
        _HASH_LIMITER.set(limiter)
        return limiter


class AccountError(ValueError):
    """A bad user name, role or password, said in words."""


class TokenExpired(StoreError):
    """A bearer token past its expiry: 401, saying so."""

    status = 401


class WrongPassword(StoreError):
    """A log-in with a wrong user name or password: 401."""

    status = 401


class Throttled(StoreError):
    """A log-in refused unchecked, as its user name or address failed too often: 429, with
    the whole seconds to wait in ``retry``."""

    status = 429

    def __init__(self, retry: int) -> None:
        super().__init__(f"too many failed log-ins for this user or address: try again in {retry} s")
        self.retry = retry


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def add_user(session: Session, name: str, role: str, password: str | None = None) -> User:
    """A new user ``name`` with ``role`` (one of :data:`ROLES`) and, when given, a password."""
    name = name.strip()
    if not name or len(name) > 200:
        raise AccountError("a user name is 1 to 200 characters")
    if role not in ROLES:
        raise AccountError(f"unknown role {shown(role)}: expected one of {', '.join(ROLES)}")
    found = users.named(session, name)
    if found is not None and found.removed_at is not None:
        raise AccountError(f"user {name!r} was removed; the name stays with their past work: choose another")
    if found is not None:
        raise AccountError(f"user {name!r} exists already")
    user = User(name=name, role=role)
    if password is not None:
        set_password(user, password)
    return users.add_user(session, user)


def set_password(user: User, password: str) -> None:
    """Set ``user``'s password; an AccountError naming the rule of
    :mod:`fewclick.server.passwords` it breaks."""
    try:
        passwords.check(user.name, password)
    except passwords.PasswordError as exc:
        raise AccountError(str(exc)) from None
    user.password_hash = _HASHER.hash(password)


def find_user(session: Session, name: str) -> User:
    user = users.named(session, name.strip())
    if user is None:
        raise AccountError(f"no user {name!r}")
    if user.removed_at is not None:
        raise AccountError(f"user {name!r} was removed on {user.removed_at:%Y-%m-%d}")
    return user


def remove_user(session: Session, user: User) -> None:
    """Mark ``user`` removed and end at once what lets them act: their password, bearer
    tokens, browser sessions and project roles. Their past work keeps naming them. The
    last admin cannot be removed."""
    if user.role == "admin" and users.other_admin(session, user) is None:
        raise AccountError(f"{user.name!r} is the last admin: add another admin first")
    users.remove_user(session, user)


def check_password(session: Session, name: str, password: str) -> User | None:
    """The user ``name`` when ``password`` is theirs, else None (the same for a wrong name)."""
    user = users.active_named(session, name.strip())
    if user is None or not user.password_hash:
        _HASHER.hash(password)  # the same time whether or not the user exists
        return None
    try:
        _HASHER.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return user


def log_in(session: Session, name: str, password: str, address: str) -> tuple[User, str, str]:
    """Check the password of ``name`` logging in from ``address`` and start a browser session:
    ``(user, the cookie's secret, the CSRF token)``. Repeated failures of a user name or an
    address are throttled (:mod:`fewclick.server.throttle`): :class:`Throttled` before the
    password is checked; :class:`WrongPassword` once the failure is counted. Commits the
    throttle's count, then the session."""
    with _LOG_IN:
        retry = throttle.wait(session, name, address)
        if retry:
            raise Throttled(retry)
        user = check_password(session, name, password)
        if user is None:
            throttle.failed(session, name, address)
            session.commit()
            raise WrongPassword("wrong user name or password")
        throttle.succeeded(session, name)
        session.commit()
    secret, csrf = start_session(session, user)
    session.commit()
    return user, secret, csrf


def create_token(session: Session, user: User, name: str = "script", expires: datetime | None = None) -> str:
    """A new bearer token for ``user``, valid until ``expires`` (None: until revoked); the
    secret is returned once and never stored."""
    secret = "fc_" + secrets.token_urlsafe(32)
    users.add_token(session, user, name, digest(secret), expires)
    return secret


def tokens(session: Session, user: User) -> list[ApiToken]:
    return users.tokens(session, user)


def revoke_tokens(session: Session, user: User, name: str | None = None) -> int:
    """Delete ``user``'s tokens named ``name`` (None: all of them); how many there were.
    An AccountError when there was none."""
    count = users.delete_tokens(session, user, name)
    if not count:
        raise AccountError(f"no token{'' if name is None else f' labelled {name!r}'} of {user.name!r}")
    return count


def token_user(session: Session, secret: str) -> User | None:
    """The user of the bearer token ``secret``, None for no token; :class:`TokenExpired`
    for one past its expiry."""
    token = users.token(session, digest(secret))
    if token is None:
        return None
    if token.expires_at is not None and token.expires_at <= now():
        raise TokenExpired(
            f"the bearer token {token.name!r} expired on {token.expires_at:%Y-%m-%d %H:%M} UTC: "
            "create a new one with `fewclick token create`"
        )
    if token.last_used_at is None or now() - token.last_used_at > TOKEN_USE_EVERY:  # to the minute
        users.note_token_use(session, token)
    return rows.find(session, User, token.user_id)


def start_session(session: Session, user: User) -> tuple[str, str]:
    """A browser login for ``user``: the cookie's secret and the session's CSRF token."""
    secret, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires = now() + timedelta(days=SESSION_DAYS)
    users.add_web_session(session, user, digest(secret), csrf, expires)
    return secret, csrf


def web_session(session: Session, secret: str) -> WebSession | None:
    """The unexpired browser login whose cookie is ``secret``."""
    found = users.web_session(session, digest(secret))
    if found is None or found.expires_at < now():  # a removed user's sessions are deleted
        return None
    return found


def csrf_matches(found: WebSession, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(found.csrf.encode(), sent.encode())


def role_on(session: Session, user: User, project_id: int | None) -> str:
    """``user``'s role on the project (their own role where the project sets none); a global
    admin (``User.role`` admin) is admin on every project, whatever a membership says."""
    if project_id is not None and user.role != "admin":
        member = users.membership(session, project_id, user)
        if member is not None:
            return member.role
    return user.role


def set_role(session: Session, project_id: int, user: User, role: str | None) -> None:
    """Give ``user`` ``role`` on the project; None: back to the user's own role."""
    member = users.membership(session, project_id, user)
    if role is None:
        if member is not None:
            users.delete_membership(session, member)
        return
    if role not in ROLES:
        raise AccountError(f"unknown role {shown(role)}: expected one of {', '.join(ROLES)}")
    if member is None:
        users.add_membership(session, project_id, user, role)
    else:
        member.role = role
