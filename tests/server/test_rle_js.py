"""The browser's RLE decoder (``static/js/rle.js``, an ES module) run in node with a stand-in canvas: it
draws what pycocotools decodes, and refuses an RLE whose runs do not add up to its size
(or whose size is huge) at once, instead of freezing the page."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fewclick.io.rle import mask_to_rle, rle_boxes, rle_counts

NODE = shutil.which("node")
RLE_JS = Path(__file__).resolve().parents[2] / "src" / "fewclick" / "server" / "static" / "js" / "rle.js"
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

# Imports rle.js as an ES module (from a data: URL, so that node needs no package.json saying
# "module") with a canvas stand-in; for each [rle, box] read from stdin, answers the
# milliseconds taken, the error, the drawn alpha channel as rows of 0/1 and the area (rleArea,
# or its error).
DRIVER = """
const fs = require("fs");
function canvas() {
  const c = {width: 0, height: 0, getContext: () => ({
    createImageData: (w, h) => ({data: new Uint8ClampedArray(w * h * 4), width: w, height: h}),
    putImageData: (img) => { c.img = img; },
  })};
  return c;
}
globalThis.document = {createElement: canvas};
console.warn = () => {};
const source = fs.readFileSync(process.argv[1], "utf8");
import("data:text/javascript," + encodeURIComponent(source)).then((rle) => {
  const out = JSON.parse(fs.readFileSync(0, "utf8")).map(([r, box]) => {
    const start = performance.now();
    const m = rle.rleCanvas(r, box, "#ff0000", 1);
    const ms = performance.now() - start;
    const {width, height, img} = m.canvas;
    const rows = [];
    for (let y = 0; img && y < height; y++) {
      rows.push(Array.from({length: width}, (_, x) => (img.data[(y * width + x) * 4 + 3] ? 1 : 0)));
    }
    let area = null;
    try { area = rle.rleArea(r); } catch (e) { area = String(e.message); }
    return {ms, error: m.error ?? null, x: m.x, y: m.y, rows, area};
  });
  process.stdout.write(JSON.stringify(out));
});
"""


def _draw(cases: list) -> list[dict]:
    run = subprocess.run(
        [NODE, "-e", DRIVER, str(RLE_JS)], input=json.dumps(cases), capture_output=True, text=True, timeout=20
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_masks_are_drawn_as_pycocotools_decodes_them(rng):
    cases, masks = [], []
    for h, w in [(1, 1), (7, 5), (40, 64), (33, 17)]:
        mask = rng.random((h, w)) < 0.4
        mask[h // 2, w // 2] = True
        rle = mask_to_rle(mask)
        box = rle_boxes([rle])[0].tolist()
        cases += [[rle, box], [{"size": rle["size"], "counts": rle_counts(rle["counts"])}, box]]
        masks += [mask, mask]
    for got, mask, (_, box) in zip(_draw(cases), masks, cases, strict=True):
        x0, y0, x1, y1 = (int(v) for v in box)
        assert got["error"] is None and (got["x"], got["y"]) == (x0, y0)
        assert got["area"] == int(mask.sum())
        np.testing.assert_array_equal(np.array(got["rows"], bool), mask[y0:y1, x0:x1])


@pytest.mark.parametrize(
    "rle, message",
    [
        ({"size": [20000, 20000], "counts": "0ooooo?"}, "add up to"),  # 7 bytes, a run of ~2**29 on: minutes
        ({"size": [100000, 100000], "counts": "0"}, "over 4294967295 pixels"),
        ({"size": [40, 64], "counts": "ooooooooooo?"}, "over 35 bits"),
        ({"size": [40, 64], "counts": "!!!!"}, "outside '0' to 'o'"),
        ({"size": [40, 64], "counts": "P"}, "middle of a number"),
        ({"size": [40, 64], "counts": [100, -5, 2465]}, "not a whole number >= 0"),
        ({"size": [40, 64], "counts": [100, 5]}, "add up to 105 pixels, not 40 x 64"),
        ({"size": "ab", "counts": [2560]}, "is not [height, width]"),
        ({"size": [40, 64], "counts": 7}, "neither a string nor a list"),
    ],
)
def test_a_malformed_or_huge_rle_is_refused_at_once(rle, message):
    (got,) = _draw([[rle, [0, 0, 89140944, 40]]])
    assert got["error"] is not None and message in got["error"]
    assert got["ms"] < 50 and got["rows"] == [], "nothing drawn, no work done"


def test_a_mask_whose_box_is_too_large_to_draw_is_refused():
    rle = {"size": [10000, 10000], "counts": [0, 10000 * 10000]}
    (got,) = _draw([[rle, [0, 0, 10000, 10000]]])
    assert "too large to draw" in got["error"] and got["ms"] < 50


def test_a_slide_s_mask_is_drawn_though_its_runs_pass_2_to_the_30():
    """A 40000 x 30000 slide: a nucleus near its right edge starts 1.14 billion pixels in,
    a number 32-bit bit operations would overflow."""
    from fewclick.io.rle import window_to_rle

    window = np.zeros((384, 384), bool)
    window[150:180, 160:190] = True
    rle = window_to_rle(window, (38000, 20000), 30000, 40000)
    box = rle_boxes([rle])[0].tolist()
    (got,) = _draw([[rle, box]])
    assert got["error"] is None and (got["x"], got["y"]) == (38160, 20150)
    assert np.array(got["rows"], bool).all() and np.array(got["rows"]).shape == (30, 30)
