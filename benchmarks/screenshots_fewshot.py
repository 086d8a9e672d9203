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
from screenshots import _reference

from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, default=Path("docs"))
    p.add_argument("--class", dest="cls", default=None, help="the class clicked (default: the most common)")
    p.add_argument("--image", type=int, default=12, help="position of the image clicked on")
    p.add_argument("--shots", type=int, nargs="+", default=[0, 2, 5], help="after how many finished images")
    args = p.parse_args(argv)
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
    reference = _reference(app, target["id"])
    counts = {}
    for r in reference:
        counts[r[0]] = counts.get(r[0], 0) + 1
    position = next((c["position"] for c in classes.values() if c["name"] == args.cls), None)
    position = max(counts, key=counts.get) if position is None else position
    clicked = min((r for r in reference if r[0] == position), key=lambda r: abs(r[1][0] - 200))
    args.out.mkdir(parents=True, exist_ok=True)
    shots = []
    with chromium_page(viewport=(1400, 860)) as page:
        log_in(page, base, *login[:2])
        finished = 0
        for n in sorted(args.shots):
            while finished < n:
                _finish(api, app, images[finished])
                finished += 1
            _wait_for_jobs(api, project["id"])
            if n == 5 and _newest_detector_images(api, project["id"]) != 5:
                api.post(f"/api/projects/{project['id']}/train", json={"minutes": 1}).raise_for_status()
                _wait_for_jobs(api, project["id"])
            if n == 2:  # from here on one job, started by hand once the 5th image is done
                api.patch(f"/api/projects/{project['id']}", json={"auto_train_every": 0}).raise_for_status()
            page.goto(f"{base}/#/image/{target['id']}")
            page.wait_for_function("() => S && S.ready")
            page.keyboard.press("Escape")
            page.wait_for_function("() => !S.prep || S.prep.ready", timeout=120000)
            page.keyboard.press(str(position + 1))
            page.keyboard.press("d")
            started = time.perf_counter()
            page.mouse.click(*screen(page, *clicked[1]))
            page.wait_for_function("() => S.detect.answered === 1", timeout=120000)
            seconds = time.perf_counter() - started
            page.wait_for_timeout(300)
            path = args.out / f"app_fewshot_{name}_{n}.png"
            page.screenshot(path=str(path))
            answer = page.evaluate("() => S.detect.result")
            shots.append(path)
            print(
                f"after {n} finished images: {answer.get('method')} v{answer.get('model_version')}, "
                f"{len(answer['boxes'])} boxes, on screen in {seconds:.2f} s",
                flush=True,
            )
            page.keyboard.press("Escape")
        page.goto(f"{base}/#/project/{project['id']}")
        page.wait_for_timeout(1500)
        path = args.out / f"app_fewshot_{name}_project.png"
        page.screenshot(path=str(path), full_page=True)
        shots.append(path)
    server.should_exit = True
    print("wrote " + ", ".join(str(s) for s in shots))
    return 0


def _finish(api: httpx.Client, app, image: dict) -> None:
    """The image's reference boxes become the user's own, and the image is marked done."""
    from fewclick.server.db import Image

    ref = _reference(app, image["id"])
    with app.state.sessions() as session:
        row = session.get(Image, image["id"])
        ids = {c.position: c.id for c in row.project.classes}
        revision = row.revision
    create = [
        {"class_id": ids[pos], "geometry": {"box": [x, y, x + w, y + h]}} for pos, _, (x, y, w, h) in ref
    ]
    body = {"create": create, "revision": revision}
    api.post(f"/api/images/{image['id']}/annotations/batch", json=body).raise_for_status()
    api.patch(f"/api/images/{image['id']}", json={"status": "done"}).raise_for_status()


def _wait_for_jobs(api: httpx.Client, project_id: int, timeout: float = 1800) -> None:
    """Until no job of the project is queued or running; prints the job lines as they go."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        jobs = api.get(f"/api/projects/{project_id}/jobs").json()
        active = [j for j in jobs if j["status"] in ("queued", "running")]
        for j in jobs:
            line = (j["id"], j["status"], j["message"])
            if j["status"] == "failed":
                raise SystemExit(f"job {j['id']} failed: {j['message']}")
        if active:
            line = (active[0]["id"], active[0]["status"], active[0]["message"], active[0].get("eta_seconds"))
            if line[:3] != (last or ())[:3]:
                print("job", *line, flush=True)
            last = line
            time.sleep(2)
            continue
        return
    raise SystemExit(f"jobs of project {project_id} still running after {timeout} s")


def _newest_detector_images(api: httpx.Client, project_id: int) -> int | None:
    detector = api.get(f"/api/projects/{project_id}").json().get("detector")
    return None if detector is None else detector.get("images")


if __name__ == "__main__":
    sys.exit(main())
