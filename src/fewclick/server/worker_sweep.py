"""The look-alikes sweep of a large image, on a thread of the worker process
(:mod:`fewclick.server.worker`).

A click on a large image answers from the windows around the clicks
(:func:`fewclick.server.worker_detect.detect`); the rest of the image is then detected
here, in the background, window by window (:func:`fewclick.predict.windows.sweep_windows`:
1024 px at full resolution, those on the person's screen first):

- before a detector is trained, the clicked objects (SAM's box and feature vector, on the
  clicks' own windows) are looked for in each window as the training-free start looks for
  them in a small image (:meth:`~fewclick.predict.similar.SimilarityDetector.look_alikes`),
  their boxes moved by the edges learnt on finished images as a click's are;
- with a trained detector, each window gets the detector's proposals.

Each window's embedding is kept on disk under its key (a second sweep after more clicks
reads them instead of encoding again); memory holds one window's features and the boxes
found so far (each window keeps those centred in its core: an object two windows find is
kept once, with no NMS at each look). One sweep runs at a time in the process: a new one
(other clicks, another image) stops the last at its next window. A window waits while the
worker serves a request,
so that a click does not share the two cores with the sweep. :func:`sweep_status` answers
the boxes found so far, best first, with the progress.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from fewclick.server import worker

log = logging.getLogger(__name__)

#: seconds between two looks at whether the worker still serves a request
IDLE_POLL = 0.05


@dataclass
class Sweep:
    """One sweep's state: read by :func:`sweep_status` while the thread adds to it."""

    image: str  # the image's embedding key
    asked: str  # a digest of what it looks for (clicks, sizes, model)
    total: int
    width: int
    height: int
    done: int = 0
    status: str = "running"  # running, done, stopped, failed
    message: str = ""
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0
    found: list = field(default_factory=list)  # per window detected, its Detections in its core
    stop: threading.Event = field(default_factory=threading.Event)
    method: str = ""


_SWEEP: Sweep | None = None
_LOCK = threading.Lock()


def start_sweep(
    large: tuple[str, str, int, int],
    model: str | None,
    names: list[str],
    clicks: list[list[float]],
    sizes: dict,
    encoding: tuple[str, str],
    limit: int | None,
    finished: list | None,
    view: list[float] | None,
    floor: float = 0.0,
    same_ids: bool = False,
) -> dict:
    """Start sweeping the ``large`` image (:func:`fewclick.server.worker_detect.detect`'s
    arguments, ``view``: x0, y0, x1, y1 on the person's screen, and ``floor``: the least
    score of a trained detector's proposals kept, the lowest the page shows unasked); the
    sweep already under way when it looks for the same. Its :func:`sweep_status`."""
    global _SWEEP
    from fewclick.predict.windows import sweep_windows

    source, key, width, height = large
    asked = hashlib.sha1(
        repr((key, model, names, clicks, sorted(sizes.items()), limit, floor, same_ids)).encode()
    ).hexdigest()
    with _LOCK:
        if _SWEEP is not None and _SWEEP.asked == asked and _SWEEP.status in ("running", "done"):
            return _status(_SWEEP)
        if _SWEEP is not None:
            _SWEEP.stop.set()
    # the clicked objects, here on the request's thread with the worker's own predictor and
    # SAM (their windows were just encoded for the click): the thread needs no SAM of its own
    objects = None if model is not None else clicked_objects(large, names, clicks, sizes, encoding)
    with _LOCK:
        windows = sweep_windows(width, height, tuple(view) if view else None)
        sweep = _SWEEP = Sweep(key, asked, len(windows), width, height)
    args = (sweep, windows, source, model, names, objects, encoding, limit, finished, floor, same_ids)
    threading.Thread(target=_run, args=args, name="fewclick-sweep", daemon=True).start()
    return _status(sweep)


def sweep_status(key: str) -> dict | None:
    """The sweep of the image of embedding ``key``: its progress and the boxes found so far
    (in image pixels, labels as class positions, none on a clicked object); None when the
    process holds no sweep of it (never started, or another image's replaced it)."""
    sweep = _SWEEP
    if sweep is None or sweep.image != key:
        return None
    return _status(sweep)


def stop_sweep(key: str) -> bool:
    """Stop the sweep of the image of embedding ``key`` at its next window; whether one ran."""
    sweep = _SWEEP
    if sweep is None or sweep.image != key or sweep.status != "running":
        return False
    sweep.stop.set()
    return True


def _status(sweep: Sweep) -> dict:
    from fewclick.types import Detections
    from fewclick.wire.codec import detection_lists

    # the boxes alone, of the windows with any (an empty answer carries fewer fields); a list
    # of them now: the thread appends meanwhile
    found = [Detections(d.boxes, d.scores, d.labels, rboxes=d.rboxes) for d in list(sweep.found) if len(d)]
    det = Detections.concatenate(found) if found else Detections.empty()
    det = det[np.argsort(-det.scores, kind="stable")]
    seconds = sweep.seconds if sweep.status != "running" else time.monotonic() - sweep.started
    return {
        "status": sweep.status,
        "windows_done": sweep.done,
        "windows": sweep.total,
        "seconds": round(seconds, 2),
        "message": sweep.message,
        "method": sweep.method,
        **detection_lists(det),
    }


