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


def serve_a_detector(app, project_id: int, path) -> None:
    """Register a trained detector v1 ("scratch") for the project, its file at ``path``
    (nowhere, for the browser tests that answer the page's detect requests themselves):
    the page then acts as when a trained detector serves."""
    from fewclick.server.db import ModelVersion

    with app.state.sessions() as session:
        session.add(
            ModelVersion(
                project_id=project_id, task="detect", version=1, path=str(path), images=2,
                method="scratch", created_by=1,
            )
        )  # fmt: skip
        session.commit()
