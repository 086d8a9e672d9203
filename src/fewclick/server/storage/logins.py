"""Failed log-ins, kept for the throttle's window (:mod:`fewclick.server.throttle`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from fewclick.server.db import LoginFailure


def failure_times(
    session: Session, since: datetime, account: str | None = None, address: str | None = None
) -> list[datetime]:
    """When the account (or the address) failed to log in after ``since``, oldest first."""
    which = LoginFailure.account == account if address is None else LoginFailure.address == address
    return session.scalars(
        select(LoginFailure.at).where(which, LoginFailure.at > since).order_by(LoginFailure.at)
    ).all()


def add_failure(session: Session, account: str, address: str, at: datetime, forget_until: datetime) -> None:
    """A failed log-in at ``at``; the failures until ``forget_until`` are forgotten."""
    session.execute(delete(LoginFailure).where(LoginFailure.at <= forget_until))
    session.add(LoginFailure(account=account, address=address, at=at))
    session.flush()


def forget_account(session: Session, account: str) -> None:
    """Forget the account's failures."""
    session.execute(delete(LoginFailure).where(LoginFailure.account == account))
