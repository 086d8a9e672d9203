"""Box-to-mask zoomed in on a small box of a small image, in the worker process (issue 54,
item 2; :mod:`fewclick.predict.zoom` says which boxes and why).

A zoom window's embedding costs one encoding (about 1.3 s on one core of this machine when
it is idle, several times that when it is busy), and no one knows the box before it is
drawn. So a click never waits long for it: the first request for a window starts its
encoding on a thread of its own and waits at most :data:`ZOOM_WAIT`; until the window is
ready the whole image's embedding serves, and the answer says ``zoom: "encoding"`` (the page
asks again a moment later and shows the window's mask when nothing has changed meanwhile).
Once ready, the window serves every request for that box, ``zoom: "window"``. A window's
encoding is started once (later requests wait for the one under way); a failed one is
logged and started again by the next request; the embedding is kept in the image's
embedding folder under the window's key, written whole or not at all by the encoder.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import numpy as np

from fewclick.server import worker

#: the longest a request waits for its zoom window's encoding before the whole image serves (s)
ZOOM_WAIT = 0.25
_RUNNING: dict[str, Future] = {}
_LOCK = threading.Lock()
_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fewclick-zoom")


def zoomed(sam_for, sam, path: str, box, clicks) -> tuple[object | None, str | None]:
    """SAM on the zoom window of a small ``box`` of the image at ``path``, and ``"window"``;
    or None and ``"encoding"`` while the window is encoded; or None and None when the whole
    image serves anyway: a box too large or none, a backend other than SAM, a click outside
    the window, or a large image (its windows are :func:`worker_masks._windowed`'s).
    ``sam_for(folder)``: the worker's SAM for the embedding folder, ``(key, predictor)``, or
    None when SAM does not serve."""
    from fewclick.predict.zoom import ZOOM_SIDE, zoom_window

    if sam is None or box is None:
        return None, None
    pixels = worker.image(path)
    height, width = pixels.shape[:2]
    window = zoom_window(box, width, height)
    if window is None or not window.holds(clicks):
        return None, None
    folder, image_key = sam
    found = sam_for(folder)
    if found is None:
        return None, None
    sam_key, backend = found
    crop = pixels[window.y0 : window.y1, window.x0 : window.x1]
    if not _ready(backend.encoder, window.key(image_key), crop):
        return None, "encoding"

    held = worker.sam_windows(sam_key, min_side=ZOOM_SIDE)
    held.set_image(image_key, width, height, lambda w: pixels[w.y0 : w.y1, w.x0 : w.x1])
    return held, "window"


def _ready(encoder, key: str, crop: np.ndarray) -> bool:
    """Whether the window's embedding is cached, once its encoding (started here when none
    is under way) has had :data:`ZOOM_WAIT` seconds."""
    if encoder.cached(key) is not None:
        return True
    with _LOCK:
        future = _RUNNING.get(key)
        if future is None or (future.done() and future.exception() is not None):
            future = _RUNNING[key] = _THREAD.submit(encoder.encode, crop.copy(), key)
            future.add_done_callback(lambda f: _finished(key, f))
    try:
        future.result(timeout=ZOOM_WAIT)
    except FutureTimeout:
        return False
    except Exception:  # noqa: BLE001 - logged by _finished; the whole image serves
        return False
    return True


def _finished(key: str, future: Future) -> None:
    if future.exception() is not None:
        logging.getLogger(__name__).error(
            "the zoom window %s could not be encoded", key, exc_info=future.exception()
        )
        return
    with _LOCK:
        if _RUNNING.get(key) is future:
            del _RUNNING[key]


__all__ = ["ZOOM_WAIT", "zoomed"]
