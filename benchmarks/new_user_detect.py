"""A new user's Detect mode, in headless Chromium against ``fewclick serve`` (issue 67): an
empty project, images uploaded through its page, then image after image opened (every
other one in Box mode, D pressed once it is open), its proposals looked at, the objects
they missed clicked one at a time, Enter, and the rest finished by hand.

    python benchmarks/new_user_detect.py --data ../shared/data/bccd --out docs/benchmarks/new_user_detect
        [--images 8] [--clicks 6] [--work DIR] [--seconds S] [--train-after N]

The images are the first ``--images`` of our test part (every 4th by name). Per image the
walk records: the mode it opened in, the boxes shown once the proposals are there (in
Detect mode, after D when it opened in Box), how many reference objects a shown box of
their class holds at IoU 0.7 and 0.5, each click (the largest object no shown box matches,
:func:`~fewclick.simulate.annotator.next_click`, at its box's centre, its class picked
with its key) with the seconds until the page had its answer and the right boxes
(IoU >= 0.7 with an object of their class) that were shown before it and not after, the
boxes Enter accepted, and what was left to do by hand (boxes deleted, boxes drawn: made
through the API as the person's own). The status line of the Detect panel (in Box mode, the
line saying what Detect holds) is read every 0.5 s while the image is open: each distinct
line, with the seconds since the image was opened. ``--seconds`` pass after each image (a
person's time on it: the background trainer, started after ``--train-after`` finished
images, trains meanwhile), and each image records the detector version serving once it is
done. Screenshots: each image as it opens and after its clicks, and at the end the project
page down to what serves and why (``project.png``; its words in ``serving``), in ``--out``.
The server stops on SIGTERM, SIGINT and errors (:func:`_walk.with_server`).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from _browser import chromium_page, log_in, project_serving, screen
from _common import load_average, run_record, split_parts
from _walk import with_server

from fewclick.io import read_dataset
from fewclick.metrics.detection import box_iou
from fewclick.simulate.annotator import match, missed, next_click, required

USER, PASSWORD = "newuser", "a new user's password"
STATUS = "#detect-status, #waiting"  # the Detect panel's status line; the other modes' line on it
SHOWN = """() => { const d = fewclickTest.detect, r = d && d.result;
  return {boxes: r ? fewclickTest.shownProposals().map((i) => r.boxes[i]) : [],
          labels: r ? fewclickTest.shownProposals().map((i) => r.labels[i]) : [],
          answered: d ? d.answered ?? 0 : 0, busy: !!(d && d.busy)}; }"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--clicks", type=int, default=6, help="clicks on an image at most")
    parser.add_argument("--work", type=Path, default=None, help="the app's folder (default: a new one)")
    parser.add_argument("--seconds", type=float, default=0.0, help="a person's seconds after each image")
    parser.add_argument(
        "--train-after", type=int, default=None, help="the project's 'start training after' (finished images)"
    )
    args = parser.parse_args(argv)
    data = read_dataset(args.data)
    records = sorted(split_parts(data)[1].images, key=lambda r: r.file_name)[: args.images]
    work = args.work or Path(tempfile.mkdtemp(prefix="fewclick-new-user-detect-"))
    args.out.mkdir(parents=True, exist_ok=True)
    report = run_record("load_average_start")
    report.update(with_server(work, args.data, lambda server: _walk(server, args, records, data.classes)))
    report["load_average_end"] = load_average()
    (args.out / "new_user_detect.json").write_text(json.dumps(report, indent=1) + "\n")
    print(table(report["images"]))
    return 0


def _walk(server, args, records: list, classes: list[str]) -> dict:
    api = httpx.Client(base_url=server.base, headers=server.add_user(USER, "admin", PASSWORD), timeout=900)
    project = api.post("/api/projects", json={"name": args.data.name, "classes": classes}).raise_for_status()
    project = project.json()["project"]
    ids = [c["id"] for c in project["classes"]]
    url = f"/api/projects/{project['id']}"
    if args.train_after is not None:
        api.patch(url, json={"auto_train_every": args.train_after}).raise_for_status()
    with chromium_page(viewport=(1400, 860)) as page:
        log_in(page, server.base, USER, PASSWORD)
        page.goto(f"{server.base}/#/project/{project['id']}")
        page.wait_for_selector("#upload-files", state="attached")
        page.set_input_files("#upload-files", [str(r.path) for r in records])
        page.wait_for_function(
            f"() => document.querySelectorAll('#uploads li[class]').length === {len(records)}", timeout=600000
        )
        images = {im["file_name"]: im for im in api.get(f"/api/projects/{project['id']}/images").json()}
        rows = []
        for k, record in enumerate(records):
            image = images[Path(record.file_name).name]
            rows.append(_image(page, server.base, api, project, ids, image, record, k, args))
            rows[-1]["detector_serving"] = (api.get(url).json()["detector"] or {}).get("version")
            print(json.dumps({key: v for key, v in rows[-1].items() if key != "status_lines"}), flush=True)
            time.sleep(args.seconds)  # the person's time on it: the trainer trains meanwhile
        serving = project_serving(page, server.base, project["id"], args.out / "project.png")
    return {"data": str(args.data), "images": rows, "serving": serving, "page_errors": list(page.errors)}


