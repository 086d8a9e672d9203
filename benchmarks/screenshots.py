"""Screenshots of the app's modes for docs/, taken in headless Chromium on the demo project.

    python benchmarks/screenshots.py --demo out/demo --out docs

Uses the demo folder of ``fewclick demo`` (run it first and let its training job finish,
so that click-to-detect is served by the trained detector); serves a copy of its database
on a free port (the demo itself is left as it was) and
writes ``app_detect.png``, ``app_mask.png``, ``app_points.png``, ``app_review.png``,
``app_project.png`` and ``app_backends.png`` into ``--out``. When the demo's project has no
comparison of its mask backends yet (its training job makes one), the copy gets one first,
so that the mask is shown with the serving backend's quality estimate; SAM is picked to
serve it (on the synthetic demo scenes GrabCut scores higher).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
from pathlib import Path

import httpx
from _browser import admin_account, chromium_page, log_in, screen, serve_in_thread
from _project import reference_objects

from fewclick.server.app import create_app
from fewclick.server.db import sqlite_url


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--demo", type=Path, default=Path("out/demo"))
    p.add_argument("--out", type=Path, default=Path("docs"))
    args = p.parse_args(argv)
    if not (args.demo / "fewclick.db").is_file():
        raise SystemExit(f"{args.demo}: no demo here; run `fewclick demo --out {args.demo}` first")
    work = _demo_copy(args.demo)
    app = create_app(sqlite_url(work / "fewclick.db"), work)
    base, server = serve_in_thread(app)
    login = admin_account(app)
    api = httpx.Client(base_url=base, timeout=120, headers=login[2])
    project = api.get("/api/projects").json()[0]
    if api.get(f"/api/projects/{project['id']}/backends").json()["comparison"] is None:
        _compare(app, project["id"], work)
    # the mask is shown made by SAM, whichever backend the comparison picked on the demo
    api.put(f"/api/projects/{project['id']}/backend", json={"backend": "sam"}).raise_for_status()
    images = api.get(f"/api/projects/{project['id']}/images").json()
    todo = [im for im in images if im["status"] != "done"]
    image = todo[0]
    reference = reference_objects(app, image["id"])
    args.out.mkdir(parents=True, exist_ok=True)
    with chromium_page(viewport=(1400, 860)) as page:
        log_in(page, base, *login[:2])
        page.goto(f"{base}/#/image/{image['id']}")
        page.wait_for_function("() => fewclickTest.ready")
        page.keyboard.press("Escape")
        _detect(page, reference, args.out)
        _mask(page, reference, args.out)
        _points(page, reference, args.out)
        _review_and_project(page, base, project["id"], args.out)
    server.should_exit = True
    names = ", ".join(f"app_{m}.png" for m in ("detect", "mask", "points", "review", "project", "backends"))
    print(f"wrote {names} in {args.out}")
    return 0


def _demo_copy(demo: Path) -> Path:
    """A new folder holding a copy of the demo's database, so that every run starts from
    the demo as made."""
    work = Path(tempfile.mkdtemp(prefix="fewclick-shots-"))
    source = sqlite3.connect(demo / "fewclick.db")
    with sqlite3.connect(work / "fewclick.db") as copy:
        source.backup(copy)
    source.close()
    return work


def _detect(page, reference: list, out: Path) -> None:
    """Click-to-detect: one click on a small vehicle, the proposals accepted."""
    vehicle = next(r for r in reference if r[0] == 0)
    page.keyboard.press("1")
    page.keyboard.press("d")
    page.mouse.click(*screen(page, *vehicle[1]))
    page.wait_for_function("() => fewclickTest.detect.answered === 1", timeout=60000)
    page.wait_for_timeout(300)
    page.screenshot(path=str(out / "app_detect.png"))
    page.keyboard.press("Enter")
    page.wait_for_function("() => fewclickTest.anns.size > 0")


def _mask(page, reference: list, out: Path) -> None:
    """Box-to-mask: the largest object, one corrective click, the mask accepted."""
    largest = max(reference, key=lambda r: r[2][2] * r[2][3])
    x0, y0, x1, y1 = (
        largest[2][0],
        largest[2][1],
        largest[2][0] + largest[2][2],
        largest[2][1] + largest[2][3],
    )
    page.keyboard.press(str(largest[0] + 1))
    page.keyboard.press("m")
    page.wait_for_function("() => fewclickTest.prep && fewclickTest.prep.ready", timeout=120000)
    page.mouse.move(*screen(page, x0 - 3, y0 - 3))
    page.mouse.down()
    page.mouse.move(*screen(page, x1 + 3, y1 + 3), steps=4)
    page.mouse.up()
    page.wait_for_function("() => fewclickTest.seg && fewclickTest.seg.answered === 0", timeout=60000)
    page.mouse.click(*screen(page, (x0 + x1) / 2, (y0 + y1) / 2))
    page.wait_for_function("() => fewclickTest.seg.answered === 1", timeout=60000)
    page.wait_for_timeout(300)
    page.screenshot(path=str(out / "app_mask.png"))
    count = page.evaluate("() => fewclickTest.anns.size")
    page.keyboard.press("Enter")
    page.wait_for_function(
        f"() => fewclickTest.seg === null && fewclickTest.anns.size === {count + 1}", timeout=60000
    )


def _points(page, reference: list, out: Path) -> None:
    """Points: a click on each of a few vehicles."""
    page.keyboard.press("1")
    page.keyboard.press("p")
    before = page.evaluate("() => fewclickTest.anns.size")
    for k, r in enumerate([r for r in reference if r[0] == 0][1:6], start=1):
        cx, cy = r[1]
        page.mouse.click(*screen(page, cx + 3, cy - 2))
        page.wait_for_function(f"() => fewclickTest.anns.size === {before + k}", timeout=60000)
    page.screenshot(path=str(out / "app_points.png"))


def _review_and_project(page, base: str, project_id: int, out: Path) -> None:
    """Review (worst scores first), then the project page and its backends table."""
    page.keyboard.press("r")
    page.keyboard.press("n")
    page.wait_for_timeout(300)
    page.screenshot(path=str(out / "app_review.png"))
    page.keyboard.press("s")
    page.goto(f"{base}/#/project/{project_id}")
    page.wait_for_selector("#analytics p")
    page.wait_for_selector("#backend-table")
    page.wait_for_timeout(500)
    page.screenshot(path=str(out / "app_project.png"), full_page=True)
    page.locator("#backends").screenshot(path=str(out / "app_backends.png"))


def _compare(app, project_id: int, work: Path) -> None:
    """Compare the project's mask backends in this process (as its "Compare" button would)."""
    from fewclick.server.db import Job
    from fewclick.server.jobs.comparison import compare_job

    with app.state.sessions() as session:
        job = Job(project_id=project_id, kind="compare", created_by=1)
        session.add(job)
        session.commit()
        job_id = job.id
    settings = app.state.settings
    compare_job(settings.db_url, job_id, settings.models_dir, str(settings.embeddings))


if __name__ == "__main__":
    sys.exit(main())
