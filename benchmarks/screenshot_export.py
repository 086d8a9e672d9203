"""The project page's export, used as a person would, in headless Chromium: pick a format
in the select, press Export, open the zip.

    python benchmarks/screenshot_export.py --data ../shared/data/coco_tiny --format yolo-seg --out docs

Starts the real app on SQLite in a temporary folder with a project of ``--data`` (its
annotations imported as the project's own), chooses ``--format`` on the project page,
downloads the export through the browser and prints the archive's files and its
warnings.txt; writes ``app_export_<data>.png`` (the page with the format chosen).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import zipfile
from pathlib import Path

import httpx
from _browser import admin_account, chromium_page, log_in, serve_in_thread

from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url


def main(argv: list[str] | None = None) -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--format", default="yolo-seg")
    parser.add_argument("--out", type=Path, required=True, help="folder for the screenshot")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="fewclick-export-"))
    app = create_app(sqlite_url(work / "fewclick.db"), work, data_roots=[args.data.resolve().parent])
    base, _ = serve_in_thread(app)
    login = admin_account(app)
    api = httpx.Client(base_url=base, timeout=300, headers=login[2])
    body = {"name": args.data.name, "dataset": str(args.data.resolve())}
    project = api.post("/api/projects", json=body).raise_for_status().json()["project"]
    args.out.mkdir(parents=True, exist_ok=True)
    with chromium_page(viewport=(1400, 900)) as page:
        log_in(page, base, *login[:2])
        page.goto(f"{base}/#/project/{project['id']}")
        page.wait_for_selector("#export-format")
        page.select_option("#export-format", args.format)
        shot = args.out / f"app_export_{args.data.name}.png"
        page.screenshot(path=str(shot))
        with page.expect_download() as download:
            page.locator("#export button").click()
        content = Path(download.value.path()).read_bytes()
        name = download.value.suggested_filename
        errors = list(page.errors)
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        names = archive.namelist()
        warnings = archive.read("warnings.txt").decode() if "warnings.txt" in names else ""
    print(f"{name}: {len(names)} files, e.g. {names[:4]}")
    print("warnings.txt:", warnings.strip() or "(none)")
    print(f"page errors: {errors}")
    print(f"wrote {shot}")
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
