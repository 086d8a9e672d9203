"""``fewclick demo``: a demo project from fewclick's synthetic aerial data, its first model
training in the background, and the app.

The project holds 12 synthetic scenes. The first 4 come annotated and marked done (as if an
annotator had finished them), so a detector can train at once; the other 8 are left to
annotate, with their ground truth kept as reference annotations, so the analytics page can
draw mAP against annotation time. Run twice, it reuses the project it made.
"""

from __future__ import annotations

from pathlib import Path

from fewclick.data.synthetic import make_dataset
from fewclick.server import imports, processes
from fewclick.server.db import Annotation, init_db, local_user, session_factory, sqlite_url
from fewclick.server.jobs import control, run
from fewclick.server.storage import jobs, projects, rows
from fewclick.server.storage.versions import newest_model

NAME = "demo: synthetic aerial scenes"
FINISHED = 4


def setup_demo(data_dir: Path, train_minutes: float = 3.0, train: bool = True) -> tuple[str, int, int | None]:
    """``(database URL, project id, training job id or None)``."""
    data_dir = Path(data_dir)
    url = sqlite_url(data_dir / "fewclick.db")
    engine = init_db(url)
    with session_factory(engine)() as session:
        project = projects.named(session, NAME)
        if project is None:
            synthetic = data_dir / "synthetic"
            if not (synthetic / "annotations.json").is_file():
                make_dataset("aerial", 12, seed=7, width=768, height=768, out_dir=synthetic)
            user = local_user(session)
            project, _ = imports.create_project(session, user, NAME, folder=synthetic)
            project.classes.clear()
            rows.write(session)
            data = imports.read_import(synthetic / "annotations.json", "coco")
            imports.import_annotations(session, user, project, data, reference=True)
            for image in project.images[:FINISHED]:
                for ann in [a for a in image.annotations if a.reference]:
                    image.annotations.append(
                        Annotation(
                            class_id=ann.class_id,
                            kind=ann.kind,
                            geometry=ann.geometry,
                            source="import",
                            created_by=user.id,
                            updated_by=user.id,
                        )
                    )
                image.status = "done"
            session.commit()
        job_id = None
        control.fail_earlier_runs(session)  # a job an earlier demo left running is over
        running = jobs.running_job(session, project.id, trainer=True)
        if train and running is None and not _has_model(session, project.id):
            job = jobs.add_job(session, local_user(session), project, "train")
            session.commit()
            job_id = job.id
        project_id = project.id
    engine.dispose()
    if job_id is not None:  # stopped with the app (its shutdown), or when this process dies
        processes.start_job(
            run.run_training,
            url,
            job_id,
            str(data_dir / "models"),
            train_minutes,
            str(data_dir / "embeddings"),
        )
    return url, project_id, job_id


def _has_model(session, project_id: int) -> bool:
    return newest_model(session, project_id, "detect") is not None
