"""Detect mode's panel, run in node (issue 67): every state it can be in has one status line,
and no text of the panel contradicts it or the boxes the page shows: the count it says is
the count shown (never the server's own), "Nothing like" never beside shown boxes, and a
project with no finished image is never told of what its finished images gave."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

NODE = shutil.which("node")
JS = Path(__file__).resolve().parents[2] / "src" / "fewclick" / "server" / "static" / "js"
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

# Imports modes/detect.js from its file (its imports are relative: no data: URL; node runs the
# driver and the modules as ES modules) and, for each
# {state, doc} read from stdin (Sets and Maps as lists), answers the panel's texts and the
# proposals the page shows.
DRIVER = """
import * as fs from "node:fs";
import(process.argv[1]).then((mod) => {
  const out = JSON.parse(fs.readFileSync(0, "utf8")).map(({state, doc}) => {
    const s = {...state, replaced: new Set(state.replaced ?? [])};
    const byId = (rows) => new Map(rows.map((row) => [row.id, row]));
    const d = {...doc, anns: byId(doc.anns), classes: byId(doc.classes)};
    return {texts: mod.panelTexts(s, d), shown: mod.shownProposals(s)};
  });
  process.stdout.write(JSON.stringify(out));
});
"""

CLASSES = [{"id": 1, "name": "RBC"}, {"id": 2, "name": "WBC"}]
READY = {"ready": True, "needs_sam": True, "backend": "sam", "chosen_by": "measured", "proposals": "ready"}
MAKING = {**READY, "proposals": "making", "proposals_done": 3, "proposals_windows": 6}


def _project(finished: int = 0, detector: dict | None = None) -> dict:
    return {"id": 1, "by_status": {"new": 5, "done": finished}, "detector": detector}


def _doc(prep=READY, finished: int = 0, detector=None, saved: int = 0, tiles=None) -> dict:
    anns = [{"id": k, "class_id": 1, "geometry": {"box": [0, 0, 1, 1]}} for k in range(saved)]
    image = {"id": 7, "tiles": tiles}
    return {
        "project": _project(finished, detector),
        "prep": prep,
        "image": image,
        "anns": anns,
        "classes": CLASSES,
    }


def _state(result=None, clicks=0, **more) -> dict:
    return {
        "clicks": [[10 + k, 10, 1] for k in range(clicks)], "result": result, "replaced": [],
        "drawn": [], "fitted": [], "rejected": [], "minScore": 0.3, "minScoreByHand": False, **more,
    }  # fmt: skip


def _look_alikes(scores, made=37, exemplars=13, said_shown=0, state="ready", min_scores=None) -> dict:
    """An answer from the image's SAM proposals; ``said_shown`` is the server's own count,
    which the page must not repeat (it differed from what the page showed)."""
    n = len(scores)
    return {
        "method": "look-alikes" if state == "ready" else "training-free", "model_version": None,
        "boxes": [[10 * k, 0, 10 * k + 8, 8] for k in range(n)], "scores": scores, "labels": [1] * n,
        "rboxes": None, "min_score": None, "min_scores": min_scores or {}, "fitted_classes": [],
        "proposals": {
            "state": state, "made": made, "shown": said_shown, "unboxed": [], "threshold": 0.5,
            "exemplars": exemplars, "exemplar_boxes": [],
        },
    }  # fmt: skip


def _detector(scores, version=2) -> dict:
    n = len(scores)
    return {
        "method": "pretrained", "model_version": version, "min_score": 0.45, "min_scores": {},
        "boxes": [[10 * k, 0, 10 * k + 8, 8] for k in range(n)], "scores": scores, "labels": [1] * n,
        "rboxes": None, "fitted_classes": [], "tight_classes": [],
    }  # fmt: skip


SERVED = {"version": 2, "method": "pretrained"}
SWEEP = {
    "status": "running",
    "windows_done": 4,
    "windows": 12,
    "boxes": [[0, 0, 8, 8]],
    "scores": [0.9],
    "seconds": 3.0,
}

# (state name, detect state, doc, what its status line says)
STATES = [
    ("asked", _state(), _doc(prep=None), "preparing image..."),
    ("encoding", _state(), _doc(prep={**READY, "ready": False, "proposals": "making"}), "SAM encodes it"),
    (
        "finding, windows not counted",
        _state(),
        _doc(prep={**READY, "proposals": "making"}),
        "finding objects; a click",
    ),
    ("finding", _state(), _doc(prep=MAKING), "finding objects: 3 of 6 windows; a click meanwhile"),
    (
        "finding, to open with",
        _state(),
        _doc(prep=MAKING, finished=2),
        "3 of 6 windows; those like your finished",
    ),
    (
        "cannot prepare",
        _state(),
        _doc(prep={"failed": "no such file"}),
        "cannot prepare this image (no such file)",
    ),
    (
        "no proposals",
        _state(),
        _doc(prep={**READY, "proposals": "MemoryError: "}),
        "no proposals for this image",
    ),
    ("ready, none finished", _state(), _doc(), "nothing shows on open before an image is finished"),
    ("ready, saved objects", _state(), _doc(finished=2, saved=3), "this image has saved objects"),
    (
        "ready, large",
        _state(),
        _doc(prep={**READY, "proposals": None}, tiles={"size": 512}),
        "the windows around",
    ),
    (
        "asking on open",
        _state(asking=True),
        _doc(finished=2),
        "asking for the proposals this image opens with",
    ),
    (
        "asking, click",
        _state(clicks=1, asking=True),
        _doc(prep=MAKING),
        "boxing your 1 click... (the proposals: 3 of 6",
    ),
    ("failed", _state(clicks=1, error="503: the worker is busy"), _doc(), "the last answer failed (503"),
    (
        "on open, server said none",
        _state(_look_alikes([0.9, 0.8, 0.7, 0.6, 0.2], said_shown=0)),
        _doc(finished=2),
        "4 proposals shown on open, like 13 objects of your 2 finished images",
    ),
    (
        "on open, below the slider",
        _state(_look_alikes([0.2, 0.1], exemplars=0), minScoreByHand=True),
        _doc(finished=2),
        "nothing shown at score >= 0.30 (2 below it)",
    ),
    ("on open, nothing", _state(_look_alikes([], exemplars=2)), _doc(finished=2), "nothing found on open"),
    (
        "after clicks",
        _state(_look_alikes([1.0, 1.0, 0.9, 0.6, 0.1], said_shown=7), clicks=2),
        _doc(finished=1),
        "4 proposals shown after your 2 clicks, 2 look-alikes among them",
    ),
    (
        "after clicks, none finished",
        _state(_look_alikes([1.0, 0.9, 0.8], exemplars=0), clicks=1),
        _doc(),
        "3 proposals shown after your 1 click, 2 look-alikes among them",
    ),
    (
        "click before the proposals",
        _state(_look_alikes([1.0], state="making"), clicks=1),
        _doc(prep=MAKING),
        "your click is boxed by SAM alone; look-alikes come when the proposals are ready (3 of 6 windows)",
    ),
    (
        "sweep",
        _state(_look_alikes([0.9, 0.8]), clicks=0, sweep=SWEEP),
        _doc(prep={**READY, "proposals": None}, tiles={"size": 512}, finished=3),
        "2 proposals shown; looking over the rest of the image: 4 of 12 windows",
    ),
    (
        "after a click, nothing like it",
        _state(_look_alikes([1.0, 0.2, 0.1], exemplars=0), clicks=1),
        _doc(),
        "1 proposal shown after your 1 click, no look-alike above the slider (2 below it)",
    ),
    (
        "detector on open",
        _state(_detector([0.9, 0.5, 0.2])),
        _doc(detector=SERVED, finished=5),
        "2 proposals shown on open, found by detector v2",
    ),
    (
        "detector after a click",
        _state(_detector([1.0, 0.9, 0.5, 0.2]), clicks=1),
        _doc(detector=SERVED, finished=5),
        "3 proposals shown after your 1 click:",
    ),
]


@pytest.fixture(scope="module")
def rendered() -> dict:
    cases = [{"state": state, "doc": doc} for _, state, doc, _ in STATES]
    run = subprocess.run(
        [NODE, "--experimental-default-type=module", "-e", DRIVER, (JS / "modes" / "detect.js").as_uri()],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    return {name: got for (name, *_), got in zip(STATES, json.loads(run.stdout))}


@pytest.mark.parametrize(("name", "state", "doc", "says"), STATES, ids=[s[0] for s in STATES])
def test_each_state_has_one_status_line_that_says_what_it_is(rendered, name, state, doc, says):
    status = rendered[name]["texts"]["status"]
    assert says in status
    assert status and "\n" not in status and len(status) < 200, status


@pytest.mark.parametrize(("name", "state", "doc", "says"), STATES, ids=[s[0] for s in STATES])
def test_no_text_of_the_panel_contradicts_the_status_line_or_the_boxes_shown(
    rendered, name, state, doc, says
):
    texts, shown = rendered[name]["texts"], rendered[name]["shown"]
    status, details = texts["status"], [t for k, t in texts.items() if k != "status"]
    counted = re.search(r"(\d+) proposals? (shown|waiting)", status)
    if state["result"] is not None and counted:
        assert int(counted.group(1)) == len(shown), "the count said is the count the page shows"
    alike = re.search(r"(\d+) look-alikes? among them", status)
    if alike:
        scores = state["result"]["scores"]
        assert int(alike.group(1)) == sum(scores[i] < 1 for i in shown)
    everything = " ".join([status, *details])
    if shown:
        assert not re.search(r"nothing (like|shown|found)", everything, re.IGNORECASE), everything
    for text in details:
        assert not re.search(r"\d+ (proposals|look-alikes?|boxes) (shown|among)", text), (
            f"a second count: {text}"
        )
    assert not re.search(r"from \d+ of them", everything), "the finished images are not counted twice"
    finished = doc["project"]["by_status"]["done"]
    if finished == 0:
        assert not re.search(r"of your (\d+ )?finished images|on your finished images", everything), (
            everything
        )
