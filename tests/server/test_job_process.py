"""A job's process: it beats while it runs, and a failure leaves a short message with a log
reference on the job while the traceback goes to the log."""

import logging
import signal
import subprocess
import sys
import time

import pytest

from fewclick.server.db import Job, Project, init_db, local_user, session_factory, sqlite_url
from fewclick.server.jobs import process


@pytest.fixture()
def job(tmp_path):
    """(database URL, sessions, id of a queued job)."""
    url = sqlite_url(tmp_path / "app.db")
    sessions = session_factory(init_db(url))
    with sessions() as session:
        user = local_user(session)
        project = Project(name="p", created_by=user.id)
        session.add(project)
        session.flush()
        row = Job(project_id=project.id, kind="train", created_by=user.id)
        session.add(row)
        session.commit()
        return url, sessions, row.id


def test_a_running_job_beats_and_a_failure_shows_a_log_reference_not_a_traceback(job, caplog):
    url, sessions, job_id = job
    seen = []

    def fails(db_url, job_id):
        with sessions() as session:
            seen.append(session.get(Job, job_id).heartbeat_at)
        raise ValueError("no boxes in image 3\nmore detail")

    with caplog.at_level(logging.ERROR, logger="fewclick"):
        process.run_job(fails, url, job_id)
    assert seen[0] is not None, "the heartbeat beat before the job's work"
    with sessions() as session:
        row = session.get(Job, job_id)
        assert row.status == "failed" and "Traceback" not in row.message
        message, ref = row.message.removesuffix(")").split(" (log ref ")
    assert message == "no boxes in image 3" and len(ref) == 8
    [record] = [r for r in caplog.records if ref in r.getMessage()]
    assert record.exc_info[0] is ValueError, "the traceback is in the log"


def test_the_heartbeat_goes_on_while_the_job_runs(job):
    url, sessions, job_id = job
    beats = []

    def read():
        with sessions() as session:
            return session.get(Job, job_id).heartbeat_at

    deadline = time.monotonic() + 10
    with process.heartbeat(url, job_id, every=0.05):
        while len(set(beats)) < 3 and time.monotonic() < deadline:
            beats.append(read())
            time.sleep(0.01)
    assert len(set(beats)) == 3, "three beats, each later than the one before"
    stopped = read()
    time.sleep(0.2)
    assert read() == stopped, "no beat after the job ended"


def test_a_failure_message_keeps_one_short_line():
    assert process.failure_message(RuntimeError(), "abc") == "RuntimeError (log ref abc)"
    long = process.failure_message(ValueError("x" * 1000 + "\nsecond"), "abc")
    assert len(long) == process.MESSAGE_CHARS + len(" (log ref abc)") and "second" not in long


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_job_stopped_by_a_signal_is_marked_failed_as_interrupted(job, sig):
    """The server stopping a job (SIGTERM), its process finding the server gone (SIGTERM to
    itself) or Ctrl-C (SIGINT): the job does not stay "running". In a process of its own, as
    a job runs, since the signal ends it."""
    url, sessions, job_id = job
    code = (
        "import os, signal, sys, time\n"
        "from fewclick.server.jobs.process import run_job\n"
        "def work(url, job_id):\n"
        f"    os.kill(os.getpid(), {int(sig)})\n"
        "    time.sleep(60)\n"
        "run_job(work, sys.argv[1], int(sys.argv[2]))\n"
    )
    subprocess.run([sys.executable, "-c", code, url, str(job_id)], timeout=60, capture_output=True)
    with sessions() as session:
        row = session.get(Job, job_id)
        assert (row.status, row.message) == ("failed", process.INTERRUPTED)


def test_a_signal_that_comes_out_as_another_error_still_marks_the_job_interrupted(job):
    """SIGTERM while onnxruntime's C extension loaded came out of the import as "ImportError:
    initialization failed", the interrupt as its cause: the job is interrupted, not failed."""
    url, sessions, job_id = job

    def work(db_url, job_id):
        try:
            raise process.Interrupted("SIGTERM")
        except process.Interrupted as exc:
            raise ImportError("initialization failed") from exc

    process.run_job(work, url, job_id)
    with sessions() as session:
        row = session.get(Job, job_id)
        assert (row.status, row.message) == ("failed", process.INTERRUPTED)


def test_a_job_that_ended_is_not_marked_interrupted(job):
    url, sessions, job_id = job
    with sessions() as session:
        session.get(Job, job_id).status = "done"
        session.commit()
    process.interrupted(url, job_id)
    with sessions() as session:
        assert session.get(Job, job_id).status == "done"
