import numpy as np
import pytest
import torch

from fewclick.data.synthetic import make_dataset
from fewclick.models.detector import ClickDetectorNet, DetectorConfig, load_detector
from fewclick.predict.detect import ClickDetector, DecodeConfig, decode_outputs
from fewclick.protocols.detect import (
    GroundTruthPredictor,
    ProtocolConfig,
    clicks_after,
    run_protocol,
    session_clicks,
)
from fewclick.train.detect import TrainConfig, detector_config_for, train_detector
from fewclick.types import Click, Clicks, Objects

TINY = dict(widths=(8, 8, 16), blocks=(1, 1, 1), features=16, head_width=16)
REACH = (DecodeConfig().click_radius + 1) * 4 * np.sqrt(2)  # px from a click to the cell it selects


@pytest.fixture(scope="module")
def scenes():
    ds = make_dataset("aerial", 2, seed=11, width=128, height=128)
    return ds, [(r.extra["pixels"], r.objects) for r in ds.images]


@pytest.fixture(scope="module")
def checkpoint(scenes, tmp_path_factory):
    ds, _ = scenes
    out = tmp_path_factory.mktemp("model")
    cfg = detector_config_for(ds, "c3det", **TINY)
    return train_detector(
        ds, out, cfg, TrainConfig(steps=2, crop=64, batch_size=2, warmup_steps=1), log=lambda _: None
    )


def test_predict_before_set_image_says_what_to_do(checkpoint):
    with pytest.raises(RuntimeError, match="call set_image"):
        ClickDetector.load(checkpoint).predict([])


def test_predict_handles_zero_duplicate_grayscale_and_16_bit(checkpoint, scenes):
    det = ClickDetector.load(checkpoint)
    image = scenes[1][0][0]
    det.set_image(image.mean(2).astype(np.uint8))  # grayscale
    assert det.image_size == (128, 128)
    none = det.predict(None)
    assert none.rboxes is not None and (none.scores >= 0.05).all()
    det.set_image(image.astype(np.uint16) * 200)  # 16-bit
    twice = det.predict([Click(40, 40, 1), Click(40, 40, 1)])
    assert len(twice) >= 1


def test_every_click_comes_back_as_a_detection_of_its_class(checkpoint, scenes):
    det = ClickDetector.load(checkpoint)
    image, objects = scenes[1][0]
    det.set_image(image)
    clicks = [
        Click(float(x), float(y), int(c)) for (x, y), c in zip(objects.rboxes[:5, :2], objects.labels[:5])
    ]
    out = det.predict(clicks)
    for click in clicks:
        # The enforced detection sits at the class's strongest cell within 2 cells of the click.
        near = np.hypot(out.points[:, 0] - click.x, out.points[:, 1] - click.y) <= REACH
        assert (out.labels[near] == click.label).any() and out.scores[near].max() == pytest.approx(1.0)
    # Undo: a snapshot taken now, clicks cleared, the snapshot restored: the same clicks
    # come back and give the same detections
    state = det.get_state()
    det.predict([])
    assert len(det.get_state()["clicks"]) == 0
    det.set_state(state)
    restored = det.get_state()["clicks"]
    np.testing.assert_array_equal(restored.xy, [[c.x, c.y] for c in clicks])
    np.testing.assert_array_equal(restored.labels, [c.label for c in clicks])
    again = det.predict(restored)
    np.testing.assert_array_equal(again.boxes, out.boxes)
    np.testing.assert_array_equal(again.labels, out.labels)


@pytest.mark.parametrize(
    ("click", "message"),
    [
        (Click(-1, 5, 0), "outside the 128 x 128 image"),
        (Click(5, 128, 0), "outside"),
        (Click(5, 5, 7), "class id 7; expected 0..2"),
    ],
)
def test_bad_clicks_name_the_problem(checkpoint, scenes, click, message):
    det = ClickDetector.load(checkpoint)
    det.set_image(scenes[1][0][0])
    with pytest.raises(ValueError, match=message):
        det.predict([click])


def test_large_images_are_tiled_and_merged(checkpoint, scenes):
    net, ckpt = load_detector(checkpoint)
    det = ClickDetector(net, ckpt["classes"], tile_size=64, overlap=16)
    image = np.tile(scenes[1][0][0], (1, 2, 1))  # 128 x 256
    det.set_image(image)
    assert len(det._tiles) == 3 * 5  # rows at y 0, 48, 64; columns at x 0, 48, ..., 192
    out = det.predict([Click(200, 100, 0)])
    assert ((out.points[:, 0] > 150) & (out.labels == 0) & (out.scores == 1)).any()


def test_bad_model_files_are_named(tmp_path, checkpoint):
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="junk.pt: not a readable fewclick model"):
        ClickDetector.load(tmp_path / "junk.pt")
    ckpt = torch.load(checkpoint, weights_only=False)
    torch.save({**ckpt, "version": 99}, tmp_path / "future.pt")
    with pytest.raises(ValueError, match="version 99"):
        ClickDetector.load(tmp_path / "future.pt")
    torch.save({**ckpt, "config": {**ckpt["config"], "features": 32}}, tmp_path / "mismatch.pt")
    with pytest.raises(ValueError, match="weights do not fit"):
        ClickDetector.load(tmp_path / "mismatch.pt")
    with pytest.raises(FileNotFoundError, match="no such model file"):
        ClickDetector.load(tmp_path / "missing.pt")


