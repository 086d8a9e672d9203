"""What the background trainer scores each round on once it is trained (test, then train:
issue 68): the project's finished images no round trained on, and what the sources over SAM's
proposals would have shown on them as they opened (:mod:`fewclick.server.jobs.trainer`): the
look-alikes, and the fast learner (:mod:`fewclick.predict.learner`) refit on the finished
images before each."""

from __future__ import annotations

from dataclasses import dataclass, field

from fewclick.server.db import Project
from fewclick.server.serving import record_key
from fewclick.server.storage import images, rows
from fewclick.server.storage.annotations import RECENT_FINISHED


def fresh_images(sessions, project_id: int, keys: dict):
    """What the trainer scores a round on once it is trained (test, then train): called with
    the ids of the images the rounds trained on, the project's finished images with boxes
    that none did (finished while the round trained), oldest finished first, as
    :class:`~fewclick.active.continual.Fresh` (their cache keys put in ``keys``)."""

    def fresh(seen: set[int]) -> list:
        from fewclick.active.continual import Fresh
        from fewclick.io.images import load_image
        from fewclick.server.exports import to_dataset

        with sessions() as session:
            project = rows.find(session, Project, project_id)
            new = sorted(
                (i for i in images.finished(session, project_id) if i.id not in seen),
                key=lambda i: (i.updated_at, i.id),
            )  # oldest finished first: each is scored by what the ones before it taught
            data = to_dataset(project, images=new)
        records = [r for r in data.images if len(r.objects) and r.objects.boxes.size]
        out = [Fresh(int(r.id), load_image(r.path), r.objects) for r in records]
        keys.clear()
        keys.update({id(f.image): record_key(project_id, r) for f, r in zip(out, records)})
        return out

    return fresh


@dataclass
class Learnt:
    """What the fast learner did as a round's images were scored: each refit's seconds, and
    per class the person's box convention on SAM's boxes at the last
    (:func:`~fewclick.predict.learner.convention`)."""

    fit_s: list[float] = field(default_factory=list)
    convention: dict = field(default_factory=dict)


def sam_sources(sessions, project_id: int, embeddings: str | None, keys: dict, learnt: Learnt | None = None):
    """What the sources over SAM's proposals show on a fresh image as it opens, each fit on
    the finished images before it: the look-alikes (:data:`~fewclick.server.serving.LOOK_ALIKES`)
    and the fast learner (:data:`~fewclick.server.serving.LEARNER`), scored beside the
    trainer on the images whose proposals the app made (None for the others); None without
    the app's folder. What the learner did goes in ``learnt``."""
    if not embeddings:
        return None

    def others(fresh) -> dict:
        from threadpoolctl import threadpool_limits

        from fewclick.active.sources import Learned, LookAlikes
        from fewclick.predict.learner import convention
        from fewclick.predict.lookalike import proposals_file
        from fewclick.predict.proposals import Proposals
        from fewclick.server.exports import to_dataset
        from fewclick.server.serving import LEARNER, LOOK_ALIKES

        def made(key):
            path = None if key is None else proposals_file(embeddings, key)
            try:
                return None if path is None else Proposals.load(path)
            except (FileNotFoundError, ValueError):
                return None

        scored = {f.image_id for f in fresh}
        with sessions() as session:
            project = rows.find(session, Project, project_id)
            done = sorted(images.finished(session, project_id), key=lambda i: (i.updated_at, i.id))
            data = to_dataset(project, images=done)  # oldest finished first
        before = [(made(record_key(project_id, r)), r.objects) for r in data.images if r.id not in scored]
        history = [(found, objects) for found, objects in before if found is not None and len(objects)]
        shown: dict[str, list] = {LOOK_ALIKES: [], LEARNER: []}
        for f in fresh:
            found = made(keys.get(id(f.image)))
            if found is None:
                shown[LOOK_ALIKES].append(None)
                shown[LEARNER].append(None)
                continue
            shown[LOOK_ALIKES].append(LookAlikes().fit(history).propose(found))
            with threadpool_limits(1):  # the trainer's one core: numpy's BLAS too, not only torch
                learner = Learned().fit(history[-RECENT_FINISHED:])  # as the app's requests fit it
            if learnt is not None:
                learnt.fit_s.append(round(learner.fit_s, 4))
                learnt.convention = convention(history[-RECENT_FINISHED:])
            shown[LEARNER].append(learner.propose(found))
            history.append((found, f.objects))
        return shown

    return others
