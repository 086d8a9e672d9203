"""Which of SAM's masks a project's box or click is served, learnt from its finished masks,
in the worker process (issue 54).

SAM's decoder predicts four masks for a box alone or one click, and serves the one its
SA-1B-trained IoU head rates best; on a project's objects that is often not the best of the
four (:mod:`fewclick.models.sam_pick`: 0.04-0.06 mIoU for a box, 0.08-0.17 for a click on
our training parts), and the person pays a Tab each time. The tuned decoder carries offsets
that fix the choice; the pretrained one, which serves until a mask model is trained, gets a
project's own here, at no training: each finished mask is prompted as SAM would be (its
tight box, a click at its inmost point) on its image's cached embedding, and
:func:`~fewclick.models.sam_pick.fit_offsets` picks the offsets with the most IoU.

:func:`learn` starts the fit on a thread of its own (so it never holds up an image's
encoding) when the project's finished masks changed; each prompt's four masks are scored at
the decoder's low resolution, so a fit of 80 objects takes seconds on an idle core (a minute at load 14);
:func:`offsets` answers a segment request from what was fit last, never waiting (none
before the first fit ends). An image whose embedding is not cached is skipped (it is not
encoded for this). Fits are kept in memory: a restarted worker fits again on the next
:func:`learn`.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

_FITTED: dict[int, tuple[tuple, dict]] = {}  # project -> (the finished masks' signature, offsets)
_ASKED: dict[int, tuple] = {}  # project -> the signature of the fit last started
_LOCK = threading.Lock()
#: fits run one at a time on a thread of their own: never ahead of an image's encoding
_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fewclick-pick")
_SAMS: dict[str, object] = {}  # folder -> the pretrained SAM the fits run (on _THREAD only)
#: the most objects a fit prompts (the newest finished images' first)
MAX_OBJECTS = 80


def learn(folder: str, project: int, finished: list) -> bool:
    """Fit the project's offsets on ``finished`` (``[[embedding key, path, [RLE, ...]], ...]``,
    newest first) unless that fit is under way or done; whether one was started."""
    signature = tuple((key, len(masks)) for key, _, masks in finished)
    with _LOCK:
        if not finished or _ASKED.get(project) == signature:
            return False
        _ASKED[project] = signature
    _THREAD.submit(_fit, folder, project, signature, finished).add_done_callback(_log_failure)
    return True


def _log_failure(future) -> None:
    if future.exception() is not None:
        logging.getLogger(__name__).error("fitting SAM's mask choice failed", exc_info=future.exception())


def offsets(project: int | None) -> dict | None:
    """The project's fitted offsets (None before a fit ended, or when SAM's own choice won)."""
    with _LOCK:
        found = _FITTED.get(project)
    return found[1] or None if found is not None else None


def _fit(folder: str, project: int, signature: tuple, finished: list) -> None:
    from fewclick.io.rle import rle_to_mask
    from fewclick.models.sam_pick import fit_offsets
    from fewclick.predict.sam import SamPredictor
    from fewclick.server import embeddings

    encoder = embeddings.encoder(folder)
    sam = _SAMS.get(folder)
    if sam is None:
        sam = _SAMS[folder] = SamPredictor(encoder, threads=1)
    records, objects = [], 0
    for key, _, rles in finished:
        embedding = encoder.cached(key)
        if embedding is None or objects >= MAX_OBJECTS:
            continue
        sam.set_embedding(embedding)
        masks = [rle_to_mask(r) for r in rles[: MAX_OBJECTS - objects]]
        masks = [m for m in masks if m.shape == tuple(embedding.image_size)]
        records += sam.first_prompt_records(masks)
        objects += len(masks)
    fitted = fit_offsets(records)
    with _LOCK:
        _FITTED[project] = (signature, fitted)
    logging.getLogger(__name__).info(
        "project %s: SAM's mask choice fit on %d objects: %s", project, objects, fitted or "its own"
    )


__all__ = ["MAX_OBJECTS", "learn", "offsets"]