def test_passthrough_relabels_the_box_under_the_click():
    net = ClickDetectorNet(DetectorConfig(num_classes=2, method="plain", **TINY)).eval()
    with torch.no_grad():
        net.head.heatmap.bias.fill_(-10)
        net.head.heatmap.bias[0] = 3.0  # everything looks like class 0
    det = ClickDetector(net, ["a", "b"], DecodeConfig(passthrough=True, enforce_clicks=False))
    det.set_image(np.zeros((64, 64, 3), np.uint8))
    out = det.predict([Click(30, 30, 1)])
    near = np.hypot(out.points[:, 0] - 30, out.points[:, 1] - 30) <= REACH
    assert (out.labels[near] == 1).sum() == 1 and (out.labels[~near] == 0).all()


def test_a_clicked_object_comes_back_once():
    # 16 x 16 cells of 4 px; every box is 40 px wide. Peaks: class 0 under the click,
    # class 1 three cells to its right (a second answer for the same object), class 1 far away.
    heat = torch.full((1, 2, 16, 16), -10.0)
    heat[0, 0, 8, 8], heat[0, 1, 8, 11], heat[0, 1, 2, 2] = 2.0, 3.0, 3.0
    outputs = {
        "heatmap": heat,
        "offset": torch.full((1, 2, 16, 16), 0.5),
        "size": torch.full((1, 2, 16, 16), float(np.log(10))),
    }
    clicks = Clicks.from_list([Click(34, 34, 0)])
    out = decode_outputs(outputs, clicks, 4, DecodeConfig(), 64, 64, oriented=False, points_only=False)
    assert sorted(zip(out.labels.tolist(), out.points.round().tolist())) == [(0, [34, 34]), (1, [10, 10])]
    kept = decode_outputs(outputs, clicks, 4, DecodeConfig(duplicate_iou=0.9), 64, 64, False, False)
    assert len(kept) == 3  # the duplicate overlaps the clicked box at IoU 0.54


def test_sessions_click_without_replacement_per_patch_and_prefixes_grow():
    objs = Objects(np.arange(30) % 3, [[x, 5, x + 4, 9] for x in range(0, 1200, 40)])
    per_patch = session_clicks(objs, 1200, 20, np.random.default_rng(0), ProtocolConfig())
    assert len(per_patch) == 2  # 1024 px patches, 200 px overlap, over 1200 px
    for centres, _ in per_patch:
        assert len(np.unique(centres[:, 0])) == len(centres)
    assert len(clicks_after(per_patch, 3)) == 6 and len(clicks_after(per_patch, 0)) == 0
    np.testing.assert_array_equal(clicks_after(per_patch, 2).xy[:2], per_patch[0][0][:2])


def test_protocol_with_the_ground_truth_oracle(scenes):
    _, items = scenes
    perfect = run_protocol(
        GroundTruthPredictor(items),
        items,
        3,
        ProtocolConfig(sessions=2, ks=(0, 1, 5)),
        oriented=True,
        progress=False,
    )
    assert perfect.map_mean == pytest.approx([1.0, 1.0, 1.0]) and perfect.map_std == pytest.approx([0, 0, 0])
    clicked = run_protocol(
        GroundTruthPredictor(items, only_clicked=True),
        items,
        3,
        ProtocolConfig(sessions=3, ks=(0, 2, 10)),
        progress=False,
    )
    assert clicked.map_mean[0] == 0 and clicked.map_mean[0] < clicked.map_mean[1] < clicked.map_mean[2]
    assert clicked.clicked_recall[1:] == pytest.approx([1.0, 1.0])
    rng = np.random.default_rng(0)
    first, second = (session_clicks(items[0][1], 128, 128, rng, ProtocolConfig())[0][0] for _ in range(2))
    assert not np.array_equal(first, second), "sessions draw different orders"


def test_protocol_on_points_only_data():
    objs = Objects([0, 1], [[np.nan] * 4] * 2, points=[[10, 10], [40, 40]])
    items = [(np.zeros((64, 64, 3), np.uint8), objs)]
    result = run_protocol(
        GroundTruthPredictor(items),
        items,
        2,
        ProtocolConfig(sessions=1, ks=(0, 1)),
        points_only=True,
        progress=False,
    )
    assert result.map_mean == pytest.approx([1.0, 1.0])


def test_clicks_container_errors_are_value_errors():
    with pytest.raises(ValueError):
        Clicks(np.zeros((1, 2)), [0, 1], [True])


def test_a_detector_at_input_scale_2_sees_the_image_enlarged_twice(checkpoint, scenes):
    """The same network given the image at input scale 2, and given the image resized twice
    by the same code at scale 1: the same detections, in the one's pixels and the other's."""
    from fewclick.models.pixels import resized

    net, ckpt = load_detector(checkpoint)
    image = scenes[1][0][0]
    click = [Click(40.0, 50.0, 0)]
    at2 = ClickDetector(net, ckpt["classes"], input_scale=2.0)
    at2.set_image(image)
    big = ClickDetector(net, ckpt["classes"])
    big.set_image(resized(image, 2.0))
    mine, theirs = at2.predict(click), big.predict([Click(80.0, 100.0, 0)])
    assert len(mine) == len(theirs) > 0
    np.testing.assert_allclose(mine.boxes * 2, theirs.boxes, atol=1e-3)
    np.testing.assert_allclose(mine.scores, theirs.scores, atol=1e-5)


def test_a_bad_input_scale_is_refused(checkpoint):
    net, ckpt = load_detector(checkpoint)
    with pytest.raises(ValueError, match="positive input scale"):
        ClickDetector(net, ckpt["classes"], input_scale=0.0)
