"""SAM embeddings in the worker process, computed ahead of the click.

One :class:`~fewclick.predict.encoder.ImageEncoder` per cache folder encodes on one
background thread, so a click on the current image is served while the next image is
encoded. Every key has at most one encoding under way: :func:`start` hands back the running
one, and :func:`embedding` (what a segment or snap request calls) waits for it instead of
starting a second. Finished embeddings are in the encoder's memory cache and in
``<folder>/<key>.npz`` (:func:`fewclick.server.serving.embedding_key`), at most
:func:`disk_gb` of them: a large image's windows (16 MB each) would fill a disk.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor

_ENCODERS: dict[str, object] = {}
_RUNNING: dict[str, Future] = {}
_LOCK = threading.Lock()
_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fewclick-encode")


#: the most gigabytes of embeddings kept on disk (the least recently used go first), unless
#: the environment's FEWCLICK_EMBEDDINGS_GB (``fewclick serve --embeddings-gb``) says
DISK_GB = 16.0
DISK_ENV = "FEWCLICK_EMBEDDINGS_GB"


def disk_gb() -> float:
    """The embeddings' disk budget: :data:`DISK_ENV`'s, else :data:`DISK_GB`; a ValueError
    names a setting that is not a positive number."""
    said = os.environ.get(DISK_ENV)
    if said is None:
        return DISK_GB
    try:
        gb = float(said)
    except ValueError:
        gb = float("nan")
    if not (gb > 0 and math.isfinite(gb)):
        raise ValueError(f"{DISK_ENV}={said!r}: expected the embeddings' disk budget in GB, a number > 0")
    return gb


def cache_encoder(folder: str, threads: int | None = None):
    """A new image encoder caching in the app's ``folder``, kept within :func:`disk_gb` (every
    encoder of the app's folder, in the worker or a job, trims it)."""
    from fewclick.predict.encoder import ImageEncoder

    return ImageEncoder(cache_dir=folder, threads=threads, disk_mb=disk_gb() * 1024)


def encoder(folder: str):
    """The worker's shared image encoder caching in ``folder`` (made on first use)."""
    with _LOCK:
        found = _ENCODERS.get(folder)
        if found is None:
            found = _ENCODERS[folder] = cache_encoder(folder)
        return found


def start(folder: str, key: str, path: str) -> Future:
    """The encoding of the image at ``path`` under ``key``: finished when cached, else the
    one under way, else a new one queued on the encoding thread (also when the last one
    failed: a request tries again)."""
    enc = encoder(folder)
    with _LOCK:
        running = _RUNNING.get(key)
        if running is not None and not (running.done() and running.exception() is not None):
            return running
        cached = enc.cached(key)
        if cached is not None:
            done: Future = Future()
            done.set_result(cached)
            return done
        future = _RUNNING[key] = _THREAD.submit(_encode, enc, key, path)
    future.add_done_callback(lambda f: _finished(key, f))
    return future


def background(fn, *args) -> Future:
    """Run ``fn(*args)`` on the encoding thread, after the encodings queued before it (work
    that reads embeddings and must not hold up a request); a failure is logged."""
    future = _THREAD.submit(fn, *args)
    future.add_done_callback(_log_failure)
    return future


def _log_failure(future: Future) -> None:
    if future.exception() is not None:
        logging.getLogger(__name__).error("background work failed", exc_info=future.exception())


def _encode(enc, key: str, path: str):
    from fewclick.io.regions import load_pixels

    # with the feature maps, so that click-to-detect on the same image needs no second run
    return enc.encode(load_pixels(path), key=key, features=enc.has_features)


def _finished(key: str, future: Future) -> None:
    """A finished encoding leaves the running ones (the encoder's caches answer from then
    on); a failed one stays until :func:`prepare` has reported it."""
    if future.exception() is None:
        with _LOCK:
            if _RUNNING.get(key) is future:
                del _RUNNING[key]


def prepare(folder: str, items: list[tuple[str, str]]) -> list[str | None]:
    """Start encoding each ``(key, path)`` in order (the open image, then the next); per
    item None when its embedding is ready, "encoding" while it is under way, or the error
    that stopped its last encoding (reported once; the next call tries again)."""
    states: list[str | None] = []
    for key, path in items:
        with _LOCK:
            future = _RUNNING.get(key)
        if future is None or not future.done() or future.exception() is None:
            future = start(folder, key, path)
        if not future.done():
            states.append("encoding")
        elif future.exception() is not None:
            with _LOCK:
                _RUNNING.pop(key, None)
            states.append(f"{type(future.exception()).__name__}: {future.exception()}")
        else:
            states.append(None)
    return states


def embedding(folder: str, key: str, path: str):
    """The image's :class:`~fewclick.predict.encoder.Embedding`, waiting for an encoding
    under way rather than starting another."""
    return start(folder, key, path).result()
