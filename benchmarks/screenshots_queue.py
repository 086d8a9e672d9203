"""The review queue used as a person would, in headless Chromium, on a real dataset.

    python benchmarks/screenshots_queue.py --data ../shared/data/bccd --out docs [--images 16] [--answers 14]
        [--rounds 3]

Starts the real app on SQLite in a temporary folder, makes a project of the first
``--images`` images of ``--data`` with their annotations imported as hidden reference,
finishes ``--finished`` images (their reference boxes become the user's), trains, builds the
review queue from the serving detector and answers ``--answers`` boxes with the keyboard
and the mouse, deciding each by the hidden reference as an annotator would by eye: right
(A) when a reference box of its class overlaps it at IoU >= 0.7, another class (1-9) when
one of another class does, the right box when one overlaps at IoU >= 0.3 (its two corners
dragged onto the reference box's and Enter, or E and its four extreme points, in turn),
else background (X). The last answer starts the project's background trainer by itself
(``queue_train_every`` is ``--answers``): its first round trains on the finished and the
answered images (these with the dampened loss) and serves only when it beats the serving
detector on the held-out finished images. After ``--rounds`` rounds, or sooner when one is
promoted, the trainer is stopped, and the walk prints every round, its candidate's mAP on
the unlabeled reference images, and the serving detectors' before and after; the project
page's analytics show the detector's mAP on those images against boxes labeled. Prints
each answer and the milliseconds from the key to the next box on screen; writes ``app_queue_<name>.png`` (the
first box), ``app_queue_<name>_answered.png``, ``app_queue_<name>_project.png`` and
``app_queue_<name>_curve.png`` (the project's analytics) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from _browser import admin_account, chromium_page, log_in, serve_in_thread
from _project import finish, keep_first, reference_objects, wait_for_jobs

from fewclick.metrics.detection import box_iou
from fewclick.server.app import create_app
from fewclick.server.db import Project, sqlite_url


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="fewclick-queue-"))
    app = create_app(sqlite_url(work / "fewclick.db"), work, data_roots=[args.data.resolve().parent])
    base, server = serve_in_thread(app)
    login = admin_account(app)
    api = httpx.Client(base_url=base, timeout=300, headers=login[2])
    name = args.data.name
    project = _queue_project(api, app, args)
    pid = project["id"]
    keys = {c["id"]: c["key"] for c in project["classes"]}
    position = {c["position"]: c["id"] for c in project["classes"]}
    args.out.mkdir(parents=True, exist_ok=True)
    with chromium_page(viewport=(1100, 760)) as page:
        log_in(page, base, *login[:2])
        page.goto(f"{base}/#/project/{pid}/queue")
        waits = _answers(page, app, keys, position, args.answers, args.out / f"app_queue_{name}")
        assert page.errors == [], page.errors
        _trainer_rounds(app, api, pid, args.rounds)
        _project_page(page, api, base, pid, args.out / f"app_queue_{name}")
    state = api.get(f"/api/projects/{pid}/queue").json()
    answers = f"{state['answered']} answered {state['answers']}"
    print(f"queue: {state['open']} open, {answers}, {state['seconds']:.1f} s")
    if waits:
        print(
            f"next box on screen after an answer: p50 {np.percentile(waits, 50):.0f} ms, "
            f"p95 {np.percentile(waits, 95):.0f} ms over {len(waits)} answers"
        )
    server.should_exit = True
    return 0


def _queue_project(api: httpx.Client, app, args) -> dict:
    """The project of ``--data`` cut to its first ``--images`` images, ``--finished`` of them
    done, a detector trained on them and the queue of boxes to verify made."""
    body = {"name": args.data.name, "dataset": str(args.data.resolve()), "reference": True}
    project = api.post("/api/projects", json=body).raise_for_status().json()["project"]
    pid = project["id"]
    keep_first(app, pid, args.images)
    every = {"auto_train_every": 0, "queue_train_every": args.answers}  # the last answer starts the trainer
    api.patch(f"/api/projects/{pid}", json=every).raise_for_status()
    images = api.get(f"/api/projects/{pid}/images").json()
    for image in images[: args.finished]:
        finish(api, app, image)
    api.post(f"/api/projects/{pid}/train", json={"minutes": 1}).raise_for_status()
    wait_for_jobs(api, pid, timeout=5400)  # a loaded machine stretches the first training
    api.post(f"/api/projects/{pid}/queue").raise_for_status()
    wait_for_jobs(api, pid, timeout=5400)  # a loaded machine stretches the first training
    print(api.get(f"/api/projects/{pid}/jobs").json()[-1]["message"], flush=True)
    return project


def _answers(page, app, keys: dict, position: dict, answers: int, stem: Path) -> list[float]:
    """Up to ``answers`` boxes of the queue answered as the person would, the page saved at
    ``stem``.png and halfway; the milliseconds until the next box was on screen."""
    waits: list[float] = []
    shown = _shown(page)
    page.screenshot(path=f"{stem}.png")
    for i in range(answers):
        if shown is None:
            break
        kind = _answer(page, app, shown, keys, position, fixes=i)
        started = time.perf_counter()
        page.wait_for_function(
            f"() => {{ const q = fewclickTest.queue;"
            f" return !q.next || (q.next.id !== {shown['id']} && q.view); }}",
            timeout=60000,
        )
        waits.append((time.perf_counter() - started) * 1000)
        print(f"box {shown['id']} (p = {shown['score']:.2f}): {kind}; next on screen in {waits[-1]:.0f} ms")
        shown = _shown(page, wait=False)
        if i == answers // 2:
            page.screenshot(path=f"{stem}_answered.png")
    return waits


def _trainer_rounds(app, api: httpx.Client, pid: int, rounds: int, timeout: float = 5400) -> None:
    """Let the trainer the answers started run until a round is promoted or ``rounds`` rounds
    are done (more training while the person works), stop it, and print every round and the
    reference mAP of its candidate, and of the detectors serving before and after."""
    from fewclick.server.jobs.training import reference_images, reference_score
    from fewclick.server.storage import rows

    state = app.state.settings.models_dir / str(pid) / "trainer" / "state.json"
    deadline, said = time.monotonic() + timeout, None
    while not _rounds_done(state, rounds):
        trainer = api.get(f"/api/projects/{pid}").json()["trainer"]
        if trainer is None or time.monotonic() > deadline:
            raise SystemExit(f"the trainer stopped before {rounds} rounds or a promoted one: {trainer}")
        if trainer["message"] != said:
            said = trainer["message"]
            print(f"trainer: {said}", flush=True)
        time.sleep(5)
    api.post(f"/api/projects/{pid}/trainer", json={"action": "stop"}).raise_for_status()
    with app.state.sessions() as session:
        project = rows.find(session, Project, pid)
        reference = reference_images(session, project)
        classes = [c.name for c in project.classes]
    for i, round_ in enumerate(json.loads(state.read_text())["rounds"], 1):
        kept = Path(round_["path"]).is_file()  # the trainer keeps its last two rounds
        candidate = (
            reference_score(Path(round_["path"]), reference, classes, None, pid)["reference_mAP"]
            if kept
            else "(not kept)"
        )
        print(
            f"trainer round {i}: {round_['train_images']} images, {round_['steps']} steps; seconds saved an "
            f"image on {len(round_['scored'])} images it never saw {round_['saved']}; "
            f"promoted {round_['promoted']}; candidate's mAP on the reference images {candidate}"
        )
    for version in api.get(f"/api/projects/{pid}/analytics").json()["map_vs_boxes"] or []:
        print(
            f"detector v{version['version']}: {version['boxes']} boxes labeled, mAP {version['mAP']:.3f} "
            f"on {version['images']} unlabeled reference images"
        )


def _rounds_done(state: Path, rounds: int) -> bool:
    if not state.is_file():
        return False
    done = json.loads(state.read_text())["rounds"]
    return len(done) >= rounds or any(r["promoted"] for r in done)


def _project_page(page, api: httpx.Client, base: str, pid: int, stem: Path) -> None:
    """The project page and its curve of mAP over boxes labeled, saved at ``stem``_project.png
    and ``stem``_curve.png."""
    page.goto(f"{base}/#/project/{pid}")
    page.wait_for_selector("#boxes-curve")
    page.wait_for_timeout(500)
    page.screenshot(path=f"{stem}_project.png", full_page=True)
    page.locator("#analytics").screenshot(path=f"{stem}_curve.png")


def _shown(page, wait: bool = True) -> dict | None:
    if wait:
        page.wait_for_function(
            "() => fewclickTest.queue && (fewclickTest.queue.view || !fewclickTest.queue.next)", timeout=60000
        )
    return page.evaluate("() => fewclickTest.queue.view ? fewclickTest.queue.next : null")


def _answer(page, app, shown: dict, keys: dict, position: dict, fixes: int) -> str:
    """Answer the shown box as its hidden reference says; returns what was answered. A box
    to redraw gets its corners dragged on even ``fixes``, extreme points on odd ones."""
    ref = reference_objects(app, shown["image_id"])
    if not ref:
        page.keyboard.press("x")
        return "background"
    boxes = np.array([[x, y, x + w, y + h] for _, _, (x, y, w, h) in ref], np.float32)
    iou = box_iou(np.array([shown["box"]], np.float32), boxes)[0]
    best = int(np.argmax(iou))
    cls = position[ref[best][0]]
    if iou[best] >= 0.7:
        if cls == shown["class_id"]:
            page.keyboard.press("a")
            return "right"
        page.keyboard.press(str(keys[cls]))
        return "another class"
    if iou[best] >= 0.3:
        x0, y0, x1, y1 = (float(v) for v in boxes[best])
        if fixes % 2 == 0:
            a0, b0, a1, b1 = shown["box"]
            for corner, target in (((a0, b0), (x0, y0)), ((a1, b1), (x1, y1))):
                if max(abs(corner[0] - target[0]), abs(corner[1] - target[1])) > 2:  # else it is a click
                    _drag(page, corner, target)
            page.keyboard.press("Enter")
            return f"corners dragged (IoU {iou[best]:.2f})"
        page.keyboard.press("e")
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        for x, y in ((x0, cy), (cx, y0), (x1, cy), (cx, y1)):
            page.mouse.click(*_on_canvas(page, x, y))
        return f"extreme points (IoU {iou[best]:.2f})"
    page.keyboard.press("x")
    return "background"


def _on_canvas(page, x: float, y: float) -> list[float]:
    js = """([x, y]) => { const r = document.querySelector('#queue-canvas').getBoundingClientRect();
        const v = fewclickTest.queue.view;
        return [r.left + v.ox + x * v.scale, r.top + v.oy + y * v.scale]; }"""
    return page.evaluate(js, [float(x), float(y)])


def _drag(page, a, b) -> None:
    start, end = _on_canvas(page, *a), _on_canvas(page, *b)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=6)
    page.mouse.up()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, default=Path("docs"))
    p.add_argument("--images", type=int, default=16)
    p.add_argument("--finished", type=int, default=5)
    p.add_argument("--answers", type=int, default=14)
    p.add_argument(
        "--rounds", type=int, default=3, help="trainer rounds to wait for, unless one is promoted sooner"
    )
    return p


if __name__ == "__main__":
    sys.exit(main())
