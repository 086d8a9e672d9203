"""The page's outline, run in node: its fill (``static/js/outline_fill.js``) makes the very
mask :func:`fewclick.outline.fill_outline` makes of the same rings, its counts are the COCO
RLE of that mask, and its edits (``static/js/modes/outline_edit.js``) refuse what would
spoil the outline."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from fewclick.outline import editable_outline, fill_outline, outline_problem

NODE = shutil.which("node")
JS = Path(__file__).resolve().parents[2] / "src" / "fewclick" / "server" / "static" / "js"
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

# Imports a module (from a data: URL: node needs no package.json) and calls, for each
# [function, args] read from stdin, module[function](...args); typed arrays come back as lists.
DRIVER = """
const fs = require("fs");
const source = fs.readFileSync(process.argv[1], "utf8");
import("data:text/javascript," + encodeURIComponent(source)).then((mod) => {
  const out = JSON.parse(fs.readFileSync(0, "utf8")).map(([fn, args]) => {
    const got = mod[fn](...args);
    return ArrayBuffer.isView(got) ? Array.from(got) : got;
  });
  process.stdout.write(JSON.stringify(out));
});
"""


def _run(module: str, calls: list) -> list:
    run = subprocess.run(
        [NODE, "-e", DRIVER, str(JS / module)],
        input=json.dumps(calls),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def _js_rings(rings) -> list[dict]:
    return [{"points": np.asarray(r, float).tolist(), "hole": bool(h)} for r, h in rings]


def _cases(rng) -> list[tuple[list, int, int]]:
    """Outlines of random masks (as the server sends them) and random rings of any shape
    (crossing themselves, off the image, vertices on pixel centres and edges)."""
    cases = []
    for _ in range(12):
        h, w = (int(v) for v in rng.integers(4, 40, 2))
        mask = rng.random((h, w)) < rng.uniform(0.2, 0.8)
        cases.append((editable_outline(mask), h, w))
    for _ in range(24):
        h, w = (int(v) for v in rng.integers(4, 40, 2))
        rings = []
        for _ in range(int(rng.integers(1, 4))):
            k = int(rng.integers(3, 9))
            points = rng.uniform(-3, max(h, w) + 3, (k, 2))
            if rng.random() < 0.5:  # on the half-pixel grid: centres and edges, the ties
                points = np.round(points * 2) / 2
            rings.append((points, bool(rng.random() < 0.3)))
        cases.append((rings, h, w))
    return cases


def test_the_page_fills_an_outline_to_the_simulator_s_mask(rng):
    cases = _cases(rng)
    calls = []
    for rings, h, w in cases:
        windows = _run("outline_fill.js", [["ringsWindow", [_js_rings(rings), w, h]]])[0]
        calls.append(["fillRings", [_js_rings(rings), 0, 0, w, h, w, h]])
        x0, y0, x1, y1 = windows
        calls.append(["fillRings", [_js_rings(rings), x0, y0, max(x1 - x0, 0), max(y1 - y0, 0), w, h]])
    got = _run("outline_fill.js", calls)
    for k, (rings, h, w) in enumerate(cases):
        want = fill_outline(rings, h, w)
        np.testing.assert_array_equal(np.array(got[2 * k], bool).reshape(h, w), want)
        x0, y0, x1, y1 = _run("outline_fill.js", [["ringsWindow", [_js_rings(rings), w, h]]])[0]
        window = np.zeros((h, w), bool)
        window[y0:y1, x0:x1] = np.array(got[2 * k + 1], bool).reshape(max(y1 - y0, 0), max(x1 - x0, 0))
        np.testing.assert_array_equal(window, want, err_msg="the window holds every pixel filled")


@pytest.mark.parametrize(("h", "w"), [(9, 7), (1, 1), (5, 12)])
def test_the_counts_are_the_coco_rle_of_the_window_s_mask(rng, h, w):
    calls, masks = [], []
    windows = [(0, 0, w, h), (1, 0, w - 1, h), (0, 1, w, h - 1), (1, 1, max(w - 2, 0), max(h - 2, 0))]
    for x0, y0, ww, hh in windows:
        for density in (0.0, 0.5, 1.0):
            win = rng.random((hh, ww)) < density
            mask = np.zeros((h, w), bool)
            mask[y0 : y0 + hh, x0 : x0 + ww] = win
            calls.append(["maskCounts", [win.astype(int).ravel().tolist(), x0, y0, ww, hh, w, h]])
            masks.append(mask)
    for counts, mask in zip(_run("outline_fill.js", calls), masks, strict=True):
        assert sum(counts) == h * w and min(counts) >= 0
        rle = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
        np.testing.assert_array_equal(mask_utils.decode(rle).astype(bool), mask)


SQUARE = [{"points": [[10, 10], [30, 10], [30, 30], [10, 30]], "hole": False}]
HOLED = [*SQUARE, {"points": [[15, 15], [25, 15], [25, 25], [15, 25]], "hole": True}]
TRIANGLE = [{"points": [[0, 0], [5, 0], [0, 5]], "hole": False}]
W, H = 40, 40


@pytest.mark.parametrize(
    ("call", "answer"),
    [
        (["moveVertex", [SQUARE, 0, 2, 32, 33, W, H]], [[10, 10], [30, 10], [32, 33], [10, 30]]),
        (["insertVertex", [SQUARE, 0, 1, 30, 20, W, H]], [[10, 10], [30, 10], [30, 20], [30, 30], [10, 30]]),
        (
            ["deleteVertex", [[{**SQUARE[0], "points": [*SQUARE[0]["points"], [5, 20]]}], 0, 4, W, H]],
            SQUARE[0]["points"],
        ),
        # the shorter stretch from vertex 0 to vertex 1 (the top edge) is the one redrawn
        (
            ["redrawStretch", [SQUARE, 0, 0, 1, [[15, 5], [25, 5]], W, H]],
            [[30, 10], [30, 30], [10, 30], [10, 10], [15, 5], [25, 5]],
        ),
        # drawn the other way round (from 1 to 0): the same ring
        (
            ["redrawStretch", [SQUARE, 0, 1, 0, [[25, 5], [15, 5]], W, H]],
            [[30, 10], [30, 30], [10, 30], [10, 10], [15, 5], [25, 5]],
        ),
        (["moveVertex", [SQUARE, 0, 2, 20, 5, W, H]], "cross itself"),
        (["moveVertex", [SQUARE, 0, 2, 41, 30, W, H]], "leave the 40 x 40 image at (41.0, 30.0)"),
        (["deleteVertex", [TRIANGLE, 0, 1, W, H]], "at least 3 vertices"),
        (["moveVertex", [HOLED, 1, 2, 35, 35, W, H]], "cross its other part"),
        (["moveVertex", [HOLED, 0, 2, 20, 20, W, H]], "cross its hole"),
        (["redrawStretch", [SQUARE, 0, 0, 0, [], W, H]], "another vertex"),
        (["moveVertex", [TRIANGLE, 0, 1, 0, 0, W, H]], "would have 2"),  # dropped on its neighbour
        (["moveVertex", [SQUARE, 0, 2, 30, 10, W, H]], [[10, 10], [30, 10], [10, 30]]),
        (["moveVertex", [SQUARE, 0, 3, 20, 10, W, H]], "cross itself"),  # onto an edge: a pinch
    ],
)
def test_an_edit_answers_the_new_ring_or_the_problem(call, answer):
    (got,) = _run("modes/outline_edit.js", [call])
    if isinstance(answer, str):
        assert answer in got["problem"]
    else:
        ring = call[1][1]
        assert got["rings"][ring]["points"] == answer
        assert outline_problem([(np.array(r["points"], float), r["hole"]) for r in got["rings"]], H, W) == ""


def test_a_fold_back_is_a_crossing_and_a_straight_run_is_not():
    folded = [
        "moveVertex",
        [[{"points": [[10, 10], [30, 10], [20, 10.0001], [10, 30]], "hole": False}], 0, 2, 20, 10, W, H],
    ]
    straight = ["insertVertex", [SQUARE, 0, 0, 20, 10, W, H]]
    got = _run("modes/outline_edit.js", [folded, straight])
    assert "cross itself" in got[0]["problem"]
    assert got[1]["rings"][0]["points"] == [[10, 10], [20, 10], [30, 10], [30, 30], [10, 30]]
