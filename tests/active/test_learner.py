"""The fast learner (issue 68, item 2): per class a scorer and a box regressor over frozen
features of SAM's candidates, refit on the finished images in about a second."""

from __future__ import annotations

import numpy as np

from fewclick.active.sources import Learned, LookAlikes
from fewclick.metrics.detection import box_iou
from fewclick.predict.learner import FastLearner, LearnerConfig, convention
from fewclick.predict.proposals import Proposals
from fewclick.types import Objects

DIM = 8


def _image(rng, grow: float, objects: int = 6, clutter: int = 6):
    """Candidates of one image: ``objects`` cells (feature direction 0) each boxed by SAM
    ``grow`` px inside the person's box on every side, and ``clutter`` others (direction 1)."""
    boxes, vectors, theirs = [], [], []
    for k in range(objects + clutter):
        x, y = 60.0 * k + rng.uniform(0, 5), rng.uniform(0, 200)
        side = rng.uniform(28, 32)
        sam = [x, y, x + side, y + side]
        v = np.zeros(DIM, np.float32)
        v[0 if k < objects else 1] = 1.0
        v += rng.normal(0, 0.05, DIM).astype(np.float32)
        boxes.append(sam)
        vectors.append(v / np.linalg.norm(v))
        if k < objects:
            theirs.append([x - grow, y - grow, x + side + grow, y + side + grow])
    boxes = np.asarray(boxes, np.float32)
    masks = [(int(b[0]), int(b[1]), np.ones((int(b[3] - b[1]), int(b[2] - b[0])), bool)) for b in boxes]
    found = Proposals(
        boxes,
        np.full(len(boxes), 0.9, np.float32),
        np.asarray(vectors),
        masks,
        np.zeros(DIM, np.float32),
        (400, 800),
    )
    gt = Objects(np.zeros(objects, np.int64), np.asarray(theirs, np.float32))
    return found, gt


def test_the_learner_keeps_the_objects_candidates_and_moves_them_to_the_persons_boxes():
    rng = np.random.default_rng(0)
    finished = [_image(rng, grow=6.0) for _ in range(3)]
    learner = FastLearner(LearnerConfig(positive_iou=0.4)).fit(finished)
    found, gt = _image(rng, grow=6.0)
    shown = learner.predict(found)
    sure = shown[shown.scores >= 0.5]
    assert len(sure) == len(gt), "the six cells, not the clutter"
    iou = box_iou(sure.boxes, gt.boxes).max(1)
    assert (iou >= 0.85).all(), iou  # SAM's boxes alone are at IoU ~0.5 from the person's
    assert (box_iou(found.boxes[:6], gt.boxes).max(1) < 0.7).all()
    assert learner.fit_s < 5.0


def test_a_person_who_changes_convention_is_followed_by_the_recent_images():
    rng = np.random.default_rng(1)
    old = [_image(rng, grow=0.0) for _ in range(3)]
    new = [_image(rng, grow=8.0) for _ in range(6)]
    learner = FastLearner(LearnerConfig(positive_iou=0.4, half_life=2.0)).fit(old + new)
    found, gt = _image(rng, grow=8.0)
    shown = learner.predict(found)
    sure = shown[shown.scores >= 0.5]
    assert np.median(box_iou(sure.boxes, gt.boxes).max(1)) >= 0.8


def test_the_convention_said_to_the_person_shows_a_change_in_the_newest_images():
    """What the page says of a class the learner serves: the person's boxes against SAM's,
    over the images it learnt from and over the newest, apart when the person changed."""
    rng = np.random.default_rng(2)
    old = [_image(rng, grow=0.0) for _ in range(6)]
    new = [_image(rng, grow=8.0) for _ in range(3)]
    said = convention(old + new, positive_iou=0.4, recent=3)
    assert set(said) == {0} and said[0]["objects"] == 9 * 6
    assert said[0]["wide"] == said[0]["tall"] == 1.0, "two thirds of the images boxed on SAM's outline"
    assert 1.4 < said[0]["recent_wide"] < 1.7 and 1.4 < said[0]["recent_tall"] < 1.7, "16 px more on ~30 px"
    assert "recent_wide" not in convention(old, positive_iou=0.4, recent=0)[0], "no newest images, no claim"


def test_a_class_with_one_object_or_no_negative_has_no_model_and_shows_nothing():
    rng = np.random.default_rng(2)
    found, gt = _image(rng, grow=0.0, objects=1, clutter=3)
    learner = FastLearner().fit([(found, gt)])
    assert learner.models == {} and len(learner.predict(found)) == 0
    assert len(FastLearner().fit([]).predict(found)) == 0


def test_the_look_alikes_source_learns_exemplars_from_the_finished_images():
    rng = np.random.default_rng(3)
    finished = [_image(rng, grow=0.0) for _ in range(2)]
    source = LookAlikes().fit(finished)
    assert set(source.exemplars) == {0} and len(source.exemplars[0][0]) == 12
    found, _ = _image(rng, grow=0.0)
    shown = source.propose(found)
    assert set(np.asarray(shown.labels).tolist()) == {0}
    top = shown.boxes[np.argsort(-shown.scores)[:6]]
    assert (box_iou(top, found.boxes[:6]).max(1) >= 0.99).all(), "the cells rank above the clutter"
    assert len(Learned().propose(found)) == 0, "an unfit learner shows nothing"
