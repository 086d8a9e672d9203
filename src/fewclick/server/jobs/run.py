"""The entry points a job's process runs (``fewclick.server.processes.start_process``
spawns a process on one of them): each sets up the process's logging and runs its job
under :func:`fewclick.server.jobs.process.run_job` (heartbeat, signals, failure). Their
arguments are plain data; the job modules are imported in the job's process only.
"""

from __future__ import annotations

from pathlib import Path

JOB_NICENESS = 10  # how much lower a job process runs than the server (nice)


def run_training(db_url: str, job_id: int, models_dir: str, minutes: float, embeddings: str) -> None:
    """A training job, run in its own process (see :mod:`fewclick.server.jobs.training`)."""
    from fewclick.server.jobs import training

    _job(training.train_project, db_url, job_id, Path(models_dir), minutes, embeddings=embeddings)


def run_trainer(db_url: str, job_id: int, models_dir: str, embeddings: str) -> None:
    """A project's background trainer, in its own process (:mod:`fewclick.server.jobs.trainer`)."""
    from fewclick.server.jobs import trainer

    _job(trainer.run_trainer, db_url, job_id, Path(models_dir), embeddings)


def run_queue(db_url: str, job_id: int, models_dir: str, embeddings: str) -> None:
    """Building a review queue, in its own process (:mod:`fewclick.server.box_queue`)."""
    from fewclick.server.jobs import queue

    _job(queue.build_queue, db_url, job_id, Path(models_dir), embeddings)


def run_preannotate(db_url: str, job_id: int, models_dir: str, embeddings: str) -> None:
    """Pre-annotating a project, in its own process (:mod:`fewclick.server.jobs.preannotate`)."""
    from fewclick.server.jobs import preannotate

    _job(preannotate.preannotate, db_url, job_id, Path(models_dir), embeddings)


def run_comparison(db_url: str, job_id: int, models_dir: str, embeddings: str) -> None:
    """A comparison of mask backends, in its own process (:mod:`fewclick.server.jobs.comparison`)."""
    from fewclick.server.jobs import comparison

    _job(comparison.compare_job, db_url, job_id, Path(models_dir), embeddings)


def _job(fn, db_url: str, job_id: int, *args, **kwargs) -> None:
    import os

    from fewclick.server import logs
    from fewclick.server.jobs.process import run_job

    logs.configure()  # a spawned process starts without the server's logging
    # below the server and its model worker: a person's click never waits for training
    # (two trainers on two cores gave clicks a p95 of 40-115 s at the same priority)
    os.nice(JOB_NICENESS)
    run_job(fn, db_url, job_id, *args, **kwargs)
