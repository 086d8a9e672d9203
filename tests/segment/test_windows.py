"""Box-to-mask on windows of a large image: where a window lies, and prompts and masks moved
in and out of it."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fewclick.io.rle import rle_window, window_to_rle
from fewclick.predict.segment_api import MaskPrediction
from fewclick.predict.windows import (
    CONTEXT,
    DETECT_SIDE,
    DETECT_STEP,
    GRID,
    MAX_BOX_SIDE,
    MIN_SIDE,
    WINDOW,
    WindowedMasks,
    detect_window,
    mask_window,
)
from fewclick.types import Clicks


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_window_holds_its_box_with_context_at_full_resolution_for_small_boxes(data):
    width, height = data.draw(st.integers(300, 40000)), data.draw(st.integers(300, 30000))
    # a hair under the largest side: x0 + w - x0 may come out a float step over w
    w = data.draw(st.floats(2, min(width, MAX_BOX_SIDE) - 1e-6))
    h = data.draw(st.floats(2, min(height, MAX_BOX_SIDE) - 1e-6))
    x0, y0 = data.draw(st.floats(0, width - w)), data.draw(st.floats(0, height - h))
    box = [x0, y0, min(x0 + w, width), min(y0 + h, height)]
    win = mask_window(box, width, height)
    side = max(MIN_SIDE, CONTEXT * max(w, h))
    assert 0 <= win.x0 <= box[0] and box[2] <= win.x1 <= width
    assert 0 <= win.y0 <= box[1] and box[3] <= win.y1 <= height
    for lo, hi, start, end, extent in (
        (box[0], box[2], win.x0, win.x1, width),
        (box[1], box[3], win.y0, win.y1, height),
    ):
        if extent >= side + GRID:  # room for the whole window: context either side, unless at the edge
            assert end - start >= side - GRID
            assert lo - start >= min(side / GRID - 1, lo) - 1e-6
            assert end - hi >= min(side / GRID - 1, extent - hi) - 1e-6
    longest = max(box[2] - box[0], box[3] - box[1])
    if longest <= WINDOW / CONTEXT:
        assert win.scale == 1.0, "a small object's window is read at full resolution"
    else:  # read at the scale that makes the whole window WINDOW px
        assert WINDOW / (CONTEXT * longest + GRID) <= win.scale <= WINDOW / (CONTEXT * longest)


def test_neighbouring_boxes_share_a_window():
    a = mask_window([5000, 5000, 5040, 5030], 16000, 16000)
    b = mask_window([5010, 5005, 5050, 5035], 16000, 16000)
    assert a == b and a.scale == 1.0 and a.size == (MIN_SIDE, MIN_SIDE)


def test_a_window_holds_clicks_inside_it_and_none_on_or_past_its_far_edges():
    window = mask_window([5000, 5000, 5040, 5030], 16000, 16000)
    x0, y0, x1, y1 = window.x0, window.y0, window.x1, window.y1
    inside = Clicks(np.array([[x0, y0], [x1 - 0.5, y1 - 0.5]], np.float32), [0, 1], [True, False])
    assert window.holds(inside) and window.holds(None)
    assert window.holds(Clicks(np.zeros((0, 2), np.float32), [], []))
    for x, y in ((x1, y0), (x0, y1), (x0 - 0.5, y0)):
        beyond = Clicks(np.array([[x0 + 1, y0 + 1], [x, y]], np.float32), [0, 1], [True, True])
        assert not window.holds(beyond), (x, y)


def test_a_least_side_can_be_asked_for():
    box = [5000, 5000, 5040, 5030]
    assert mask_window(box, 16000, 16000, min_side=1024).size == (1024, 1024)
    assert mask_window(box, 16000, 16000, min_side=64).size == (80, 80), "twice the box, on the grid"
    assert mask_window([0, 0, 1, 1], 100, 100, min_side=1, grid=16).size == (8, 8), (
        "a grid finer than a pixel"
    )
    centred = mask_window(box, 16000, 16000, grid=None)
    assert (centred.x0 + centred.x1, centred.y0 + centred.y1) == (box[0] + box[2], box[1] + box[3])


@pytest.mark.parametrize(
    "box, message",
    [
        ([0, 0, MAX_BOX_SIDE + 10, 20], f"takes boxes up to {MAX_BOX_SIDE} px"),
        ([-5, 0, 20, 20], "is not inside the 16000 x 16000 image"),
        ([10, 10, 10, 20], "is not inside"),
    ],
)
def test_a_box_a_window_cannot_hold_is_refused(box, message):
    with pytest.raises(ValueError, match=message):
        mask_window(box, 16000, 16000)


class _BoxBackend:
    """A backend of known behaviour: the mask is the box (in the pixels it was shown), the
    clicks it got are kept."""

    def __init__(self):
        self.shape = None
        self.shown = 0
        self.clicks = None

    def set_image(self, pixels):
        self.shape = pixels.shape[:2]
        self.shown += 1

    def predict(self, box, clicks=None, previous=None):
        mask = np.zeros(self.shape, bool)
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        mask[y0:y1, x0:x1] = True
        self.clicks = clicks
        return MaskPrediction(mask, 1.0)


def _windowed(width=16000, height=12000):
    backend = _BoxBackend()
    reads = []

    def read(window):
        reads.append(window)
        h, w = window.size
        return np.zeros((max(1, round(h * window.scale)), max(1, round(w * window.scale)), 3), np.uint8)

    masks = WindowedMasks(backend, lambda pixels, window, name: backend.set_image(pixels))
    masks.set_image("slide", width, height, read)
    return masks, backend, reads


def test_a_window_s_mask_comes_back_in_image_pixels_with_its_offset():
    masks, backend, reads = _windowed()
    box = [9000, 7000, 9064, 7035]
    clicks = Clicks(np.float32([[9030, 7020]]), np.zeros(1, np.int64), np.ones(1, bool))
    pred = masks.predict(box, clicks)
    win = reads[0]
    assert pred.offset == (win.x0, win.y0) and pred.mask.shape == win.size
    assert backend.clicks.xy.tolist() == [[9030 - win.x0, 7020 - win.y0]], "clicks move into the window"
    rle = window_to_rle(pred.mask, pred.offset, 12000, 16000)
    assert rle_window(rle, (8990, 6990, 9074, 7045))[10:-10, 10:-10].all()
    assert rle_window(rle, (8990, 6990, 9074, 7045)).sum() == 64 * 35
    masks.predict(box, clicks)
    assert backend.shown == 1 and len(reads) == 1, "the same box keeps its window"


def test_a_large_box_is_read_coarser_and_its_mask_scaled_back():
    masks, backend, reads = _windowed()
    box = [1000, 1000, 2000, 1500]  # 1000 px: a 2000 px window read at 1024 px
    pred = masks.predict(box)
    win = reads[0]
    assert win.scale < 0.6 and max(backend.shape) <= WINDOW
    assert pred.mask.shape == win.size
    inside = pred.mask[1000 - win.y0 : 1500 - win.y0, 1000 - win.x0 : 2000 - win.x0]
    assert inside.mean() > 0.99 and pred.mask.sum() == pytest.approx(1000 * 500, rel=0.01)


def test_a_click_outside_the_window_is_refused_by_name():
    masks, _, _ = _windowed()
    far = Clicks(np.float32([[15000, 11000]]), np.zeros(1, np.int64), np.ones(1, bool))
    with pytest.raises(ValueError, match=r"click 0 at \(15000, 11000\) is outside the window"):
        masks.predict([100, 100, 150, 150], far)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_click_s_detect_window_holds_it_a_quarter_window_from_the_sides(data):
    width, height = data.draw(st.integers(2049, 40000)), data.draw(st.integers(600, 30000))
    x, y = data.draw(st.floats(0, width - 0.01)), data.draw(st.floats(0, height - 0.01))
    x0, y0, x1, y1 = detect_window(x, y, width, height)
    assert (x1 - x0, y1 - y0) == (min(DETECT_SIDE, width), min(DETECT_SIDE, height))
    assert 0 <= x0 and x1 <= width and 0 <= y0 and y1 <= height
    assert x0 % DETECT_STEP == 0 or x1 == width
    for v, lo, hi, extent in ((x, x0, x1, width), (y, y0, y1, height)):
        quarter = DETECT_SIDE / 4
        assert v - lo >= min(quarter, v) - 1e-6 and hi - v >= min(quarter, extent - v) - 1e-6


def test_a_window_is_shown_again_when_a_shared_backend_was_given_another_image():
    backend, reads, holds = _BoxBackend(), [], {"window": None}

    def read(window):
        reads.append(window)
        return np.zeros((*window.size, 3), np.uint8)

    def show(pixels, window, name):
        backend.set_image(pixels)
        holds["window"] = window

    masks = WindowedMasks(backend, show, shown=lambda window, name: holds["window"] == window)
    masks.set_image("slide", 16000, 12000, read)
    box = [9000, 7000, 9064, 7035]
    masks.predict(box)
    masks.predict(box)
    assert len(reads) == 1, "still held: not read again"
    holds["window"] = None  # the shared backend was given a whole image meanwhile
    masks.predict(box)
    assert len(reads) == 2 and backend.shown == 2


def test_sweep_windows_cover_the_image_those_in_view_first():
    from fewclick.predict.windows import DETECT_SIDE, SWEEP_OVERLAP, sweep_windows

    width, height = 5000, 3000
    windows = sweep_windows(width, height, view=(4000, 2500, 4600, 2900))
    covered = np.zeros((height // 8, width // 8), bool)
    for x0, y0, x1, y1 in windows:
        assert x1 - x0 == y1 - y0 == DETECT_SIDE
        covered[y0 // 8 : y1 // 8, x0 // 8 : x1 // 8] = True
    assert covered.all(), "every pixel lies in a window"
    assert len(set(windows)) == len(windows)
    first = windows[0]
    assert first[0] < 4600 and 4000 < first[2] and first[1] < 2900 and 2500 < first[3], "one in view first"
    meets = [w[0] < 4600 and 4000 < w[2] and w[1] < 2900 and 2500 < w[3] for w in windows]
    assert meets == sorted(meets, reverse=True), "every window in view before the rest"
    xs = sorted({w[0] for w in windows})
    assert min(b - a for a, b in zip(xs, xs[1:])) <= DETECT_SIDE - SWEEP_OVERLAP, "they overlap"


def test_the_sweep_windows_cores_tile_the_image_once():
    from fewclick.predict.windows import sweep_cores

    width, height = 5000, 3000
    owners = np.zeros((height // 10, width // 10), np.int64)
    for (x0, y0, x1, y1), (cx0, cy0, cx1, cy1) in sweep_cores(width, height).items():
        assert x0 <= cx0 < cx1 <= x1 and y0 <= cy0 < cy1 <= y1, "a core lies in its window"
        ys, xs = np.mgrid[5:height:10, 5:width:10]
        owners += (xs >= cx0) & (xs < cx1) & (ys >= cy0) & (ys < cy1)
    assert (owners == 1).all(), "every point is owned by exactly one window"
