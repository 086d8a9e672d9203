"""Box-to-mask zoomed in on small objects of a small image: which boxes get a window, and
prompts and masks moved into it and back (with a stand-in SAM that fills the box it is
given, so where the mask lands shows where the prompt went)."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fewclick.predict.encoder import Embedding
from fewclick.predict.segment_api import MaskPrediction
from fewclick.predict.windows import mask_window
from fewclick.predict.zoom import ZOOM_BELOW, ZOOM_SIDE, ZoomedSam, zoom_window
from fewclick.types import Clicks


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_small_box_gets_a_window_that_holds_it_and_a_large_one_the_whole_image(data):
    width, height = data.draw(st.integers(300, 3000)), data.draw(st.integers(300, 3000))
    w, h = data.draw(st.floats(2, 250)), data.draw(st.floats(2, 250))
    x0 = data.draw(st.floats(0, width - w - 0.01))
    y0 = data.draw(st.floats(0, height - h - 0.01))
    box = [x0, y0, x0 + w, y0 + h]
    window = zoom_window(box, width, height)
    if math.sqrt(w * h) >= ZOOM_BELOW:
        assert window is None
        return
    if window is None:  # only when the window would be the whole image
        assert mask_window(box, width, height, ZOOM_SIDE).size == (height, width)
        return
    assert window.x0 <= x0 and window.y0 <= y0 and x0 + w <= window.x1 and y0 + h <= window.y1
    wh, ww = window.size
    assert min(ZOOM_SIDE, height) <= wh <= height and min(ZOOM_SIDE, width) <= ww <= width
    assert (wh, ww) != (height, width), "a window as large as the image is no zoom"
    assert window.scale == 1.0, "read at full resolution: the encoder magnifies it"


def test_no_box_or_a_small_image_keeps_the_whole_image():
    assert zoom_window(None, 800, 600) is None, "a click start has no box to zoom on"
    assert zoom_window([10, 10, 30, 30], 256, 256) is None, "the window would be the whole image"
    assert zoom_window([10, 10, 30, 30], 200, 900) is not None, "a tall image zooms along its height"


class _Encoder:
    path = "stand-in"

    def __init__(self):
        self.keys = []

    def encode(self, pixels, key=None):
        self.keys.append(key)
        h, w = pixels.shape[:2]
        return Embedding(np.zeros((1, 1, 1, 1), np.float32), (h, w), (h, w), 1.0)


class _Sam:
    """Fills the box it is given (in the frame of the embedding it holds)."""

    def __init__(self):
        self.encoder, self.embedding, self.previous = _Encoder(), None, []

    def set_embedding(self, embedding):
        self.embedding = embedding

    def predict(self, box, clicks=None, previous=None, **options):
        self.previous.append(previous)
        mask = np.zeros(self.embedding.image_size, bool)
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        mask[y0:y1, x0:x1] = True
        if clicks is not None and len(clicks):
            x, y = clicks.xy[-1]
            mask[int(y), int(x)] = True
        return MaskPrediction(mask, 1.0, state=np.zeros(1))


def _image():
    return np.random.default_rng(0).integers(0, 255, (600, 800, 3), np.uint8)


def test_a_small_box_s_mask_comes_back_where_the_box_is_from_its_window():
    sam = _Sam()
    zoomed = ZoomedSam(sam)
    zoomed.set_image(_image(), key="img")
    pred = zoomed.predict([400, 300, 420, 330])
    assert sam.embedding.image_size != (600, 800), "prompted on a window, not the whole image"
    assert any(k and k.startswith("img@") for k in sam.encoder.keys), "the window kept under its own key"
    assert pred.mask.shape == (600, 800) and pred.offset is None
    ys, xs = np.nonzero(pred.mask)
    assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (400, 300, 420, 330)
    clicked = zoomed.predict([400, 300, 420, 330], Clicks(np.float32([[430, 340]]), [0], [True]), pred.state)
    assert clicked.mask[340, 430], "the click moved into the window and back"
    assert sam.previous[-1] is pred.state, "the window's state goes back with the next click"


def test_a_click_outside_the_window_and_a_large_box_use_the_whole_image():
    sam = _Sam()
    zoomed = ZoomedSam(sam)
    zoomed.set_image(_image(), key="img")
    pred = zoomed.predict([400, 300, 420, 330])
    far = zoomed.predict([400, 300, 420, 330], Clicks(np.float32([[10, 10]]), [0], [True]), pred.state)
    assert sam.embedding.image_size == (600, 800) and far.mask[10, 10]
    assert sam.previous[-1] is None, "a window's state does not go to the whole image"
    large = zoomed.predict([100, 100, 300, 300])
    assert sam.embedding.image_size == (600, 800) and large.mask[100:300, 100:300].all()
    window = ZoomedSam(sam, full=False)
    window.set_image(_image(), key="img")
    part = window.predict([400, 300, 420, 330])
    assert part.offset is not None and part.mask.shape != (600, 800), (
        "the app's answer: the window and its offset"
    )
