"""Model work off the request thread: the worker process and what it keeps.

:class:`ModelWorker` owns one worker process (``ProcessPoolExecutor``, spawn). The process
keeps its predictors and the last images it decoded, so a second click on the same image
pays only for the light part of the model (the image is encoded once per predictor). The
work it runs is in :mod:`fewclick.server.worker_detect` (click-to-detect and what it
learns) and :mod:`fewclick.server.worker_masks` (box-to-mask, full image, points); their
arguments and results are plain data. Jobs run in processes of their own
(:mod:`fewclick.server.jobs`).
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor

import numpy as np

IMAGES: OrderedDict[str, np.ndarray] = OrderedDict()  # the last images decoded, by path
PREDICTORS: dict[tuple, object] = {}  # every predictor the process made, by its key
CURRENT: dict[tuple, str] = {}  # predictor key -> the image it holds
ACTIVE = 0  # requests the process is serving now (a background sweep waits for none)


class ModelWorker:
    """The worker process pool; its processes end with this process (they watch it:
    :func:`fewclick.server.processes.watch_parent`) or on :meth:`close`."""

    def __init__(self, processes: int = 1) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pool = ProcessPoolExecutor(
            max_workers=processes, mp_context=ctx, initializer=_init, initargs=(os.getpid(),)
        )

    def submit(self, fn, *args):
        return self.pool.submit(_serve, fn, *args)

    def close(self) -> None:
        """Cancel the waiting work and end the processes, busy or not (``shutdown`` alone
        lets a busy one run on, past the server's exit). They hold nothing to save (every
        file they write is renamed into place when whole), and they wait out SIGTERM while
        the server lives (:func:`_stop_signal`): SIGKILL at once."""
        # the executor's own table of its processes: the only handle on them before
        # Python 3.14's terminate_workers
        workers = list((self.pool._processes or {}).values())
        self.pool.shutdown(wait=False, cancel_futures=True)
        for process in workers:
            process.kill()
        for process in workers:
            process.join()


def _init(parent: int) -> None:
    from fewclick.server.processes import return_freed_memory, watch_parent

    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, functools.partial(_stop_signal, parent))
    watch_parent(parent)
    return_freed_memory()
    # torch takes its threads from here when a model first imports it: a worker that only
    # serves SAM (ONNX) and tiles never loads torch's half a gigabyte
    os.environ["OMP_NUM_THREADS"] = str(max(1, min(2, os.cpu_count() or 1)))


def _stop_signal(parent: int, signum: int, _frame) -> None:
    """A stop signal sent to the server's whole process group (``kill`` of the group, a
    service manager, Ctrl-C in a terminal) reaches the worker too. While the server lives
    the worker goes on: the server ends it once the requests in flight have their answers
    (:meth:`ModelWorker.close`), so none of them fails with it. With the server gone (its
    watch, :func:`~fewclick.server.processes.watch_parent`, sends SIGTERM) it ends."""
    if os.getppid() == parent:
        return
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _serve(fn, *args):
    """``fn(*args)``, counted in :data:`ACTIVE` while it runs."""
    global ACTIVE
    ACTIVE += 1
    try:
        return fn(*args)
    finally:
        ACTIVE -= 1


def image(path: str) -> np.ndarray:
    """The image at ``path``, decoded once while it is among the last three."""
    from fewclick.io.regions import load_pixels

    if path in IMAGES:
        IMAGES.move_to_end(path)
        return IMAGES[path]
    decoded = IMAGES[path] = load_pixels(path)
    while len(IMAGES) > 3:
        IMAGES.popitem(last=False)
    return decoded


def predictor(key: tuple, make, path: str):
    """The cached predictor for ``key``, holding the image at ``path``."""
    held = PREDICTORS.get(key)
    if held is None:
        held = PREDICTORS[key] = make()
    if CURRENT.get(key) != path:
        held.set_image(image(path))
        CURRENT[key] = path
    return held


def encoded(key: tuple, make, path: str, encoding: tuple[str, str] | None):
    """The cached predictor for ``key`` holding the image at ``path``, set under the image's
    encoding key once the encoding ``prepare`` started is done (none is started twice)."""
    held = PREDICTORS.get(key)
    if held is None:
        held = PREDICTORS[key] = make()
    current = encoding[1] if encoding else path
    if CURRENT.get(key) != current:
        if encoding is not None:
            from fewclick.server import embeddings

            embeddings.embedding(encoding[0], encoding[1], path)
        held.set_image(image(path), key=encoding[1] if encoding else None)
        CURRENT[key] = current
    return held


def sam_windows(sam_key: tuple, **options):
    """:class:`~fewclick.predict.windows.WindowedMasks` on the worker's SAM predictor
    ``sam_key``: each window's embedding (encoded once, kept under the window's key) set on
    it, the window then being what it holds (a whole image's request sets its own again)."""
    from fewclick.predict.windows import WindowedMasks, sam_window_embedding

    backend = PREDICTORS[sam_key]

    def show(pixels, window, image):
        backend.set_embedding(sam_window_embedding(backend.encoder, pixels, window, image))
        CURRENT[sam_key] = window.key(image)

    def shown(window, image) -> bool:
        return CURRENT.get(sam_key) == window.key(image)

    return WindowedMasks(backend, show, level0=True, shown=shown, **options)


def ping() -> int:
    return os.getpid()


def warm() -> int:
    """Import the models' code ahead of the first click (the spawn costs seconds)."""
    import fewclick.predict.detect  # noqa: F401
    import fewclick.predict.grabcut  # noqa: F401
    import fewclick.predict.sam  # noqa: F401
    import fewclick.predict.segment  # noqa: F401
    import fewclick.predict.similar  # noqa: F401
    import fewclick.predict.template  # noqa: F401

    return os.getpid()
