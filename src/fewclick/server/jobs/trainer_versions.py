"""A promoted round of the background trainer as the project's next detector version
(:mod:`fewclick.server.jobs.trainer`): its checkpoint, and in its metrics the test, then
train record that says which source serves each class on open and why (issue 68)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fewclick.server.db import Job, Project
from fewclick.server.serving import CLASS_IDS, LEARNER
from fewclick.server.storage import rows
from fewclick.server.storage.versions import add_version, next_version


def register(
    sessions, project_id: int, job_id: int, kind: str, result, trainer, embeddings, learnt=None
) -> None:
    """The promoted round ``result`` as the project's next detector version; in a project
    with reference images, scored on them too (the analytics' curve of mAP over boxes
    labeled). ``learnt`` (:class:`~fewclick.server.jobs.trainer_scored.Learnt`): the fast
    learner's refits as the round's images were scored, kept as ``learner_fit_s`` ``{p50,
    p95, n}``, and the person's box convention in the classes it serves."""
    from fewclick.server.jobs.training import reference_images, reference_score

    with sessions() as session:
        project = rows.find(session, Project, project_id)
        reference = reference_images(session, project)
        classes = [c.name for c in project.classes]
    metrics = {"trainer_round": result.number, "trainer_steps": trainer.state.total_steps}
    metrics["trained_ids"] = result.trained  # the images it never saw are what it is scored on
    metrics[CLASS_IDS] = trainer.class_ids  # renamed since, the version still serves them
    metrics["prequential"] = prequential(result, trainer, learnt.convention if learnt else {})
    fits = learnt.fit_s if learnt else []
    if fits:
        metrics["learner_fit_s"] = {
            "p50": round(float(np.percentile(fits, 50)), 4),
            "p95": round(float(np.percentile(fits, 95)), 4),
            "n": len(fits),
        }
    if result.thresholds is not None:  # per class position: proposals on open from these scores
        metrics["score_thresholds"] = result.thresholds
    if reference is not None:
        metrics.update(reference_score(Path(result.path), reference, classes, embeddings, project_id))
    with sessions() as session:
        job = rows.find(session, Job, job_id)
        version = next_version(session, project_id, "detect")
        add_version(
            session, project_id=project_id, task="detect", version=version, path=result.path,
            images=result.train_images, method=kind, metrics=metrics, created_by=job.created_by,
        )  # fmt: skip
        session.commit()
    trainer.registered()  # what this version names: the next rounds register only a change


def prequential(result, trainer, conventions: dict | None = None) -> dict:
    """What each source saved an image on the images the round never saw, and per class
    position the source that serves it on open and why (the record's own words); for the
    classes the fast learner serves, the score its proposals show from and the person's box
    convention it learnt (``conventions``: class position ->
    :func:`~fewclick.predict.learner.convention`'s)."""
    record = trainer.record()  # read from the state once, not once a class
    sources = {str(c): record.serves(c) for c in range(len(trainer.class_ids))}
    served = [int(c) for c, source in sources.items() if source == LEARNER]
    out = {
        "scored_images": len(result.scored),
        "saved_s": result.saved,
        "serves": result.serves,
        "sources": sources,
        "why": {str(c): why for c, why in record.why.items()},
    }
    if served:
        cuts = trainer.source_thresholds(LEARNER, served)
        out["learner_thresholds"] = {str(c): cut for c, cut in cuts.items()}
        known = {int(c): v for c, v in (conventions or {}).items()}
        out["learner_convention"] = {str(c): known[c] for c in served if c in known}
    return out