def _run(sweep: Sweep, windows, source, model, names, objects, encoding, limit, finished, floor, same_ids):
    from fewclick.io.tiling import owned
    from fewclick.predict.windows import sweep_cores

    try:
        detect = _detector(source, model, names, objects, encoding, limit, finished, sweep, floor, same_ids)
        cores = sweep_cores(sweep.width, sweep.height)
        for window in windows:
            if sweep.stop.is_set():
                sweep.status = "stopped"
                break
            _wait_for_requests(sweep)
            found = detect(window)
            if found is not None:
                tile, det = found
                sweep.found.append(owned(det, tile, cores[window]))
            sweep.done += 1
        else:
            sweep.status = "done"
    except Exception as exc:  # the page shows it; the worker serves on
        log.exception("the look-alikes sweep of %s failed", sweep.image)
        sweep.status, sweep.message = "failed", f"{type(exc).__name__}: {exc}"
    sweep.seconds = time.monotonic() - sweep.started


def _wait_for_requests(sweep: Sweep) -> None:
    while worker.ACTIVE and not sweep.stop.is_set():
        time.sleep(IDLE_POLL)


def _detector(source, model, names, objects, encoding, limit, finished, sweep, floor, same_ids=False):
    """``detect(window)``: the window's boxes as ``(Tile, Detections)`` in window pixels, or
    None for nothing to keep. Made on the sweep's thread with predictors of its own (the
    requests' hold other images)."""
    from fewclick.io.regions import load_pixels, window_path
    from fewclick.io.tiling import Tile
    from fewclick.server import embeddings

    enc = embeddings.encoder(encoding[0])
    key = encoding[1]

    def pixels(window):
        x0, y0, x1, y1 = window
        return load_pixels(window_path(source, window)), f"{key}@{x0}_{y0}_{x1}_{y1}"

    if model is not None:
        from fewclick.predict.detect import ClickDetector
        from fewclick.server.worker_detect import knows_classes

        detector = ClickDetector.load(model, encoder=enc)
        sweep.method = detector.method
        if not knows_classes(detector, names, same_ids):
            raise ValueError("the serving detector was trained for other classes: train again")

        def proposals(window):
            image, at = pixels(window)
            detector.set_image(image, key=at)
            det = detector.predict()
            return Tile(*window), det[det.scores >= floor]  # _status keeps the boxes alone

        return proposals
    return _look_alikes(enc, pixels, names, objects, limit, finished, sweep)


def clicked_objects(large, names: list[str], clicks: list, sizes: dict, encoding) -> list:
    """Each click's :class:`~fewclick.predict.similar.ClickedObject` (box in image pixels) on
    its click-to-detect window, by the worker's training-free predictor (as the click's
    answer found it)."""
    from fewclick.io.regions import window_path
    from fewclick.predict.similar import ClickedObject
    from fewclick.predict.windows import detect_window
    from fewclick.server.worker_detect import _similar
    from fewclick.types import Clicks

    source, key, width, height = large
    sizes = {int(k): float(v) for k, v in sizes.items()}
    out = []
    for c in clicks:
        x0, y0, x1, y1 = window = detect_window(c[0], c[1], width, height)
        at = (encoding[0], f"{key}@{x0}_{y0}_{x1}_{y1}")
        similar = _similar(window_path(source, window), at, len(names))
        one = Clicks(np.float32([[c[0] - x0, c[1] - y0]]), np.int64([int(c[2])]), np.ones(1, bool))
        (found,) = similar.clicked_objects(one, sizes)
        out.append(ClickedObject(found.label, found.box + np.float32([x0, y0, x0, y0]), found.vector))
    return out


def _look_alikes(enc, pixels, names, objects, limit, finished, sweep):
    """The training-free ``detect(window)``: the clicked ``objects`` looked for in each
    window, by a detector of the thread's own that never needs SAM."""
    from fewclick.io.tiling import Tile
    from fewclick.predict.similar import ClickedObject, SimilarityDetector
    from fewclick.server.worker_detect import _offsets
    from fewclick.types import Detections

    similar = SimilarityDetector(len(names), enc)
    sweep.method = similar.method
    offsets = _offsets(finished)
    if not any(o.vector is not None for o in objects):
        sweep.message = "SAM found no object under the clicks: nothing to look for"
        return lambda window: None

    def look(window):
        image, at = pixels(window)
        similar.set_image(image, key=at)
        x0, y0 = window[:2]
        here = [ClickedObject(o.label, o.box - np.float32([x0, y0, x0, y0]), o.vector) for o in objects]
        det = similar.look_alikes(here, limit)
        if offsets and len(det):
            det = Detections(offsets.apply(det.boxes, det.labels), det.scores, det.labels)
        return Tile(*window), det

    return look
