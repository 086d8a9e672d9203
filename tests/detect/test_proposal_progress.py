"""How far an image's SAM proposals have got (issue 67): the maker says each window it has
done, the worker keeps it beside the thread that makes them, and the page's prepare reads
it, until the proposals are saved or their making failed. The proposals of the windows done
are kept too, for the page to show as they come (issue 69)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from tests.detect.test_proposals import _scene, _squares

from fewclick.predict.encoder import ImageEncoder
from fewclick.predict.local_decoder import LocalDecoder
from fewclick.predict.proposals import ProposalMaker, Proposals
from fewclick.server import embeddings, worker_proposals


def test_the_maker_says_each_window_done_and_makes_the_same_proposals(sam_files, tmp_path):
    encoder = ImageEncoder(sam_files[0], threads=2, cache_dir=tmp_path)
    maker = ProposalMaker(encoder, LocalDecoder(sam_files[1]), window=120, limit=16)
    image = _scene()[0][:120, :200]  # two windows of 120 px
    maker(image, key="scene")  # encoded: both runs below read the same cached windows
    said = []
    told = maker(image, key="scene", progress=lambda done, windows: said.append((done, windows)))
    windows = said[0][1]
    assert windows == 2
    assert said == [(k, windows) for k in range(windows + 1)], "counted first, then one a window"
    quiet = maker(image, key="scene")
    np.testing.assert_array_equal(told.boxes, quiet.boxes)
    np.testing.assert_array_equal(told.scores, quiet.scores)


def test_the_maker_hands_over_the_proposals_of_the_windows_done_before_the_last(sam_files, tmp_path):
    encoder = ImageEncoder(sam_files[0], threads=2, cache_dir=tmp_path)
    maker = ProposalMaker(encoder, LocalDecoder(sam_files[1]), window=120, limit=16)
    image = _scene()[0][:120, :200]  # two windows of 120 px: the first ends at x = 120
    so_far = []
    whole = maker(image, key="scene", each_window=so_far.append)
    (first,) = so_far  # after the first window; the last one's is the answer itself
    assert len(first) <= len(whole)
    assert (first.boxes[:, 2] <= 120).all(), "the first window's objects only"
    assert first.image_size == whole.image_size


class _SlowMaker:
    """A maker that reports its windows one at a time, each when the test lets it go on."""

    def __init__(self, windows: int, fails: bool = False) -> None:
        self.windows, self.fails = windows, fails
        self.go = threading.Semaphore(0)

    def __call__(self, image, key=None, progress=None, each_window=None):
        progress(0, self.windows)
        for done in range(1, self.windows + 1):
            self.go.acquire()
            if done < self.windows:
                each_window(_boxes(done, image.shape[:2]))
            progress(done, self.windows)
        if self.fails:
            raise RuntimeError("out of memory")
        return Proposals.empty(4, image.shape[:2])

    def click(self, image, x, y, key=None):  # a click meanwhile, on the request's thread
        return Proposals.empty(4, image.shape[:2])


def _boxes(n: int, size: tuple[int, int]) -> Proposals:
    """``n`` proposals: what the windows done so far hold."""
    empty = Proposals.empty(4, size)
    boxes = np.array([[i, 0, i + 4, 4] for i in range(n)], np.float32)
    vectors = np.eye(4, dtype=np.float32)[np.arange(n) % 4]
    masks = [(i, 0, np.ones((4, 4), bool)) for i in range(n)]
    return Proposals(boxes, np.ones(n, np.float32), vectors, masks, empty.background, size, 0)


def _until(check, seconds: float = 10):
    end = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < end, "not within 10 s"
        time.sleep(0.01)


@pytest.fixture
def slow(tmp_path, monkeypatch):
    """An image whose proposals a :class:`_SlowMaker` of 3 windows makes (no SAM)."""
    from PIL import Image as PILImage

    PILImage.new("RGB", (60, 40)).save(tmp_path / "one.png")
    made = _SlowMaker(3)
    monkeypatch.setattr(embeddings, "embedding", lambda folder, key, path: None)
    monkeypatch.setattr(worker_proposals, "maker", lambda folder: made)
    made.items = [("1-1-0", str(tmp_path / "one.png"))]
    made.folder = str(tmp_path)
    yield made
    for _ in range(made.windows):  # a test that stopped early leaves no thread waiting
        made.go.release()


def test_prepare_says_how_many_windows_are_done_until_the_proposals_are_saved(slow):
    first = worker_proposals.prepare_open(slow.folder, slow.items)
    assert first["proposals"] == "making"
    _until(lambda: worker_proposals.windows_done(slow.folder, "1-1-0") == (0, 3))
    assert worker_proposals.prepare_open(slow.folder, slow.items) == {
        "proposals": "making", "proposals_done": 0, "proposals_windows": 3, "proposals_partial": False,
    }  # fmt: skip
    slow.go.release()
    _until(lambda: worker_proposals.windows_done(slow.folder, "1-1-0") == (1, 3))
    assert worker_proposals.prepare_open(slow.folder, slow.items)["proposals_partial"] is True
    assert len(worker_proposals.partial(slow.folder, "1-1-0")) == 1, "the first window's proposals"
    # a click at this moment is answered on its own thread and leaves the count as it is
    worker_proposals.maker(slow.folder).click(np.zeros((40, 60, 3), np.uint8), 5, 5)
    assert worker_proposals.prepare_open(slow.folder, slow.items)["proposals_done"] == 1
    slow.go.release()
    slow.go.release()
    _until(lambda: worker_proposals.prepare_open(slow.folder, slow.items)["proposals"] == "ready")
    assert worker_proposals.prepare_open(slow.folder, slow.items) == {"proposals": "ready"}
    assert worker_proposals.windows_done(slow.folder, "1-1-0") is None
    assert worker_proposals.partial(slow.folder, "1-1-0") is None, "the whole image's are read now"


def test_a_making_that_fails_leaves_no_count_behind(slow):
    slow.fails = True
    worker_proposals.prepare_open(slow.folder, slow.items)
    for _ in range(3):
        slow.go.release()
    _until(lambda: not worker_proposals.making(slow.folder, "1-1-0"))
    assert worker_proposals.windows_done(slow.folder, "1-1-0") is None
    assert worker_proposals.partial(slow.folder, "1-1-0") is None, "no part of a failed making is shown"
    said = worker_proposals.prepare_open(slow.folder, slow.items)
    assert said == {"proposals": "RuntimeError: out of memory"}, "said once, with no windows"


def test_the_look_alikes_come_from_the_windows_done_while_the_rest_are_made(tmp_path, monkeypatch):
    from fewclick.predict.lookalike import proposals_file
    from fewclick.types import Clicks

    for key in ("1-1-0", "1-2-0"):  # two finished images, their proposals made
        _squares(4).save(proposals_file(tmp_path, key))
    boxes = [[0, 0, 0, 10, 10], [0, 20, 0, 30, 10]]
    finished = [["1-1-0", "one.png", boxes, []], ["1-2-0", "two.png", boxes, []]]
    folder, key = str(tmp_path), "1-3-0"
    none = Clicks(np.zeros((0, 2), np.float32), np.zeros(0, np.int64), np.zeros(0, bool))
    assert worker_proposals.look_alikes(folder, key, "three.png", none, finished) is None, "none made yet"
    monkeypatch.setitem(worker_proposals._PARTIAL, (folder, key), _squares(2))  # the first window's
    monkeypatch.setitem(worker_proposals._WINDOWS, (folder, key), (1, 3))
    # the look-alikes beside a trained detector (worker_mixed) wait for the whole image's
    assert worker_proposals.look_alikes(folder, key, "three.png", none, finished) is None
    det, info = worker_proposals.look_alikes(folder, key, "three.png", none, finished, partial_ok=True)
    assert info["state"] == "partial" and (info["windows_done"], info["windows"]) == (1, 3)
    assert info["made"] == 2 and len(det) == 2, "the look-alikes of the squares found so far"
    _squares(4).save(proposals_file(tmp_path, key))  # all made: they answer, whole
    det, info = worker_proposals.look_alikes(folder, key, "three.png", none, finished, partial_ok=True)
    assert info["state"] == "ready" and info["made"] == 4 and "windows_done" not in info


def test_a_click_encodes_the_window_it_lands_in_alone(sam_files, tmp_path):
    encoder = ImageEncoder(sam_files[0], threads=2, cache_dir=tmp_path)
    maker = ProposalMaker(encoder, LocalDecoder(sam_files[1]), window=120, limit=16)
    image = _scene()[0][:120, :200]  # two windows of 120 px, at x = 0 and x = 80
    maker.click(image, 60, 60, key="scene")  # while its proposals are made, say
    assert encoder.cached("scene-0-0") is not None
    assert encoder.cached("scene-80-0") is None, "the window not clicked waits for the proposals' thread"
