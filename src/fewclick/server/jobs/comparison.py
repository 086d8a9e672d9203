"""Comparing a project's mask backends on its finished masks, as a job.

Every available backend (SAM when its files are set up, the project's newest mask model,
GrabCut, the box) runs the same simulated sessions over the user's masks on finished
images (:func:`~fewclick.protocols.segment_choice.score_backends`: a noisy box, then
rounds of corrective clicks); the best final mIoU serves from then on, unless the user
picked another. Each backend also gets its own mask-quality ranker, trained on sessions
of an annotator who gives up to 4 clicks a round and ignores errors under 5% of the
object (``protocols.segment_choice.RANKER_SESSIONS``), with the backend's own score as a
feature. The table goes to a :class:`~fewclick.server.db.BackendComparison` row, the
rankers to ``<models>/<project>/backends/c<N>/ranker_<backend>.pkl``.

The masks scored are the ones the user made, partly with these backends: the table says
which backend reproduces this user's masks best, not which is right.
"""

from __future__ import annotations

from pathlib import Path

from fewclick.server.db import Job, Project, make_engine, session_factory
from fewclick.server.jobs.status import DONE, RUNNING, update_job
from fewclick.server.serving import MIN_MASKS, available, embedding_key
from fewclick.server.storage import images, rows, versions

MAX_INSTANCES = 200  # masks scored per backend at most


def too_few(masks: int) -> str | None:
    """Why ``masks`` finished masks are too few for a comparison, or None."""
    if masks >= MIN_MASKS:
        return None
    return (
        f"comparing mask backends needs {MIN_MASKS} finished masks (masks on images marked done), "
        f"the project has {masks}: {MIN_MASKS - masks} more needed"
    )


def compare_job(db_url: str, job_id: int, models_dir: Path, embeddings: str) -> None:
    """Run job ``job_id`` (a comparison alone) to its end."""
    update_job(db_url, job_id, status=RUNNING, message="comparing mask backends", progress=0.0)
    message = compare(db_url, job_id, models_dir, embeddings, progress=(0.0, 1.0))
    update_job(db_url, job_id, status=DONE, progress=1.0, message=message)


def compare(
    db_url: str,
    job_id: int,
    models_dir: Path,
    embeddings: str,
    progress: tuple[float, float] = (0.0, 1.0),
    max_instances: int = MAX_INSTANCES,
) -> str:
    """Score the backends of job ``job_id``'s project, train their rankers, store the
    comparison; reports progress from ``progress[0]`` to ``progress[1]`` on the job row and
    returns a one-line summary. ValueError when the project has too few finished masks."""
    from fewclick.protocols.segment import RoundsConfig, run_rounds
    from fewclick.protocols.segment_choice import RANKER_SESSIONS, choose_backend, score_backends
    from fewclick.protocols.segment_run import InstanceItems
    from fewclick.quality.ranker import QualityRanker

    data, predictors, ids = _setup(db_url, job_id, embeddings)
    out = Path(models_dir) / str(ids["project"]) / "backends" / f"c{ids['number']}"
    out.mkdir(parents=True, exist_ok=True)
    items = InstanceItems(data)
    table = {}
    start, end = progress
    for i, (name, predictor) in enumerate(predictors.items()):
        step = (end - start) / len(predictors)
        update_job(
            db_url, job_id, progress=round(start + i * step, 4), message=f"comparing mask backends: {name}"
        )
        table.update(score_backends({name: predictor}, items, max_instances=max_instances))
        sessions = run_rounds(
            predictor, items, RoundsConfig(max_instances=max_instances, **RANKER_SESSIONS), progress=False
        )
        if len(sessions.final_ious) >= MIN_MASKS:
            ranker = QualityRanker(with_score=True).fit(
                sessions.features, sessions.final_ious, sessions.scores
            )
            ranker.save(out / f"ranker_{name}.pkl")
    chosen = choose_backend(table)
    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        versions.add_comparison(
            session,
            project_id=ids["project"],
            table=table,
            chosen=chosen,
            masks=ids["masks"],
            path=str(out),
            created_by=ids["user"],
        )
        session.commit()
    engine.dispose()
    best = table[chosen]["final"]
    return f"compared mask backends on {ids['masks']} masks: {chosen} scored best ({best:.3f} mIoU)"


def _setup(db_url: str, job_id: int, embeddings: str) -> tuple:
    """The finished images as a dataset, the backends by name, and the ids the job needs."""
    from fewclick.predict.backends import make_backend
    from fewclick.server.exports import to_dataset
    from fewclick.server.serving import finished_masks

    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        job = rows.find(session, Job, job_id)
        project = rows.find(session, Project, job.project_id)
        masks = finished_masks(session, project.id)
        reason = too_few(masks)
        if reason is not None:
            raise ValueError(reason)
        finished = images.finished(session, project.id)
        data = to_dataset(project, images=finished)
        keys = {image.path: embedding_key(image) for image in finished}
        names = available(session, project)
        model = versions.newest_model(session, project.id, "segment")
        number = versions.comparisons(session, project.id)
        ids = {"project": project.id, "user": job.created_by, "masks": masks, "number": number + 1}
    engine.dispose()
    predictors = {}
    for name in names:
        if name in ("sam", "sam_tuned"):
            sam = make_backend(
                name, model.path if name == "sam_tuned" else None, encoder=_encoder(embeddings)
            )
            predictors[name] = _KeyedSam(sam, data, keys)
        else:
            predictors[name] = make_backend(name, model.path if name == "model" else None)
    return data, predictors, ids


def _encoder(folder: str):
    from fewclick.server.embeddings import cache_encoder

    return cache_encoder(folder)


class _KeyedSam:
    """SAM whose ``set_image`` finds a project image's embedding under the app's key (by
    the image's pixels), so the sessions reuse what the app encoded and the app what they
    encode."""

    def __init__(self, sam, data, keys: dict[str, str]) -> None:
        from fewclick.predict.encoder import pixel_key

        self.sam = sam
        self.keys = {pixel_key(rec.load_image()): keys[str(rec.path)] for rec in data.images}

    def set_image(self, image) -> None:
        from fewclick.predict.encoder import pixel_key

        self.sam.set_image(image, key=self.keys.get(pixel_key(image)))

    def predict(self, box=None, clicks=None, previous=None):
        return self.sam.predict(box, clicks, previous)
