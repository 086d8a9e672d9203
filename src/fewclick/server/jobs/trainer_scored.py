"""What the background trainer scores each round on once it is trained (test, then train:
issue 68): the project's finished images no round trained on, and what the look-alikes among
SAM's proposals would have shown on them as they opened (:mod:`fewclick.server.jobs.trainer`)."""

from __future__ import annotations

from fewclick.server.db import Project
from fewclick.server.serving import record_key
from fewclick.server.storage import images, rows


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
            new = [i for i in images.finished(session, project_id) if i.id not in seen]
            data = to_dataset(project, images=new)
        records = [r for r in data.images if len(r.objects) and r.objects.boxes.size]
        out = [Fresh(int(r.id), load_image(r.path), r.objects) for r in records]
        keys.clear()
        keys.update({id(f.image): record_key(project_id, r) for f, r in zip(out, records)})
        return out

    return fresh


def look_alikes(sessions, project_id: int, embeddings: str | None, keys: dict):
    """What the look-alikes among SAM's proposals show on a fresh image as it opens (the
    exemplars of the finished images before it): scored beside the trainer, on the images
    whose proposals the app made (None for the others); None without the app's folder."""
    if not embeddings:
        return None

    def others(fresh) -> dict:
        from fewclick.active.sources import LookAlikes
        from fewclick.predict.lookalike import proposals_file
        from fewclick.predict.proposals import Proposals
        from fewclick.server.exports import to_dataset

        def made(key):
            path = None if key is None else proposals_file(embeddings, key)
            try:
                return None if path is None else Proposals.load(path)
            except (FileNotFoundError, ValueError):
                return None

        scored = {f.image_id for f in fresh}
        with sessions() as session:
            project = rows.find(session, Project, project_id)
            data = to_dataset(project, images=images.finished(session, project_id))
        before = [(made(record_key(project_id, r)), r.objects) for r in data.images if r.id not in scored]
        history = [(found, objects) for found, objects in before if found is not None and len(objects)]
        shown = []
        for f in fresh:
            found = made(keys.get(id(f.image)))
            shown.append(None if found is None else LookAlikes().fit(history).propose(found))
            if found is not None:
                history.append((found, f.objects))
        return {"look-alikes": shown}

    return others
