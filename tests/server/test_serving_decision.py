"""What serves each class, read once per request (issue 68, item 4): from the version's test,
then train record, which classes the look-alikes and the fast learner serve, and whether the
images' SAM proposals are made as they open."""

from fewclick.server.db import ModelVersion
from fewclick.server.serving import Decision


def _decision(sources: dict | None, thresholds: dict | None = None, method: str = "imagenet") -> Decision:
    record = None if sources is None else {"sources": sources, "learner_thresholds": thresholds or {}}
    metrics = {"prequential": record} if record else {}
    version = ModelVersion(version=1, method=method, path="v1.pt", metrics=metrics)
    return Decision((version,), None, version)


def test_each_class_is_read_off_the_version_s_record():
    made = _decision({"0": "trainer", "1": "look-alikes", "2": "learner", "3": "none"}, {"2": 0.4})
    assert made.model is not None and made.look_alikes == (1,) and made.learner == ((2, 0.4),)


def test_proposals_are_made_while_some_class_is_not_the_trainer_s():
    assert Decision((), None, None).proposes, "before any version: the look-alikes"
    assert _decision({"0": "trainer", "1": "none"}).proposes, "nothing serves class 1 yet: score the others"
    assert _decision({"0": "trainer", "1": "learner"}, {"1": 0.5}).proposes
    assert not _decision({"0": "trainer", "1": "trainer"}).proposes, "the trainer serves every class"
    assert not _decision(None).proposes, "a version from before the record named sources"
    assert _decision({"0": "trainer"}, method="training-free").proposes, "the training-free start"
