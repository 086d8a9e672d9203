"""A zoom window's encoding in the worker: a request never waits for it past ZOOM_WAIT, one
encoding per window is under way however many requests ask, and a failed one is started
again by the next request (a stand-in encoder that the test lets finish)."""

import threading

import numpy as np

from fewclick.server import worker_zoom


class _Encoder:
    def __init__(self, fail: bool = False):
        self.release, self.calls, self.fail, self.store = threading.Event(), 0, fail, {}

    def cached(self, key):
        return self.store.get(key)

    def encode(self, pixels, key):
        self.calls += 1
        self.release.wait(30)
        if self.fail:
            self.fail = False
            raise RuntimeError("the encoder broke")
        self.store[key] = "embedding"
        return "embedding"


def test_a_window_in_the_making_is_not_waited_for_and_is_encoded_once():
    enc, crop = _Encoder(), np.zeros((8, 8, 3), np.uint8)
    assert worker_zoom._ready(enc, "w1", crop) is False, "the whole image serves meanwhile"
    assert worker_zoom._ready(enc, "w1", crop) is False
    enc.release.set()
    worker_zoom._RUNNING["w1"].result(30)
    assert worker_zoom._ready(enc, "w1", crop) is True
    assert enc.calls == 1, "asked three times, encoded once"
    assert "w1" not in worker_zoom._RUNNING, "a finished encoding leaves the running ones"


def test_a_failed_window_encoding_is_started_again_by_the_next_request():
    enc, crop = _Encoder(fail=True), np.zeros((8, 8, 3), np.uint8)
    enc.release.set()
    worker_zoom._ready(enc, "w2", crop)
    failed = worker_zoom._RUNNING["w2"]
    assert failed.exception(30) is not None, "the first encoding failed"
    worker_zoom._ready(enc, "w2", crop)  # a failed one is started again
    again = worker_zoom._RUNNING.get("w2")
    if again is not None:  # (still under way: it leaves the running ones when done)
        again.result(30)
    assert worker_zoom._ready(enc, "w2", crop) is True, "started again, and it worked"
    assert enc.calls == 2
