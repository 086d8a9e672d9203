"""SAM's proposals of a dataset's images, made once and kept in a ``--work`` folder: what the
benchmarks that read proposals without the app share (:mod:`lookalikes`, :mod:`prequential`)."""

from __future__ import annotations

import time
from pathlib import Path

from fewclick.predict.features import image_features
from fewclick.predict.proposals import ProposalMaker, Proposals


def cached_proposals(maker: ProposalMaker, rec, cache: Path, timing: dict | None = None) -> Proposals:
    """``rec``'s proposals from ``cache`` (a folder), made and saved there when absent;
    ``timing["prepare_s"]`` (when given) gets the seconds a window took to make."""
    path = cache / f"{rec.file_name.replace('/', '__')}-w{maker.window or 'auto'}.npz"
    if path.is_file():
        return Proposals.load(path)
    cache.mkdir(parents=True, exist_ok=True)
    image = rec.load_image()
    window = maker.window_for(image)
    tiles = image_features(maker.encoder, image, rec.file_name, tile=window, overlap=window // 4)
    started = time.perf_counter()
    proposals = maker(image, key=rec.file_name)
    if timing is not None:
        timing.setdefault("prepare_s", []).append((time.perf_counter() - started) / len(tiles))
    proposals.save(path)
    return proposals
