"""Detect mode's status line in each state a new user meets, on real images, in headless
Chromium (issue 67).

    python benchmarks/screenshots_status.py --data ../shared/data/bccd --work DIR
        [--out docs] [--report docs/benchmarks]

Runs ``fewclick serve`` (SQLite in ``--work``; stopped on SIGTERM, SIGINT or an error), makes
a project of ``--data`` with its annotations as hidden reference, and walks the images of its
test part (every 4th by name) as a new user does, one screenshot a state
(``app_status_<data>_<state>.png`` in ``--out``):

- the first image, nothing finished: ``preparing`` (asked), ``encoding`` (SAM encodes it,
  if the page is seen in it), ``finding`` (its proposals, k of n windows, k >= 1), a click
  on an object before they are made (``asking`` while the answer is under way, if the page
  is seen in it; ``sam_alone``: the clicked object's own box, the look-alikes to come),
  then ``after_click`` once the page asked again;
- the second, its proposals made ahead: ``ready`` (nothing shows on open before an image is
  finished), then a click whose answer the test makes fail (``failed``: the request is
  refused in the browser, as a server that went away);
- two images finished with their reference boxes, the next opened in Box mode:
  ``box_waiting`` (the proposals wait for D), then D: ``on_open``.

Writes ``status_<data>.json`` in ``--report``: each state's status line and the seconds from
the walk's start.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _browser import chromium_page, log_in, screen
from _common import part_names
from _walk import finish, project_truth, reference_project, with_server
from playwright.sync_api import TimeoutError as PlaywrightTimeout

USER, PASSWORD = "walker", "a walk through the images"
STATUS = "() => document.querySelector('#detect-status')?.textContent ?? ''"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    seen = with_server(args.work / "app", args.data, lambda server: _walk(server, args))
    path = args.report / f"status_{args.data.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(seen, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


def _walk(server, args) -> dict:
    api, project = reference_project(server, args.data, f"{args.data.name} status", (USER, PASSWORD))
    truth, images, cls = project_truth(api, project, args.data)
    order = [images[n] for n in part_names(list(truth), "test") if n in images and len(truth[n])]
    shots = Shots(args.out, args.data.name)
    with chromium_page((1400, 900)) as page:
        log_in(page, server.base, USER, PASSWORD)
        first, second, *rest = order
        _open(page, server.base, project["id"], first, "detect")
        shots.when(page, "preparing", "preparing image")
        shots.when(page, "encoding", "SAM encodes it", timeout=120, optional=True)
        shots.when(page, "finding", "finding objects: [1-9]")
        _click_centre(page, truth[first["file_name"]], cls)
        shots.when(page, "asking", "boxing your", timeout=5, optional=True)
        shots.when(page, "sam_alone", "boxed by SAM alone")
        shots.when(page, "after_click", "shown after your 1 click")
        page.keyboard.press("Escape")
        _open(page, server.base, project["id"], second, "detect")
        shots.when(page, "ready", "ready: ")
        page.route("**/api/images/*/detect", lambda route: route.abort("connectionrefused"))
        _click_centre(page, truth[second["file_name"]], cls)
        shots.when(page, "failed", "the last answer failed")
        page.unroute("**/api/images/*/detect")
        for image in (first, second):
            finish(api, image, truth[image["file_name"]], cls)
        _open(page, server.base, project["id"], rest[0], "box")
        page.wait_for_function(
            "() => document.querySelector('#waiting')?.textContent.includes('proposals waiting')",
            timeout=args.timeout * 1000,
        )
        shots.take(page, "box_waiting", page.inner_text("#waiting"))
        page.keyboard.press("d")
        shots.when(page, "on_open", "shown on open")
    return shots.seen


class Shots:
    """The screenshots of a walk, and what the status line said in each."""

    def __init__(self, out: Path, name: str) -> None:
        self.out, self.name, self.seen, self.opened = out, name, {}, time.monotonic()

    def when(self, page, state: str, says: str, timeout: float = 900, optional: bool = False) -> None:
        """A screenshot once the status line matches ``says`` (a JavaScript regular
        expression) within ``timeout`` seconds; an ``optional`` state the page went through
        too fast is noted, not waited for."""
        try:
            check = f"() => new RegExp({says!r}).test(({STATUS})())"
            page.wait_for_function(check, timeout=timeout * 1000, polling=50)
        except PlaywrightTimeout as err:
            if not optional:
                said = page.evaluate(STATUS)
                raise SystemExit(f"{state}: the status line never said {says!r}: {said!r}") from err
            self.seen[state] = {"status": None, "note": f"not seen within {timeout:g} s"}
            return
        self.take(page, state, page.evaluate(STATUS))

    def take(self, page, state: str, said: str) -> None:
        path = self.out / f"app_status_{self.name}_{state}.png"
        page.screenshot(path=str(path))
        self.seen[state] = {"status": said, "seconds": round(time.monotonic() - self.opened, 1)}
        print(f"{state}: {said}", flush=True)


def _open(page, base: str, pid: int, image: dict, mode: str) -> None:
    """Open ``image`` with ``mode`` kept as the project's last way of annotating in this tab."""
    page.evaluate(f"() => sessionStorage.setItem('fewclick.mode.{pid}', '{mode}')")
    page.goto(f"{base}/#/image/{image['id']}")
    page.wait_for_function(f"() => fewclickTest.ready && fewclickTest.image.id === {image['id']}")


def _click_centre(page, gt, cls: dict) -> None:
    """Pick the class of the image's largest object and click its centre."""
    area = (gt.boxes[:, 2] - gt.boxes[:, 0]) * (gt.boxes[:, 3] - gt.boxes[:, 1])
    j = int(area.argmax())
    page.click(f'[data-class="{cls[int(gt.labels[j])]}"]')
    x0, y0, x1, y1 = gt.boxes[j].tolist()
    page.mouse.click(*screen(page, (x0 + x1) / 2, (y0 + y1) / 2))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--work", required=True, type=Path, help="the app's folder (database, embeddings)")
    p.add_argument("--out", type=Path, default=Path("docs"), help="where the screenshots go")
    p.add_argument("--report", type=Path, default=Path("docs/benchmarks"), help="where the JSON goes")
    p.add_argument("--timeout", type=float, default=900, help="seconds to wait for proposals on open")
    return p


if __name__ == "__main__":
    sys.exit(main())
