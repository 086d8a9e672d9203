"""A new user's first images, in headless Chromium against ``fewclick serve`` (issue 53): an
empty project, images uploaded through its page, then image after image opened, looked at
and finished, while the background trainer starts by itself after the project's
``auto_train_every`` (2) finished images; then its Stop clicked on the project page.

    python benchmarks/new_user.py --data ../shared/data/hit_uav --out docs [--images 10]
        [--seconds 45] [--work DIR]

The images are the first ``--images`` of our test part (every 4th by name). Each is opened
in the page and waited for as a person would (its preparation: SAM's embedding and
proposals), screenshotted as it opens (``new_user_<k>.png`` in ``--out``), and finished with
its reference boxes through the API, as the person's own; the person's ``--seconds`` on it
pass before the next opens. Per image it records the seconds to open (``open_seconds``: until
its proposals all exist; ``first_proposals_seconds``: until the page first shows some, those
of its first windows searched, None when none show on open), the proposals shown on open,
the objects there, what made the boxes and the detector serving. A thread follows the
trainer's job every 2 s: in each round, the page's estimate of the time left once a quarter
of its steps are done, against the time the round really took from there. After the last
image, once the trainer has ended ``--rounds`` rounds (or ``--wait`` seconds passed), Stop is
clicked on the project page and the seconds until the trainer's job has ended are timed.
The rest goes to ``--out``/``new_user.json`` and a contact sheet of the screenshots,
``new_user_sheet.png``. The server and its trainer stop on SIGTERM, SIGINT and
errors (:func:`_walk.with_server`).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from _browser import chromium_page, log_in, project_serving
from _common import load_average, part_names, run_record
from _walk import finish, with_server

from fewclick.io import read_dataset
from fewclick.metrics.detection import box_iou

USER, PASSWORD = "newuser", "a new user's password"
LIVE = ("queued", "running", "paused", "stopping")
SHOWN = "() => fewclickTest.detect.result ? fewclickTest.shownProposals().length : 0"
PROPOSALS = """() => {
  const r = fewclickTest.detect.result;
  return r ? {boxes: r.boxes, scores: r.scores, shown: fewclickTest.shownProposals()} : null;
}"""
# from the moment it is run: when the page first shows proposals on image ``id`` (issue 69)
FIRST_SHOWN = """(id) => { window.opening = performance.now(); window.firstShown = null;
  clearInterval(window.firstWatch);
  window.firstWatch = setInterval(() => {
    if (window.firstShown == null && fewclickTest.image?.id === id && fewclickTest.detect?.result
        && fewclickTest.shownProposals().length) window.firstShown = performance.now();
  }, 100); }"""
FIRST_SECONDS = "() => window.firstShown == null ? null : (window.firstShown - window.opening) / 1000"
RESCUE_FLOOR = 0.3  # detect.js: the lowest score the page shows on its own
BOXED_IOU = 0.5  # a proposal boxes an object at this IoU with its reference box


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=45.0, help="a person's seconds on an image")
    parser.add_argument("--work", type=Path, default=None, help="the app's folder (default: a new one)")
    parser.add_argument("--rounds", type=int, default=1, help="trainer rounds ended before Stop is clicked")
    parser.add_argument("--wait", type=float, default=1800.0, help="seconds waited for them at most")
    args = parser.parse_args(argv)
    data = read_dataset(args.data)
    test = set(part_names([r.file_name for r in data.images], "test"))
    records = sorted((r for r in data.images if r.file_name in test), key=lambda r: r.file_name)
    records = records[: args.images]
    work = args.work or Path(tempfile.mkdtemp(prefix="fewclick-new-user-"))
    args.out.mkdir(parents=True, exist_ok=True)
    report = run_record("load_average_start")
    report.update(with_server(work, args.data, lambda server: _walk(server, args, records, data.classes)))
    report["load_average_end"] = load_average()
    (args.out / "new_user.json").write_text(json.dumps(report, indent=1) + "\n")
    _sheet(args.out, len(records))
    print(json.dumps({k: v for k, v in report.items() if k != "images"}, indent=1))
    return 0


def _walk(server, args, records: list, classes: list[str]) -> dict:
    api = httpx.Client(base_url=server.base, headers=server.add_user(USER, "admin", PASSWORD), timeout=900)
    project = api.post("/api/projects", json={"name": args.data.name, "classes": classes}).raise_for_status()
    project = project.json()["project"]
    cls = {k: c["id"] for k, c in enumerate(project["classes"])}
    follow = _Follow(api, project["id"])
    with chromium_page(viewport=(1400, 860)) as page:
        log_in(page, server.base, USER, PASSWORD)
        page.goto(f"{server.base}/#/project/{project['id']}")
        page.wait_for_selector("#upload-files", state="attached")
        started = time.perf_counter()
        page.set_input_files("#upload-files", [str(r.path) for r in records])
        page.wait_for_function(
            f"() => document.querySelectorAll('#uploads li[class]').length === {len(records)}", timeout=600000
        )
        uploaded = round(time.perf_counter() - started, 1)
        images = {im["file_name"]: im for im in api.get(f"/api/projects/{project['id']}/images").json()}
        follow.start()
        try:
            rows = []
            for k, record in enumerate(records):
                image = images[Path(record.file_name).name]
                rows.append(_image(page, server.base, api, project, image, record, k, args.out))
                finish(api, image, record.objects, cls)
                rows[-1]["trainer"] = follow.last_message()
                print(json.dumps(rows[-1]), flush=True)
                time.sleep(args.seconds)
            follow.rounds_done(args.rounds, args.wait)  # the estimates need a round that ended
            stopped = _stop(page, server.base, api, project, args.out)
        finally:
            follow.done.set()
    return {
        "data": str(args.data), "images_uploaded": len(records), "upload_seconds": uploaded,
        "person_seconds_per_image": args.seconds, "images": rows, "stop": stopped,
        "estimates": follow.estimates(), "page_errors": list(page.errors),
    }  # fmt: skip


def _image(page, base: str, api, project: dict, image: dict, record, k: int, out: Path) -> dict:
    """Open ``image`` in the page and wait as a person would; what it showed on open."""
    page.keyboard.press("Escape")  # the last image's proposals dropped: leaving would ask first
    page.evaluate(FIRST_SHOWN, image["id"])
    started = time.perf_counter()
    page.goto(f"{base}/#/image/{image['id']}")
    ready = "() => fewclickTest.ready && fewclickTest.prep && fewclickTest.prep.ready"
    page.wait_for_function(ready, timeout=900000)
    page.wait_for_function("() => fewclickTest.prep.proposals !== 'making'", timeout=900000, polling=1000)
    try:  # proposals on open, when something serves them
        page.wait_for_function("() => fewclickTest.detect.result", timeout=20000)
    except Exception:  # noqa: BLE001 (playwright's timeout: nothing was shown)
        pass
    opened = round(time.perf_counter() - started, 1)
    page.wait_for_timeout(500)
    page.screenshot(path=str(out / f"new_user_{k:02d}.png"))
    detector = api.get(f"/api/projects/{project['id']}").json()["detector"]
    return {
        "k": k, "file": image["file_name"], "objects": int(len(record.objects)), "open_seconds": opened,
        # to the first proposals shown (None: none showed on open); open_seconds: until all exist
        "first_proposals_seconds": page.evaluate(FIRST_SECONDS),
        "shown_on_open": page.evaluate(SHOWN),
        **_boxed(page.evaluate(PROPOSALS), record),
        "boxes_from": page.inner_text("#boxes-from") if page.query_selector("#boxes-from") else "",
        "below_slider": page.inner_text("#below-score") if page.query_selector("#below-score") else "",
        "detector_serving": None if detector is None else f"v{detector['version']} {detector['method']}",
    }  # fmt: skip


def _boxed(proposals: dict | None, record) -> dict:
    """Whether the proposals on open box the image's objects (issue 53: the first served
    version opens an image with proposals wherever it boxes objects): ``boxed`` counts the
    reference objects a proposal scored at least ``RESCUE_FLOOR`` boxes at IoU
    ``BOXED_IOU``, ``boxed_shown`` those a shown proposal boxes, ``boxed_any_score`` those
    any proposal boxes, however low its score."""
    keep = ~np.asarray(record.objects.ignore, bool)
    truth = np.asarray(record.objects.boxes, np.float64)[keep]
    if not proposals or not proposals["boxes"] or not len(truth):
        return {"boxed": 0, "boxed_shown": 0, "boxed_any_score": 0}
    iou = box_iou(np.asarray(proposals["boxes"], np.float64), truth) >= BOXED_IOU
    scores = np.asarray(proposals["scores"])
    shown = np.zeros(len(scores), bool)
    shown[list(proposals["shown"])] = True
    return {
        "boxed": int(iou[scores >= RESCUE_FLOOR].any(axis=0).sum()),
        "boxed_shown": int(iou[shown].any(axis=0).sum()),
        "boxed_any_score": int(iou.any(axis=0).sum()),
    }


def _stop(page, base: str, api, project: dict, out: Path) -> dict:
    """Stop clicked on the project page while the trainer runs; the seconds until its job ended."""
    page.keyboard.press("Escape")
    page.goto(f"{base}/#/project/{project['id']}")
    page.wait_for_selector("#trainer-stop:not([hidden])", timeout=60000)
    jobs = api.get(f"/api/projects/{project['id']}/jobs").json()
    live = [j for j in jobs if j["kind"] == "trainer" and j["status"] in LIVE]
    before = live[-1] if live else None
    page.screenshot(path=str(out / "new_user_before_stop.png"))
    serving = project_serving(page, base, project["id"], out / "new_user_project.png")
    page.wait_for_selector("#trainer-stop:not([hidden])", timeout=60000)
    clicked = time.monotonic()
    page.click("#trainer-stop")
    while time.monotonic() - clicked < 120:
        job = api.get(f"/api/jobs/{before['id']}").json() if before else None
        if job is None or job["status"] not in LIVE:
            break
        time.sleep(0.2)
    ended = round(time.monotonic() - clicked, 1)
    page.wait_for_function("() => document.querySelector('#trainer').textContent.includes('trainer: off')")
    shown = round(time.monotonic() - clicked, 1)
    page.screenshot(path=str(out / "new_user_stopped.png"))
    return {
        "trainer_before": before and {k: before[k] for k in ("status", "message", "progress", "eta_seconds")},
        "job_ended_seconds": ended, "page_says_off_seconds": shown, "job_after": job, **serving,
    }  # fmt: skip


class _Follow:
    """The trainer's job, read every 2 s in a thread: its samples, from which each round's
    estimate at a quarter of its steps is set against the time the round took from there."""

    def __init__(self, api, project_id: int) -> None:
        self.api, self.project_id = api, project_id
        self.samples: list[dict] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(2.0):
            try:
                jobs = self.api.get(f"/api/projects/{self.project_id}/jobs").json()
            except httpx.HTTPError:
                continue
            trainers = [j for j in jobs if j["kind"] == "trainer"]
            if trainers:
                self.samples.append({"t": time.monotonic(), **trainers[-1]})

    def rounds_done(self, rounds: int, seconds: float) -> None:
        """Wait (at most ``seconds``) until the trainer has ended ``rounds`` rounds."""
        end = time.monotonic() + seconds
        while time.monotonic() < end and _round(self.samples[-1] if self.samples else None) <= rounds:
            time.sleep(5)

    def last_message(self) -> str | None:
        return self.samples[-1]["message"] if self.samples else None

    def estimates(self) -> list[dict]:
        """Per round: the estimate once a quarter of its steps were done, and the truth."""
        out, seen = [], set()
        for i, s in enumerate(self.samples):
            counts = s.get("step_counts") or [None, None]
            quarter = counts[1] and counts[0] >= counts[1] / 4
            if s["status"] != "running" or not quarter or s["eta_seconds"] is None:
                continue
            name = s["message"].split(" on ")[0]  # "round 3"
            if name in seen or not name.startswith("round "):
                continue
            seen.add(name)
            number = _round(s)
            end = next((t for t in self.samples[i:] if _round(t) > number), None)  # the next round began
            if end is None:  # stopped before it ended
                continue
            real = end["t"] - s["t"]
            out.append({
                "round": name, "at_steps": counts, "estimate_seconds": round(s["eta_seconds"], 1),
                "range": s["eta_range"], "from": s["eta_from"], "real_seconds": round(real, 1),
                "error": round(abs(s["eta_seconds"] - real) / real, 3) if real > 0 else None,
            })  # fmt: skip
        return out


def _round(sample: dict | None) -> int:
    """The round a sample of the trainer's job says it trains (``round 3 on 9 images ...``),
    or its next once one has ended (``round 2: held-out ...`` counts as 3); 0 before any."""
    words = (sample or {}).get("message", "").split()
    if len(words) < 2 or words[0] != "round" or sample["status"] != "running":
        return 0
    number = words[1].rstrip(":")
    return int(number) + words[1].endswith(":") if number.isdigit() else 0


def _sheet(out: Path, n: int) -> None:
    """The screenshots of the images as they opened, side by side (``new_user_sheet.png``)."""
    from PIL import Image, ImageDraw

    shots = [out / f"new_user_{k:02d}.png" for k in range(n) if (out / f"new_user_{k:02d}.png").is_file()]
    if not shots:
        return
    thumbs = [Image.open(p).convert("RGB").resize((700, 430)) for p in shots]
    cols = 2
    sheet = Image.new("RGB", (cols * 700, ((len(thumbs) + cols - 1) // cols) * 430), "white")
    for k, thumb in enumerate(thumbs):
        ImageDraw.Draw(thumb).text((8, 8), f"image {k + 1}", fill=(255, 0, 0))
        sheet.paste(thumb, ((k % cols) * 700, (k // cols) * 430))
    sheet.save(out / "new_user_sheet.png")


if __name__ == "__main__":
    raise SystemExit(main())
