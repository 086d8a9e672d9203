"""A campaign that outlives its process (``campaign.py --resume``): after each image, what
the simulated person remembers, the trainer's pace and the rows so far go to a checkpoint in
``--work``; a run started again with the same arguments and ``--resume`` reopens the app on
the same folder and goes on from the next image.

A project's start is 40-48 images, and with the background trainer paced by the person's
seconds one image takes minutes of wall-clock time on two cores: such a run can be longer
than the session that started it. What a resumed run cannot keep is the server's memory (its
worker's caches, a trainer's round under way): the first image after a resume pays to load
the models again and the trainer starts its round again, and the report lists where it was
resumed (``resumed``).
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

from _common import run_record

CHECKPOINT = "campaign_checkpoint.pickle"
# what an annotator remembers between images (mask mode's WayMemory lives per image)
ANNOTATOR_STATE = (
    "current",
    "waits_ms",
    "kept",
    "memory",
    "starts",
    "images_done",
    "object_seconds",
    "ahead",
    "learner_fits",
)
TRAINER_STATE = ("due", "started", "ended")


@dataclass
class Checkpoint:
    """``argv``: the run's arguments (without ``--resume``); ``report``: the report's head
    (project, cost model, load at start); ``rows``: the images done, in the order done."""

    argv: list[str]
    report: dict
    rows: list[dict] = field(default_factory=list)
    annotator: dict = field(default_factory=dict)
    trainer: dict = field(default_factory=dict)
    recorder: dict = field(default_factory=dict)
    resumed: list[dict] = field(default_factory=list)

    def keep(self, annotator, trainer, recorder) -> None:
        """Take the state of ``annotator``, ``trainer`` (a TrainerPace) and ``recorder``."""
        self.annotator = {name: getattr(annotator, name) for name in ANNOTATOR_STATE}
        self.trainer = {name: getattr(trainer, name) for name in TRAINER_STATE}
        self.recorder = {
            "times": dict(recorder.times),
            "errors": list(recorder.errors),
            "conflicts": recorder.conflicts,
        }

    def restore(self, annotator, trainer, recorder, app: Path) -> None:
        """Give them back what :meth:`keep` took. The trainer is asked to start again (its
        process ended with the last run's server, in ``app``)."""
        for name, value in self.annotator.items():
            setattr(annotator, name, value)
        for name, value in self.trainer.items():
            setattr(trainer, name, value)
        # the trainer started again counts on from its finished rounds' steps (the round under
        # way is lost): what it still owed is due beyond those
        trained = (self.rows[-1].get("trainer_steps") or 0) if self.rows else 0
        owed = max(0.0, trainer.due - trained)
        trainer.due, trainer.started = rounds_steps(app) + owed, False
        for endpoint, times in self.recorder.get("times", {}).items():
            recorder.times[endpoint].extend(times)
        recorder.errors.extend(self.recorder.get("errors", []))
        recorder.conflicts += self.recorder.get("conflicts", 0)

    def save(self, work: Path) -> None:
        """Write it whole or not at all (a run stopped while writing keeps the last one)."""
        path = Path(work) / CHECKPOINT
        part = path.with_suffix(".part")
        part.write_bytes(pickle.dumps(self))
        os.replace(part, path)

    def mark_resumed(self) -> None:
        self.resumed.append({"at_image": len(self.rows), **run_record("load_average")})


def load(work: Path, argv: list[str]) -> Checkpoint | None:
    """The checkpoint in ``work`` (None: there is none). SystemExit when it was written by a
    run with other arguments: resuming it would mix two campaigns."""
    path = Path(work) / CHECKPOINT
    if not path.is_file():
        return None
    checkpoint = pickle.loads(path.read_bytes())
    if checkpoint.argv != argv:
        raise SystemExit(
            f"--resume: {path} is a campaign run with other arguments ({' '.join(checkpoint.argv)}); "
            "run it with those, or give another --work"
        )
    return checkpoint


def rounds_steps(app: Path) -> int:
    """The steps of the background trainer's finished rounds in the app folder ``app`` (its
    ``state.json``: what a trainer started again counts on from); 0 before any round."""
    import json

    steps = 0
    for state in Path(app).glob("models/*/trainer/state.json"):
        try:
            steps += int(json.loads(state.read_text()).get("total_steps", 0))
        except (ValueError, OSError):
            continue  # torn: the trainer starts afresh from it too
    return steps


def without_resume(argv: list[str]) -> list[str]:
    return [a for a in argv if a != "--resume"]
