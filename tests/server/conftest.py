"""What the server tests share: a client for an app, and the headers a script sends.

Every test that talks to the API gets its client from :func:`client_for`, so that the
credentials every request needs are added in one place.
"""

from __future__ import annotations

from fastapi.testclient import TestClient


def auth_headers(app) -> dict[str, str]:
    """The headers that authenticate a script's requests to ``app``."""
    return {}


def client_for(app, **kwargs) -> TestClient:
    """A test client of ``app`` whose requests carry :func:`auth_headers`."""
    client = TestClient(app, **kwargs)
    client.headers.update(auth_headers(app))
    return client
