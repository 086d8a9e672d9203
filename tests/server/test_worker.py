"""The model worker: a worker process that dies is replaced, and the request that found it
dead gets a clear 503 instead of hanging or a 500; it ends when the server closes it, busy or
not, and by itself once the server is gone. A click a trained detector leaves unboxed gets
SAM's box from the training-free start."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from benchmarks._server import alive
from fastapi import HTTPException

from fewclick.server import worker
from fewclick.server.deps import WorkerHandle
from fewclick.server.worker import ModelWorker
from fewclick.types import Clicks, Detections


def test_a_dead_worker_answers_503_and_the_next_request_gets_a_new_one():
    handle = WorkerHandle()
    try:
        with pytest.raises(HTTPException) as err:
            asyncio.run(handle.run(os._exit, 3))
        assert err.value.status_code == 503 and "restarted" in err.value.detail
        assert asyncio.run(handle.run(abs, -7)) == 7
    finally:
        handle.close()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_closing_the_worker_stops_its_process_even_while_it_works():
    model_worker = ModelWorker()
    pid = model_worker.submit(os.getpid).result(timeout=120)
    model_worker.submit(time.sleep, 120)
    model_worker.close()
    assert not alive(pid), "the busy worker outlived close()"


def test_a_process_whose_parent_is_gone_exits():
    """``watch_parent`` of a pid that is not the parent: the parent is "gone" at once, and the
    process ends by SIGTERM (its default: exit) long before its 60 s of sleep."""
    code = (
        "import time\n"
        "from fewclick.server.processes import watch_parent\n"
        "watch_parent(-1, every=0.05)\n"
        "time.sleep(60)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], timeout=50, capture_output=True)
    assert done.returncode == -signal.SIGTERM, done.stderr


def test_a_click_the_detector_left_unboxed_gets_sams_box_from_the_training_free_start(monkeypatch):
    asked = []

    class Similar:  # the training-free start, as the worker keeps it per embedding folder
        def clicked_box(self, x, y, label, sizes):
            asked.append((float(x), float(y), int(label), sizes))
            return np.array([x - 4, y - 4, x + 4, y + 4], np.float32)

    monkeypatch.setattr(worker, "_encoded", lambda key, make, path, encoding: Similar())
    det = Detections(np.array([[0, 0, 10, 10]], np.float32), np.array([0.9], np.float32), np.array([0]))
    clicks = Clicks(np.array([[5, 5], [30, 30]], np.float32), np.array([0, 1]), np.ones(2, bool))
    out = worker._own_boxes(det, clicks, "im.png", ("cache", "key"), 2, {1: 8.0})
    assert asked == [(30.0, 30.0, 1, {1: 8.0})], "only the click without a box of its class around it"
    assert out.boxes.tolist() == [[0, 0, 10, 10], [26, 26, 34, 34]]
    assert out.scores.tolist() == pytest.approx([0.9, 1])