def _image(page, base: str, api, project: dict, ids: list[int], image: dict, record, k: int, args) -> dict:
    """One image, as the module docstring says."""
    gt = record.objects
    mode = "box" if k % 2 else "detect"
    page.keyboard.press("Escape")
    page.evaluate(f"() => sessionStorage.setItem('fewclick.mode.{project['id']}', '{mode}')")
    lines = _StatusLines(page)
    page.goto(f"{base}/#/image/{image['id']}")
    page.wait_for_function(
        f"() => fewclickTest.ready && fewclickTest.image.id === {image['id']}", timeout=600000
    )
    lines.start()
    try:
        page.wait_for_function(
            "() => fewclickTest.prep && fewclickTest.prep.ready && fewclickTest.prep.proposals !== 'making'",
            timeout=900000,
            polling=500,
        )
        if mode == "box":
            page.wait_for_timeout(1000)  # a person looks before pressing D
            page.keyboard.press("d")
        page.wait_for_timeout(3000)  # the proposals on open, when something serves them
        opened = _shown(page, ids)
        page.screenshot(path=str(args.out / f"image_{k:02d}_open.png"))
        clicks = _clicks(page, gt, ids, opened, args.clicks)
        page.screenshot(path=str(args.out / f"image_{k:02d}_clicked.png"))
        before = len(api.get(f"/api/images/{image['id']}").json()["annotations"])
        page.keyboard.press("Enter")
        page.wait_for_function("() => !fewclickTest.detect.result", timeout=60000)
        page.wait_for_timeout(500)
        accepted = len(api.get(f"/api/images/{image['id']}").json()["annotations"]) - before
    finally:
        lines.stop()
    deleted, drawn = _finish(api, image, gt, ids)
    return {
        "k": k, "file": image["file_name"], "objects": int(required(gt).sum()), "opened_in": mode,
        "shown_on_open": len(opened[0]), **right_counts(gt, *opened), "clicks": clicks, "accepted": accepted,
        "deleted_by_hand": deleted, "drawn_by_hand": drawn,
        "right_lost_on_click": sum(c["right_lost"] for c in clicks),
        "status_lines": lines.seen, "silent_seconds": lines.silent,
    }  # fmt: skip


