"""SAM's proposals of a dataset's images, made once and kept in a ``--work`` folder: what the
benchmarks that read proposals without the app share (:mod:`lookalikes`, :mod:`prequential`)."""

from __future__ import annotations

from pathlib import Path

from fewclick.predict.proposals import ProposalMaker, Proposals
from fewclick.predict.stage_clock import StageClock, timed


def cached_proposals(maker: ProposalMaker, rec, cache: Path, clock: StageClock | None = None) -> Proposals:
    """``rec``'s proposals from ``cache`` (a folder), made and saved there when absent;
    ``clock`` (when given) is charged the seconds of each stage of making them, per window,
    and of writing them (``storage``). Nothing is charged for proposals read from the cache."""
    path = cache / f"{rec.file_name.replace('/', '__')}-w{maker.window or 'auto'}.npz"
    if path.is_file():
        return Proposals.load(path)
    cache.mkdir(parents=True, exist_ok=True)
    proposals = maker(rec.load_image(), key=rec.file_name, clock=clock)
    with timed(clock, "storage"):
        proposals.save(path)
    return proposals
