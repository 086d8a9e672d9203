"""Users, their roles on projects (``Membership``), API tokens and browser sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from fewclick.server.db import ApiToken, Membership, User, WebSession, is_busy, now


def named(session: Session, name: str) -> User | None:
    """The user called ``name``, removed or not."""
    return session.scalar(select(User).filter_by(name=name))


def active_named(session: Session, name: str) -> User | None:
    """The user called ``name`` unless removed."""
    return session.scalar(select(User).filter_by(name=name, removed_at=None))


def active_users(session: Session) -> list[User]:
    """The users not removed, oldest first."""
    return list(session.scalars(select(User).filter_by(removed_at=None).order_by(User.id)))


def add_user(session: Session, user: User) -> User:
    """Write the new user at once: it gets its id."""
    session.add(user)
    session.flush()
    return user


def other_admin(session: Session, user: User) -> User | None:
    """An admin who is not ``user`` and not removed, if any."""
    return session.scalar(
        select(User).where(User.role == "admin", User.removed_at.is_(None), User.id != user.id)
    )


def has_admin(session: Session) -> bool:
    return session.scalar(select(User).filter_by(role="admin", removed_at=None)) is not None


def remove_user(session: Session, user: User) -> None:
    """Mark ``user`` removed, and delete their tokens, browser sessions and project roles
    and their password."""
    for model in (ApiToken, WebSession, Membership):
        session.execute(delete(model).where(model.user_id == user.id))
    user.password_hash = None
    user.removed_at = now()
    session.flush()


# ------------------------------------------------------------------------------- API tokens
def add_token(session: Session, user: User, name: str, digest: str, expires: datetime | None) -> None:
    session.add(ApiToken(user_id=user.id, name=name, digest=digest, expires_at=expires))
    session.flush()


def tokens(session: Session, user: User) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).filter_by(user_id=user.id).order_by(ApiToken.id)))


def token(session: Session, digest: str) -> ApiToken | None:
    """The token whose secret's digest is ``digest``."""
    return session.scalar(select(ApiToken).filter_by(digest=digest))


def delete_tokens(session: Session, user: User, name: str | None = None) -> int:
    """Delete ``user``'s tokens named ``name`` (None: all of them); how many there were."""
    query = delete(ApiToken).where(ApiToken.user_id == user.id)
    if name is not None:
        query = query.where(ApiToken.name == name)
    return session.execute(query).rowcount


def note_token_use(session: Session, token: ApiToken) -> None:
    """Write down the token's last use, in a transaction of its own (the request's would hold
    the database's write lock until the request ends); skipped while another connection
    holds the lock: a note to the minute is not worth failing the request for."""
    try:
        with Session(session.get_bind()) as own:
            own.execute(update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now()))
            own.commit()
    except OperationalError as exc:
        if not is_busy(exc):
            raise


# ------------------------------------------------------------------------ browser sessions
def add_web_session(session: Session, user: User, digest: str, csrf: str, expires: datetime) -> None:
    session.add(WebSession(user_id=user.id, digest=digest, csrf=csrf, expires_at=expires))
    session.flush()


def web_session(session: Session, digest: str) -> WebSession | None:
    """The browser login whose cookie's digest is ``digest``, expired or not."""
    return session.scalar(select(WebSession).filter_by(digest=digest))


def end_web_session(session: Session, found: WebSession) -> None:
    session.delete(session.get(WebSession, found.id))


# ------------------------------------------------------------------------ roles on projects
def membership(session: Session, project_id: int, user: User) -> Membership | None:
    """The user's role on the project where it differs from their own."""
    return session.scalar(select(Membership).filter_by(project_id=project_id, user_id=user.id))


def add_membership(session: Session, project_id: int, user: User, role: str) -> None:
    session.add(Membership(project_id=project_id, user_id=user.id, role=role))


def delete_membership(session: Session, member: Membership) -> None:
    session.delete(member)