def _shown(page, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The boxes the page shows and their class positions."""
    s = page.evaluate(SHOWN)
    position = {c: k for k, c in enumerate(ids)}
    return np.asarray(s["boxes"], np.float32).reshape(-1, 4), np.asarray(
        [position[c] for c in s["labels"]], np.int64
    )


def right_counts(gt, boxes: np.ndarray, labels: np.ndarray) -> dict:
    """How many reference objects a shown box of their class holds at IoU 0.7 and at 0.5."""
    keep = required(gt)
    if not len(boxes) or not keep.any():
        return {"right_07": 0, "right_05": 0}
    iou = box_iou(np.asarray(gt.boxes, np.float32)[keep], boxes)
    iou[np.asarray(gt.labels)[keep][:, None] != labels[None, :]] = 0
    return {"right_07": int((iou.max(1) >= 0.7).sum()), "right_05": int((iou.max(1) >= 0.5).sum())}


def _clicks(page, gt, ids: list[int], shown: tuple, most: int) -> list[dict]:
    """The missed objects clicked, largest first, while a click leaves fewer missed."""
    out = []
    left = len(missed(gt, *shown))
    while len(out) < most:
        j = next_click(gt, *shown)
        if j is None:
            break
        right = _right_boxes(gt, *shown)
        page.keyboard.press(str(int(gt.labels[j]) + 1))
        x0, y0, x1, y1 = gt.boxes[j].tolist()
        answered = page.evaluate(SHOWN)["answered"]
        started = time.perf_counter()
        page.mouse.click(*screen(page, (x0 + x1) / 2, (y0 + y1) / 2))
        page.wait_for_function(f"() => (fewclickTest.detect.answered ?? 0) > {answered}", timeout=600000)
        waited = time.perf_counter() - started
        shown = _shown(page, ids)
        now = {tuple(np.round(b, 1)) for b in shown[0].tolist()}
        lost = [b for b in right if b not in now]
        out.append({"class": int(gt.labels[j]), "wait_seconds": round(waited, 2), "shown": len(shown[0]),
                    "right_lost": len(lost), **right_counts(gt, *shown)})  # fmt: skip
        now_left = len(missed(gt, *shown))
        if now_left >= left:
            break
        left = now_left
    return out


def _right_boxes(gt, boxes: np.ndarray, labels: np.ndarray) -> list[tuple]:
    """The shown boxes that are right (IoU >= 0.7 with a reference object of their class)."""
    matched = match(gt, boxes, labels)
    return [tuple(np.round(b, 1)) for b, m in zip(boxes.tolist(), matched) if m >= 0]


def _finish(api, image: dict, gt, ids: list[int]) -> tuple[int, int]:
    """What the person does by hand after Enter: the wrong boxes deleted, the missed objects
    drawn (through the API, as their own), the image submitted; how many of each."""
    saved = api.get(f"/api/images/{image['id']}").json()
    position = {c: k for k, c in enumerate(ids)}
    boxes = np.asarray([a["geometry"]["box"] for a in saved["annotations"]], np.float32).reshape(-1, 4)
    labels = np.asarray([position[a["class_id"]] for a in saved["annotations"]], np.int64)
    matched = match(gt, boxes, labels)
    wrong = [a["id"] for a, m in zip(saved["annotations"], matched) if m < 0]
    todo = missed(gt, boxes, labels)
    create = [{"class_id": ids[int(gt.labels[j])], "geometry": {"box": gt.boxes[j].tolist()}} for j in todo]
    body = {"revision": saved["revision"], "delete": wrong, "create": create}
    api.post(f"/api/images/{image['id']}/annotations/batch", json=body).raise_for_status()
    api.patch(f"/api/images/{image['id']}", json={"status": "done", "empty": False}).raise_for_status()
    return len(wrong), len(todo)


class _StatusLines:
    """The Detect panel's status line, read by the page itself every 0.5 s while the image is
    open (Playwright's sync API is not for threads): each distinct line with the seconds
    since the image opened, and the seconds it said nothing."""

    def __init__(self, page) -> None:
        self.page, self.seen, self.silent = page, [], 0.0

    def start(self) -> None:
        self.page.evaluate(
            f"""() => {{ const t0 = performance.now(); window.__statusLines = [];
                window.__statusTimer = setInterval(() => {{
                  const el = [...document.querySelectorAll('{STATUS}')]
                    .find((e) => !e.hidden && e.textContent.trim());
                  const text = el ? el.textContent.trim() : '';
                  const seen = window.__statusLines, at = (performance.now() - t0) / 1000;
                  if (!seen.length || seen[seen.length - 1][1] !== text) seen.push([at, text]);
                  window.__statusEnd = at;
                }}, 500); }}"""
        )

    def stop(self) -> None:
        seen, end = self.page.evaluate(
            "() => { clearInterval(window.__statusTimer);"
            " return [window.__statusLines, window.__statusEnd]; }"
        )
        self.seen = [[round(t, 1), text] for t, text in seen]
        ends = [t for t, _ in seen[1:]] + [end or 0.0]
        self.silent = round(sum(b - a for (a, text), b in zip(seen, ends) if not text), 1)


def table(rows: list[dict]) -> str:
    """The walk per image, as a markdown table."""
    head = (
        "| image | opened in | objects | shown on open | right 0.7 / 0.5 | clicks | waits (s) | right lost"
        " | accepted | deleted | drawn by hand |"
    )
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        waits = ", ".join(f"{c['wait_seconds']:.1f}" for c in r["clicks"]) or "-"
        lines.append(
            f"| {r['k'] + 1} {r['file']} | {r['opened_in']} | {r['objects']} | {r['shown_on_open']} | "
            f"{r['right_07']} / {r['right_05']} | {len(r['clicks'])} | {waits} | "
            f"{r['right_lost_on_click']} | "
            f"{r['accepted']} | {r['deleted_by_hand']} | {r['drawn_by_hand']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
