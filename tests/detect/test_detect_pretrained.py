"""Click-to-detect on the pretrained encoder (skipped, naming the fix, without its files):
the training-free start, C3Det on the frozen maps, tiling and scaling, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewclick.metrics.detection import box_iou
from fewclick.models.detector import ClickDetectorNet, DetectorConfig
from fewclick.predict.detect import ClickDetector, DecodeConfig
from fewclick.predict.encoder import ImageEncoder
from fewclick.predict.features import image_features, training_tiles
from fewclick.predict.similar import SimilarityConfig, SimilarityDetector
from fewclick.train.detect_pretrained import (
    FeatureTile,
    PretrainedTrainConfig,
    pretrained_config,
    train_pretrained_detector,
)
from fewclick.types import Clicks, Detections, Objects

DISCS = [(60, 60), (160, 50), (260, 70), (90, 170), (210, 180)]  # red, class 0
SQUARES = [(130, 120), (40, 120), (280, 150)]  # blue, class 1


def _scene(seed: int = 0) -> tuple[np.ndarray, Objects]:
    """A textured grey field with five red discs (class 0) and three blue squares (class 1)."""
    rng = np.random.default_rng(seed)
    h, w = 240, 320
    image = rng.normal(120, 10, (h, w, 3)).clip(0, 255).astype(np.uint8)
    ys, xs = np.mgrid[:h, :w]
    boxes, labels = [], []
    for cx, cy in DISCS:
        image[(xs - cx) ** 2 + (ys - cy) ** 2 < 14**2] = (210, 40, 40)
        boxes.append([cx - 14, cy - 14, cx + 14, cy + 14])
        labels.append(0)
    for cx, cy in SQUARES:
        image[cy - 10 : cy + 10, cx - 10 : cx + 10] = (40, 60, 220)
        boxes.append([cx - 10, cy - 10, cx + 10, cy + 10])
        labels.append(1)
    return image, Objects(np.array(labels), np.array(boxes, np.float32))


def _clicks(xy, labels) -> Clicks:
    return Clicks(np.asarray(xy, np.float32), np.asarray(labels), np.ones(len(labels), bool))


@pytest.fixture(scope="module")
def encoder(sam_files, tmp_path_factory) -> ImageEncoder:
    return ImageEncoder(sam_files[0], threads=2, cache_dir=tmp_path_factory.mktemp("features"))


def test_a_small_image_is_enlarged_to_the_encoders_input_and_a_large_one_tiled(encoder):
    image, _ = _scene()
    (only,) = image_features(encoder, image, key="scene")
    assert only.scale == pytest.approx(1024 / 320) and only.valid_cells() == (192, 256)
    assert [m.shape[1] for m in only.maps()] == [64, 128, 160, 256]
    assert encoder.cached("scene") is not None, "one tile: SAM's own key, so masks share the encoding"
    wide = np.tile(image, (1, 5, 1))  # 1600 px wide: two 1024 px tiles
    tiles = image_features(encoder, wide, key="wide")
    assert len(tiles) == 2 and all(t.scale == 1.0 for t in tiles)
    assert encoder.cached("wide-0-0") is not None


def test_the_training_free_start_finds_what_looks_like_the_clicked_object(encoder):
    image, objects = _scene()
    detector = SimilarityDetector(2, encoder)
    detector.set_image(image)
    det = detector.predict(_clicks([DISCS[0]], [0]))
    clicked = det[det.scores == 1.0]
    assert len(clicked) == 1 and clicked.labels[0] == 0
    assert box_iou(clicked.boxes, objects.boxes[:1])[0, 0] >= 0.5, "the clicked disc comes back"
    found = det[(det.scores < 1.0) & (det.labels == 0)]
    iou = box_iou(objects.boxes[1:5], found.boxes) if len(found) else np.zeros((4, 1))
    assert (iou.max(1) >= 0.5).sum() >= 3, "most other red discs are proposed"
    on_disc = box_iou(found.boxes, objects.boxes[1:5]).max(1) >= 0.5
    assert found.scores[on_disc].min() > found.scores[~on_disc].max(initial=0), "discs rank above the rest"


def test_look_alikes_score_at_the_relative_bar_or_above_and_the_limit_keeps_the_best(encoder):
    image, _ = _scene()
    detector = SimilarityDetector(2, encoder)
    detector.set_image(image)
    clicks = _clicks([DISCS[0]], [0])
    found = detector.predict(clicks)
    alike = found[found.scores < 1.0]
    assert len(alike) >= 2, "the scene's other red discs"
    assert alike.scores.min() >= detector.config.relative
    one = detector.predict(clicks, limit=1)
    assert len(one) == 2, "the best look-alike and the clicked disc"
    assert np.allclose(one.boxes[0], alike.boxes[np.argmax(alike.scores)])
    assert len(detector.predict(clicks, limit=0)) == 1, "only the clicked disc"
    with pytest.raises(ValueError, match="limit >= 0"):
        detector.predict(clicks, limit=-1)


def test_nothing_nearly_as_like_the_click_as_itself_gives_only_the_click(encoder):
    """When no peak clears the relative bar the answer is the clicked object alone, not the
    best of what is left."""
    image, _ = _scene()
    detector = SimilarityDetector(2, encoder, config=SimilarityConfig(relative=1.5))
    detector.set_image(image)
    found = detector.predict(_clicks([DISCS[0]], [0]))
    assert len(found) == 1 and found.scores[0] == 1.0


def test_clicks_of_two_classes_compete_and_pool_per_class(encoder):
    image, objects = _scene()
    detector = SimilarityDetector(2, encoder)
    detector.set_image(image)
    det = detector.predict(_clicks([DISCS[0], SQUARES[0]], [0, 1]))
    squares = det[(det.labels == 1) & (det.scores < 1.0)]
    assert len(squares) and (box_iou(objects.boxes[6:], squares.boxes).max(1) >= 0.5).any()
    discs = det[det.labels == 0]
    assert not (box_iou(discs.boxes, objects.boxes[5:]).max(1) >= 0.5).any()


def test_a_click_on_background_returns_its_own_box_and_nothing_else(encoder):
    image = np.full((240, 320, 3), 128, np.uint8)  # no object anywhere
    detector = SimilarityDetector(1, encoder)
    detector.set_image(image)
    det = detector.predict(_clicks([(100, 100)], [0]), sizes={0: 20.0})
    assert len(det) == 1 and det.scores[0] == 1.0
    assert np.allclose(det.boxes[0], [90, 90, 110, 110])


def test_bad_clicks_name_the_problem(encoder):
    image, _ = _scene()
    detector = SimilarityDetector(2, encoder)
    with pytest.raises(RuntimeError, match="set_image"):
        detector.predict(_clicks([(10, 10)], [0]))
    detector.set_image(image)
    with pytest.raises(ValueError, match="outside the 320 x 240 image"):
        detector.predict(_clicks([(400, 10)], [0]))
    with pytest.raises(ValueError, match="class id 5"):
        detector.predict(_clicks([(10, 10)], [5]))


@pytest.fixture(scope="module")
def trained(encoder, tmp_path_factory):
    tiles = []
    for seed in (0, 1):
        image, objects = _scene(seed)
        tiles += [FeatureTile(*t) for t in training_tiles(encoder, image, objects)]
    out = tmp_path_factory.mktemp("pretrained")
    path = train_pretrained_detector(
        tiles,
        ["disc", "square"],
        out,
        pretrained_config(2),
        PretrainedTrainConfig(steps=12),
        log=lambda _: None,
    )
    return path


def test_c3det_on_pretrained_maps_trains_saves_and_serves(trained, encoder):
    ckpt = torch.load(trained, weights_only=False)
    assert ckpt["config"]["backbone"] == "pretrained" and ckpt["step"] == 12
    assert set(ckpt["sizes"]) == {0, 1}, "the sizes each class showed, for the size check"
    detector = ClickDetector.load(trained, encoder=encoder)
    assert detector.method == "pretrained"
    image, objects = _scene()
    detector.set_image(image)
    det = detector.predict(_clicks([DISCS[2]], [0]))
    clicked = det[det.scores == 1.0]
    assert len(clicked) == 1 and clicked.labels[0] == 0
    # the clicked detection sits on the clicked disc, in image pixels (not the encoder's)
    centre = (clicked.boxes[0, :2] + clicked.boxes[0, 2:]) / 2
    assert np.abs(centre - DISCS[2]).max() <= 6


def test_only_the_neck_and_heads_have_weights_the_encoder_stays_outside(trained):
    net = ClickDetectorNet(pretrained_config(2))
    names = {n.split(".")[0] for n, _ in net.named_parameters()}
    assert names == {"backbone", "late_fusion", "head"}
    assert sum(p.numel() for p in net.parameters()) < 500_000


def test_proposals_far_outside_a_class_sizes_are_dropped_but_not_a_clicked_one():
    net = ClickDetectorNet(DetectorConfig(num_classes=1))
    detector = ClickDetector(net, ["cell"], DecodeConfig(size_factor=3.0), sizes={0: [10.0, 20.0]})
    boxes = np.array([[0, 0, 15, 15], [0, 0, 300, 300], [0, 0, 2, 2], [0, 0, 400, 400]], np.float32)
    det = Detections(boxes, np.array([0.9, 0.86, 0.5, 1.0], np.float32), np.zeros(4, np.int64))
    kept = detector._plausible(det, clicked=1, scale=1.0)
    assert kept.boxes.tolist() == [[0, 0, 15, 15], [0, 0, 400, 400]], (
        "the whole-image box goes; the click stays"
    )
    unlimited = ClickDetector(net, ["cell"], DecodeConfig(size_factor=None), sizes={0: [10.0, 20.0]})
    assert len(unlimited._plausible(det, clicked=1, scale=1.0)) == 4


def test_bad_configurations_and_training_data_are_refused(encoder, tmp_path):
    with pytest.raises(ValueError, match="needs the pretrained image encoder"):
        ClickDetector(ClickDetectorNet(pretrained_config(1)), ["a"])
    with pytest.raises(ValueError, match="early fusion"):
        DetectorConfig(num_classes=1, method="early-fusion", backbone="pretrained")
    with pytest.raises(ValueError, match="unknown backbone"):
        DetectorConfig(num_classes=1, backbone="resnet")
    image, objects = _scene()
    tile = FeatureTile(*training_tiles(encoder, image, objects)[0])
    empty = FeatureTile(tile.maps, Objects.empty(), tile.valid)
    with pytest.raises(ValueError, match="no training tile has an object"):
        train_pretrained_detector([empty], ["a", "b"], tmp_path, pretrained_config(2))
    wrong = FeatureTile([m[:10] for m in tile.maps], tile.objects, tile.valid)
    with pytest.raises(ValueError, match="channels"):
        train_pretrained_detector([wrong], ["a", "b"], tmp_path, pretrained_config(2))
    with pytest.raises(ValueError, match="class names"):
        train_pretrained_detector([tile], ["a"], tmp_path, pretrained_config(2))


def test_a_class_with_a_single_example_trains(encoder, tmp_path):
    image, objects = _scene()
    one_square = objects[[0, 1, 2, 3, 4, 5]]  # one blue square only
    tiles = [FeatureTile(*t) for t in training_tiles(encoder, image, one_square)]
    path = train_pretrained_detector(
        tiles,
        ["disc", "square"],
        tmp_path,
        pretrained_config(2),
        PretrainedTrainConfig(steps=3),
        log=lambda _: None,
    )
    detector = ClickDetector.load(path, encoder=encoder)
    detector.set_image(image)
    det = detector.predict(_clicks([SQUARES[1]], [1]))
    assert (det.labels[det.scores == 1.0] == 1).all()


def test_a_class_never_trained_on_is_served_by_the_training_free_start(encoder, tmp_path):
    """hit_uav's first 20 images (by name) hold no bicycle: a detector trained on them has
    untrained heads for that class, so its clicks go to the training-free start."""
    image, objects = _scene()
    discs_only = objects[objects.labels == 0]
    tiles = [FeatureTile(*t) for t in training_tiles(encoder, image, discs_only)]
    path = train_pretrained_detector(
        tiles, ["disc", "square"], tmp_path, pretrained_config(2), PretrainedTrainConfig(steps=3), log=str
    )
    detector = ClickDetector.load(path, encoder=encoder)
    assert detector.unseen_classes == [1]
    detector.set_image(image)
    clicks = _clicks([DISCS[0], SQUARES[0]], [0, 1])
    det = detector.predict(clicks)
    similar = SimilarityDetector(2, encoder)
    similar.set_image(image)
    expected = similar.predict(clicks[np.array([False, True])])
    squares = det[det.labels == 1]
    assert sorted(squares.boxes.tolist()) == sorted(expected.boxes.tolist()), "the square clicks' answer"
    assert np.allclose(squares.points, (squares.boxes[:, :2] + squares.boxes[:, 2:]) / 2)
    assert box_iou(squares[squares.scores == 1.0].boxes, objects.boxes[5:6])[0, 0] >= 0.5
    assert sorted(det.labels[det.scores == 1.0].tolist()) == [0, 1], "both clicked objects come back"
    no_square_click = detector.predict(_clicks([DISCS[0]], [0]))
    assert not (no_square_click.labels == 1).any(), "no proposals of a class the heads never learnt"
    plain = ClickDetector.load(path, DecodeConfig(unseen_to_training_free=False), encoder=encoder)
    assert plain.unseen_classes == []

    # the next image: the training-free start (kept across images) answers on that image
    flipped = np.ascontiguousarray(image[:, ::-1])
    w = image.shape[1]
    detector.set_image(flipped)
    square = detector.predict(_clicks([(w - SQUARES[0][0], SQUARES[0][1])], [1]))
    clicked = square[square.scores == 1.0]
    assert len(clicked) == 1 and clicked.labels[0] == 1
    mirrored = objects.boxes[5:6].copy()
    mirrored[:, [0, 2]] = w - mirrored[:, [2, 0]]
    assert box_iou(clicked.boxes, mirrored)[0, 0] >= 0.5, "the square of the flipped image, not the first"


def test_a_click_in_a_pale_centre_asks_sam_again_within_the_class_size(encoder):
    """A red blood cell is a ring: a click in its pale centre makes SAM take the background.
    A box of the class's known size around the click then finds the cell (here a stand-in
    SAM answers the background to the click alone and the cell to the click and box)."""
    image, _ = _scene()
    cell = np.zeros(image.shape[:2], bool)
    cell[46:94, 36:84] = True

    class Sam:
        prompts = []

        def set_embedding(self, embedding):
            pass

        def predict(self, box=None, clicks=None):
            self.prompts.append(box)
            return type("Prediction", (), {"mask": np.ones_like(cell) if box is None else cell, "score": 0.9})

    sam = Sam()
    detector = SimilarityDetector(2, encoder, sam=sam)
    detector.set_image(image)
    det = detector.predict(_clicks([(60, 70)], [0]), sizes={0: 80.0})
    assert sam.prompts[0] is None and sam.prompts[1] == [12.0, 22.0, 108.0, 118.0]
    assert det[det.scores == 1.0].boxes.tolist() == [[36, 46, 84, 94]]
    unknown = Sam()
    unknown.prompts = []
    without = SimilarityDetector(2, encoder, sam=unknown)
    without.set_image(image)
    det = without.predict(_clicks([(60, 70)], [0]))  # no known size: no guess, a lone box
    assert unknown.prompts == [None]
    assert det[det.scores == 1.0].boxes.tolist() == [[44, 54, 76, 86]] and len(det) == 1


def test_a_whole_image_box_is_not_offered_after_a_few_images_of_cells():
    """bccd after 5 finished images: white cells up to 250 px, a proposal over the whole
    640 x 480 image at score 0.86 (what Enter would accept) is dropped by default."""
    net = ClickDetectorNet(DetectorConfig(num_classes=3))
    detector = ClickDetector(net, ["Platelets", "RBC", "WBC"], sizes={2: [120.0, 250.0]})
    boxes = np.array([[0, 0, 640, 480], [100, 100, 300, 320]], np.float32)
    det = Detections(boxes, np.array([0.86, 0.7], np.float32), np.array([2, 2]))
    assert detector._plausible(det, clicked=0, scale=1.0).boxes.tolist() == [[100, 100, 300, 320]]
