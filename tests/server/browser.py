"""What the browser tests need before they run: Playwright, and Debian's Chromium at
``/usr/bin/chromium`` (a module importing this is skipped, saying which is missing); then
the page, the live app, logging in, canvas coordinates and a drag from :mod:`benchmarks._browser`."""

from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

from benchmarks._browser import CHROMIUM, chromium_page, drag, live_server, log_in, screen  # noqa: E402

if not Path(CHROMIUM).exists():
    pytest.skip(
        f"Debian's chromium is not installed at {CHROMIUM} (.ci/run installs it)",
        allow_module_level=True,
    )

__all__ = ["chromium_page", "drag", "live_server", "log_in", "screen"]
