"""What one click returns as a project's first images are finished, in headless Chromium.

    python benchmarks/screenshots_fewshot.py --data ../shared/data/bccd --out docs [--class RBC]

Starts the real app on SQLite in a temporary folder, makes a project of ``--data`` with its
annotations imported as hidden reference, and then does what a user does: finishes images
one by one (their reference boxes become the user's own), lets training run by itself
(after every 2 finished images, the app's default), and clicks once on an object of
``--class`` in a later image. Screenshots: before any training (the training-free start),
after 2 and after 5 finished images, and the project page with the serving detector.
Writes ``app_fewshot_<name>_<n>.png`` and ``app_fewshot_<name>_project.png`` into ``--out``,
and prints the detect answer of every click (method, model version, boxes, time).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _browser import admin_account, chromium_page, log_in, screen, serve_in_thread
from _project import finish, reference_objects, wait_for_jobs

from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="fewclick-fewshot-"))
    roots = [args.data.resolve().parent]  # the folder that holds the dataset
    app = create_app(sqlite_url(work / "fewclick.db"), work, data_roots=roots)
    base, server = serve_in_thread(app)
    login = admin_account(app)
    api = httpx.Client(base_url=base, timeout=300, headers=login[2])
    name = args.data.name
    body = {"name": name, "dataset": str(args.data.resolve()), "reference": True}
    project = api.post("/api/projects", json=body).raise_for_status().json()["project"]
    images = api.get(f"/api/projects/{project['id']}/images").json()
    classes = {c["position"]: c for c in project["classes"]}
    target = images[args.image]
    reference = reference_objects(app, target["id"])
    position, clicked = _clicked(reference, classes, args.cls)
    args.out.mkdir(parents=True, exist_ok=True)
    shots = []
    with chromium_page(viewport=(1400, 860)) as page:
        log_in(page, base, *login[:2])
        finished = 0
        for n in sorted(args.shots):
            while finished < n:
                finish(api, app, images[finished])
                finished += 1
            wait_for_jobs(api, project["id"])
            if n == 5 and _newest_detector_images(api, project["id"]) != 5:
                api.post(f"/api/projects/{project['id']}/train", json={"minutes": 1}).raise_for_status()
                wait_for_jobs(api, project["id"])
            if n == 2:  # from here on one job, started by hand once the 5th image is done
                api.patch(f"/api/projects/{project['id']}", json={"auto_train_every": 0}).raise_for_status()
            path = args.out / f"app_fewshot_{name}_{n}.png"
            _shot(page, f"{base}/#/image/{target['id']}", position, clicked, path, n)
            shots.append(path)
        page.goto(f"{base}/#/project/{project['id']}")
        page.wait_for_timeout(1500)
        path = args.out / f"app_fewshot_{name}_project.png"
        page.screenshot(path=str(path), full_page=True)
        shots.append(path)
    server.should_exit = True
    print("wrote " + ", ".join(str(s) for s in shots))
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, default=Path("docs"))
    p.add_argument("--class", dest="cls", default=None, help="the class clicked (default: the most common)")
    p.add_argument("--image", type=int, default=12, help="position of the image clicked on")
    p.add_argument("--shots", type=int, nargs="+", default=[0, 2, 5], help="after how many finished images")
    return p


def _clicked(reference: list, classes: dict, cls: str | None) -> tuple[int, tuple]:
    """The class clicked (``cls``, else the image's most common) and the reference object of
    it clicked: the one whose centre is nearest x = 200."""
    counts = {}
    for r in reference:
        counts[r[0]] = counts.get(r[0], 0) + 1
    position = next((c["position"] for c in classes.values() if c["name"] == cls), None)
    position = max(counts, key=counts.get) if position is None else position
    clicked = min((r for r in reference if r[0] == position), key=lambda r: abs(r[1][0] - 200))
    return position, clicked


def _shot(page, url: str, position: int, clicked: tuple, path: Path, n: int) -> None:
    """One click on ``clicked`` in class ``position`` on the image page at ``url``; the
    answer on screen saved at ``path`` and printed (``n``: finished images so far)."""
    page.goto(url)
    page.wait_for_function("() => fewclickTest.ready")
    page.keyboard.press("Escape")
    page.wait_for_function("() => !fewclickTest.prep || fewclickTest.prep.ready", timeout=120000)
    page.keyboard.press(str(position + 1))
    page.keyboard.press("d")
    started = time.perf_counter()
    page.mouse.click(*screen(page, *clicked[1]))
    page.wait_for_function("() => fewclickTest.detect.answered === 1", timeout=120000)
    seconds = time.perf_counter() - started
    page.wait_for_timeout(300)
    page.screenshot(path=str(path))
    answer = page.evaluate("() => fewclickTest.detect.result")
    print(
        f"after {n} finished images: {answer.get('method')} v{answer.get('model_version')}, "
        f"{len(answer['boxes'])} boxes, on screen in {seconds:.2f} s",
        flush=True,
    )
    page.keyboard.press("Escape")


def _newest_detector_images(api: httpx.Client, project_id: int) -> int | None:
    detector = api.get(f"/api/projects/{project_id}").json().get("detector")
    return None if detector is None else detector.get("images")


if __name__ == "__main__":
    sys.exit(main())
