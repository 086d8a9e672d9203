"""What the browser-driven scripts and the browser tests share: Chromium's flags, the app
served in a thread, a page with its script errors collected, and image pixels turned into
page coordinates on the annotation canvas."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

CHROMIUM = "/usr/bin/chromium"  # Debian's package; never a downloaded browser
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def serve_in_thread(app, timeout: float = 10.0) -> tuple[str, object]:
    """Serve ``app`` on a free loopback port in a daemon thread; ``(base URL, uvicorn
    server)``, the server stopped by setting its ``should_exit``."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    server.thread = threading.Thread(target=server.run, daemon=True)
    server.thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not server.thread.is_alive():
            raise RuntimeError(f"the app did not start serving on port {port} within {timeout:g} s")
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


@contextmanager
def live_server(app) -> Iterator[str]:
    """Serve ``app`` while the block runs; yields its base URL (``http://127.0.0.1:PORT``)."""
    base, server = serve_in_thread(app)
    try:
        yield base
    finally:
        server.should_exit = True
        server.thread.join(timeout=10)


@contextmanager
def chromium_page(viewport: tuple[int, int] = (1280, 800)) -> Iterator[object]:
    """A fresh page in headless Chromium; ``page.errors`` collects the page's uncaught script
    errors, for a test to assert there were none."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        width, height = viewport
        page = browser.new_context(viewport={"width": width, "height": height}).new_page()
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        try:
            yield page
        finally:
            browser.close()


def screen(page, x: float, y: float) -> tuple[float, float]:
    """Page coordinates of image pixel (x, y) on the annotation canvas."""
    return page.evaluate(
        """([x, y]) => { const r = fewclickTest.canvas.getBoundingClientRect(), v = fewclickTest.view;
            return [r.left + v.ox + x * v.scale, r.top + v.oy + y * v.scale]; }""",
        [x, y],
    )


def drag(page, x0: float, y0: float, x1: float, y1: float) -> None:
    """Press at image pixel (x0, y0), move to (x1, y1) in a few steps and release."""
    page.mouse.move(*screen(page, x0, y0))
    page.mouse.down()
    page.mouse.move(*screen(page, x1, y1), steps=5)
    page.mouse.up()


def zoom_onto(page, box) -> None:
    """The page's view centred on ``box`` (x0, y0, x1, y1, image pixels) at twice its size,
    8x at most."""
    page.evaluate(
        """([x0, y0, x1, y1]) => {
        const w = (x1 - x0) * 2, h = (y1 - y0) * 2, cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
        const {width, height} = fewclickTest.canvas, scale = Math.min(8, width / w, height / h);
        fewclickTest.setView({scale, ox: width / 2 - cx * scale, oy: height / 2 - cy * scale});
      }""",
        list(box),
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


def project_serving(page, base: str, project_id: int, path) -> dict:
    """The project page as a person reads it for what serves the detector and why (issue 68):
    opened, its list of reasons waited for (there is none before a version serves), the page
    down to it in ``path``; its words, ``detector`` and ``serving_why`` (None: no list)."""
    page.keyboard.press("Escape")  # an open image's proposals dropped: leaving would ask first
    page.goto(f"{base}/#/project/{project_id}")
    page.wait_for_selector("#detector")
    try:
        page.wait_for_selector("#serving-why li", timeout=10000)
    except Exception:  # noqa: BLE001 (playwright's timeout: no version serves yet, no list)
        pass
    why = page.query_selector("#serving-why")
    (why or page.locator("#detector")).scroll_into_view_if_needed()
    page.screenshot(path=str(path), full_page=True)
    said = page.inner_text("#serving-why") if why else None
    return {"detector": page.inner_text("#detector"), "serving_why": said}
