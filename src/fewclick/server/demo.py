"""``fewclick demo``: a demo project from fewclick's synthetic aerial data, its first model
training in the background, and the app.

The project holds 12 synthetic scenes. The first 4 come annotated and marked done (as if an
annotator had finished them), so its background trainer starts at once (the one way the app
trains detectors: :mod:`fewclick.server.jobs.trainer`) beside a job for the mask and point
models; the other 8 are left to annotate, with their ground truth kept as reference
annotations, so the analytics page can draw mAP against annotation time. A trained detector
serves once 12 held-out finished images hold 75 objects (the trainer's rule): until then the
look-alikes among SAM's proposals do. Run twice, it reuses the project it made, and its
trainer goes on from its rounds unless someone stopped it.
"""

from __future__ import annotations

from pathlib import Path

from fewclick.data.synthetic import make_dataset
from fewclick.server import imports, processes
from fewclick.server.db import Annotation, init_db, local_user, session_factory, sqlite_url
from fewclick.server.jobs import control, run
from fewclick.server.model_files import trainer_folder
from fewclick.server.storage import jobs, projects, rows
from fewclick.server.storage.versions import newest_model

NAME = "demo: synthetic aerial scenes"
FINISHED = 4


def setup_demo(data_dir: Path, train_minutes: float = 3.0, train: bool = True) -> tuple[str, int, int | None]:
    """``(database URL, project id, the trainer's job id, else the mask job's, or None)``."""
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
        job_id = trainer_id = None
        control.fail_earlier_runs(session)  # a job an earlier demo left running is over
        models = data_dir / "models"
        if train and jobs.trainer_job(session, project.id) is None and _trainer_left_on(models, project.id):
            trainer_id = jobs.add_trainer(session, project.id, local_user(session), "auto").id
            _want(models, project.id)
        if train and jobs.running_job(session, project.id) is None and not _has_model(session, project.id):
            job_id = jobs.add_job(session, local_user(session), project, "train").id
        session.commit()
        project_id = project.id
    engine.dispose()
    # stopped with the app (its shutdown), or when this process dies
    embeddings = str(data_dir / "embeddings")
    if trainer_id is not None:
        processes.start_job(run.run_trainer, url, trainer_id, str(models), embeddings)
    if job_id is not None:
        processes.start_job(run.run_training, url, job_id, str(models), train_minutes, embeddings)
    return url, project_id, trainer_id or job_id


def _has_model(session, project_id: int) -> bool:
    """Whether the project has a mask model: its job ran on an earlier demo."""
    return newest_model(session, project_id, "segment") is not None


def _trainer_left_on(models: Path, project_id: int) -> bool:
    """Whether the demo's trainer was never started, or left on (not stopped by someone)."""
    path = trainer_folder(models, project_id) / control.WANTED
    return not path.is_file() or path.read_text().strip() != "stopped"


def _want(models: Path, project_id: int) -> None:
    folder = trainer_folder(models, project_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / control.WANTED).write_text("running")
