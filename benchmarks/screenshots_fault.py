"""What a person sees when the serving detector's file is torn on disk, in headless Chromium.

    python benchmarks/screenshots_fault.py --data ../shared/data/hit_uav --work DIR
        --out docs/benchmarks [--finished 3] [--part test]

Runs ``fewclick serve`` (SQLite in ``--work``), makes a project of ``--data`` with its
annotations as hidden reference, finishes ``--finished`` images of ``--part`` with their
reference boxes, starts the background trainer and waits for its first version. Then the
trainer is stopped, the server too, the version's checkpoint is cut to half its size (a disk
error, or a copy that died midway), and the server started again, so nothing holds the model
in memory. The next image is opened and clicked as in ``screenshots_trainer.py``
(``fault_<data>_open.png``, ``fault_<data>_click.png``: the panel says which model answered
and why), and the project page is shown (``fault_<data>_project.png``: the version marked
unreadable). Writes ``fault_<data>.json``: the stop's numbers, the detect answers'
``requested_version``, ``model_version`` and ``fallback``, and the project page's text.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from _browser import chromium_page, log_in
from _common import part_names
from _walk import finish, project_truth, reference_project, report_walk, wait_for_round, with_server
from screenshots_trainer import _look

USER, PASSWORD = "walker", "a checkpoint cut in half"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    seen = with_server(args.work / "app", args.data, lambda server: _walk(server, args))
    report_walk(seen, args.out / f"fault_{args.data.name}.json")
    return 0


def _walk(server, args) -> dict:
    api, project = reference_project(server, args.data, f"{args.data.name} torn", (USER, PASSWORD))
    pid = project["id"]
    truth, images, cls = project_truth(api, project, args.data)
    order = [images[n] for n in part_names(list(truth), args.part) if n in images and len(truth[n])]
    for image in order[: args.finished]:
        finish(api, image, truth[image["file_name"]], cls)
    api.post(f"/api/projects/{pid}/trainer", json={"action": "start"}).raise_for_status()
    round_ = wait_for_round(server.data, pid, args.finished, args.timeout)
    if round_ is None:
        raise SystemExit("the trainer made no version in time: nothing to tear")
    detector = _version(api, pid, args.timeout)
    api.post(f"/api/projects/{pid}/trainer", json={"action": "stop"}).raise_for_status()
    torn = server.data / "models" / str(pid) / detector["file"]
    server.stop()
    size = torn.stat().st_size
    with open(torn, "r+b") as f:
        f.truncate(size // 2)
    server.start()
    nxt = order[args.finished]
    with chromium_page((1400, 900)) as page:
        log_in(page, server.base, USER, PASSWORD)
        stop = _look(page, server, api, pid, nxt, truth[nxt["file_name"]], cls, args.finished, args)
        answer = page.evaluate("() => fewclickTest.detect.result")
        panel = page.inner_text("#boxes-from")
        page.goto(f"{server.base}/#/project/{pid}")
        page.wait_for_selector("#models")
        page.wait_for_timeout(500)
        page.screenshot(path=str(args.out / f"fault_{args.data.name}_project.png"), full_page=True)
        models = page.inner_text("#models")
    for kind in ("open", "click"):  # named for this walk
        made = args.out / f"trainer_{args.data.name}_{args.finished}_{kind}.png"
        made.replace(args.out / f"fault_{args.data.name}_{kind}.png")
    return {
        **stop,
        "torn_file": detector["file"],
        "bytes": [size, size // 2],
        "answer": {k: answer.get(k) for k in ("requested_version", "model_version", "method", "fallback")},
        "panel": panel,
        "project_page": models,
    }


def _version(api, pid: int, timeout: float) -> dict:
    """The serving detector once the trainer's round is registered as a version."""
    deadline = time.monotonic() + timeout
    while (detector := api.get(f"/api/projects/{pid}").json()["detector"]) is None:
        if time.monotonic() > deadline:
            raise SystemExit("the trainer's round was not registered as a version in time")
        time.sleep(5)
    return detector


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--work", required=True, type=Path, help="the app's folder (database, models, embeddings)")
    p.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    p.add_argument("--finished", type=int, default=3, help="images finished before the trainer starts")
    p.add_argument("--part", choices=["test", "train"], default="test")
    p.add_argument("--timeout", type=float, default=2400, help="seconds to wait for the trainer's version")
    return p


if __name__ == "__main__":
    sys.exit(main())
