"""What the server tests share: a client for an app, and the headers a script sends
(``from clients import client_for``; a second ``conftest.py`` would shadow ``tests/conftest.py``).

Every test that talks to the API gets its client from :func:`client_for`, so that the
credentials every request needs are added in one place: an admin user made for the app
the first time it is asked for, and a bearer token of that user.
"""

from __future__ import annotations

from declared import CheckedClient
from fastapi.testclient import TestClient

from fewclick.server import accounts

ADMIN = "admin"


def make_user(app, name: str, role: str, password: str | None = None) -> str:
    """A new user of ``app`` with ``role``; returns a bearer token of theirs."""
    with app.state.sessions() as session:
        user = accounts.add_user(session, name, role, password)
        token = accounts.create_token(session, user, "tests")
        session.commit()
    return token


def auth_headers(app) -> dict[str, str]:
    """The headers that authenticate a script's requests to ``app`` as its admin."""
    if not hasattr(app.state, "test_token"):
        with app.state.sessions() as session:
            found = session.query(accounts.User).filter_by(name=ADMIN).one_or_none()
            user = found or accounts.add_user(session, ADMIN, "admin")
            app.state.test_token = accounts.create_token(session, user, "tests")
            session.commit()
    return {"Authorization": f"Bearer {app.state.test_token}"}


def client_for(app, **kwargs) -> TestClient:
    """A test client of ``app`` whose requests carry :func:`auth_headers`, and whose 2xx JSON
    answers are checked against their routes' response models (:mod:`declared`)."""
    client = CheckedClient(app, **kwargs)
    client.headers.update(auth_headers(app))
    return client
