"""What the browser-driven scripts share: Chromium's flags, the app served in a thread, and
image pixels turned into page coordinates on the annotation canvas."""

from __future__ import annotations

import socket
import threading
import time

CHROMIUM = "/usr/bin/chromium"  # Debian's package; never a downloaded browser
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def serve_in_thread(app) -> tuple[str, object]:
    """Serve ``app`` on a free local port; ``(base URL, uvicorn server)``."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


def screen(page, x: float, y: float) -> tuple[float, float]:
    """Page coordinates of image pixel (x, y) on the annotation canvas."""
    return page.evaluate(
        """([x, y]) => { const r = S.canvas.getBoundingClientRect();
            return [r.left + S.view.ox + x * S.view.scale, r.top + S.view.oy + y * S.view.scale]; }""",
        [x, y],
    )


def admin_account(app, name: str = "bench") -> tuple[str, str, dict[str, str]]:
    """A new admin of ``app``: ``(name, password, headers)``, the headers authenticating
    scripts with a bearer token."""
    import secrets

    from fewclick.server import accounts

    password = secrets.token_urlsafe(12)
    with app.state.sessions() as session:
        user = accounts.add_user(session, name, "admin", password)
        token = accounts.create_token(session, user, "benchmark")
        session.commit()
    return name, password, {"Authorization": f"Bearer {token}"}


def log_in(page, base: str, name: str, password: str) -> None:
    """Log the browser in through the app's log-in page."""
    page.goto(f"{base}/#/")
    page.fill("#login [name=name]", name)
    page.fill("#login [name=password]", password)
    page.click("#login button")
    page.wait_for_selector("#logout")
