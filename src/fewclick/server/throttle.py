"""Log-in throttling, per account and per address (``POST /api/login``).

The policy:

- A failed log-in is kept for :data:`WINDOW` (15 minutes), with its account (the user name
  as typed, stripped and case-folded, whether or not such a user exists) and its address
  (the client's IP as the server sees it: behind a reverse proxy, the proxy's).
- An account may fail :data:`ACCOUNT_FREE` (5) times within the window without waiting;
  after that each attempt waits :data:`FIRST_WAIT` (30 s) from its last failure, doubled
  for every further failure, at most :data:`WINDOW`. An address may fail
  :data:`ADDRESS_FREE` (50) times, over any accounts, before the same waits apply to it.
- While an account or an address must wait, a log-in answers 429 with ``Retry-After``
  (whole seconds) without checking the password: the right password too, so a guesser
  learns nothing. An attempt refused so is not counted as a failure.
- A successful log-in clears its account's failures (not its address's).

So 100 guesses at one account take about 5 + log2(15 min / 30 s) attempts per 15 minutes
instead of 100 in 22 seconds; one can lock a user out for at most 15 minutes at a time by
guessing their name (the cost of throttling by account; their tokens still work).

The failures live in the database (``login_failures``), so every worker process of the
app counts the same ones; rows older than the window are deleted as new failures come.
Every function takes the time ``at`` (now by default), so tests move the clock instead of
sleeping.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from fewclick.server.db import now
from fewclick.server.storage import logins

WINDOW = timedelta(minutes=15)
ACCOUNT_FREE = 5
ADDRESS_FREE = 50
FIRST_WAIT = timedelta(seconds=30)


def account_key(name: str) -> str:
    return name.strip().casefold()[:200]


def wait(session: Session, name: str, address: str, at: datetime | None = None) -> int:
    """Whole seconds before the account ``name`` or ``address`` may try to log in again
    (0: now)."""
    at = at or now()
    by_account = logins.failure_times(session, at - WINDOW, account=account_key(name))
    by_address = logins.failure_times(session, at - WINDOW, address=address[:64])
    return max(_wait(by_account, ACCOUNT_FREE, at), _wait(by_address, ADDRESS_FREE, at))


def _wait(times, free: int, at: datetime) -> int:
    """The wait after failures at ``times`` (oldest first) when ``free`` of them cost none."""
    if len(times) < free:
        return 0
    delay = min(FIRST_WAIT * 2 ** (len(times) - free), WINDOW)
    return max(0, math.ceil((times[-1] + delay - at).total_seconds()))


def failed(session: Session, name: str, address: str, at: datetime | None = None) -> None:
    """Count a failed log-in, and forget the failures older than the window."""
    at = at or now()
    logins.add_failure(session, account_key(name), address[:64], at, forget_until=at - WINDOW)


def succeeded(session: Session, name: str) -> None:
    """Forget the failures of the account that logged in."""
    logins.forget_account(session, account_key(name))
