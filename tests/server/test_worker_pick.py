"""A project's choice among SAM's masks, learnt from its finished masks in the worker: a fit
is started once per set of finished masks, runs on the cached embeddings only, and what it
fit (or that SAM's own choice won) is what segment requests read, without waiting."""

import numpy as np

from fewclick.io.rle import mask_to_rle
from fewclick.models.sam_pick import MASKS, PROMPT_KINDS
from fewclick.server import embeddings, worker_pick


def _scene(h: int = 240, w: int = 320):
    rng = np.random.default_rng(1)
    image = rng.normal(110, 12, (h, w, 3)).clip(0, 255).astype(np.uint8)
    ys, xs = np.mgrid[:h, :w]
    discs = []
    for cx, cy, r in ((60, 60, 20), (200, 80, 30), (150, 180, 25)):
        disc = (xs - cx) ** 2 + (ys - cy) ** 2 < r**2
        image[disc] = (200, 40 + r, 40)
        discs.append(disc)
    return image, discs


def test_the_fit_runs_once_per_set_of_finished_masks_on_cached_embeddings(sam_files, tmp_path):
    folder = str(tmp_path / "embeddings")
    image, discs = _scene()
    embeddings.encoder(folder).encode(image, key="one")
    rles = [mask_to_rle(d) for d in discs] * 8  # 24 objects: enough prompts of each kind to fit
    finished = [["one", "one.png", rles], ["never-encoded", "two.png", rles]]
    assert worker_pick.offsets(7) is None, "nothing fit yet: SAM's own choice serves"
    assert worker_pick.learn(folder, 7, finished) is True
    assert worker_pick.learn(folder, 7, finished) is False, "the same finished masks: not again"
    worker_pick._THREAD.submit(lambda: None).result(120)  # the fit queued before it is done
    signature, fitted = worker_pick._FITTED[7]
    assert signature == (("one", 24), ("never-encoded", 24))
    assert set(fitted) <= set(PROMPT_KINDS) and all(len(v) == MASKS for v in fitted.values())
    assert worker_pick.offsets(7) == (fitted or None)
    more = [["one", "one.png", rles[:21]]]
    assert worker_pick.learn(folder, 7, more) is True, "the finished masks changed: fit again"
    assert worker_pick.learn(folder, 8, []) is False, "nothing finished: nothing to fit"
