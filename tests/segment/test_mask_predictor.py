import numpy as np
import pytest
import torch
from torch import nn

from fewclick import crops as sc
from fewclick.metrics.segmentation import mask_iou
from fewclick.models.masknet import MaskNet, MaskNetConfig, load_masknet, save_masknet
from fewclick.predict.segment import MaskPredictor
from fewclick.types import Clicks

TINY = dict(widths=(4, 8, 8), crop=32, inner=16)


class EchoChannel(nn.Module):
    """A stand-in network whose mask is one of its input channels: the box (M_b) or the
    positive click disks (M_b+c). It tests the crop, click and paste plumbing end to end."""

    def __init__(self, config: MaskNetConfig, channel: int) -> None:
        super().__init__()
        self.config, self.channel = config, channel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x[:, self.channel : self.channel + 1] - 0.5) * 20


def _clicks(xy, positive) -> Clicks:
    return Clicks(np.array(xy, np.float32), np.zeros(len(xy), np.int64), np.array(positive, bool))


@pytest.fixture
def echo() -> MaskPredictor:
    m_b = EchoChannel(MaskNetConfig(crop=128, inner=64), channel=3)
    m_bc = EchoChannel(MaskNetConfig(clicks="disks", crop=128, inner=64), channel=4)
    predictor = MaskPredictor(m_b, m_bc)
    predictor.set_image(np.zeros((100, 120, 3), np.uint8))
    return predictor


@pytest.fixture
def tiny_folder(tmp_path):
    torch.manual_seed(0)
    save_masknet(tmp_path / "m_b.pt", MaskNet(MaskNetConfig(**TINY)))
    save_masknet(tmp_path / "m_bc.pt", MaskNet(MaskNetConfig(clicks="disks", **TINY)))
    return tmp_path


def test_without_clicks_m_b_gives_the_mask_in_image_pixels(echo):
    pred = echo.predict([20, 30, 50, 45])
    box = np.zeros((100, 120), bool)
    box[30:45, 20:50] = True
    assert pred.mask.shape == (100, 120) and pred.mask.dtype == bool
    assert mask_iou(pred.mask, box) > 0.95
    assert 0.99 < pred.score <= 1.0 and pred.quality is None


def test_with_clicks_m_b_c_sees_each_click_at_its_pixel(echo):
    pred = echo.predict([20, 30, 50, 45], _clicks([[25, 40], [45, 33]], [True, False]))
    assert pred.mask[40, 25] and not pred.mask[33, 45]
    ys, xs = np.nonzero(pred.mask)
    assert abs(xs.mean() - 25) < 0.5 and abs(ys.mean() - 40) < 0.5


def test_a_later_contradicting_click_on_the_same_pixel_wins(echo):
    box = [20, 30, 50, 45]
    both = echo.predict(box, _clicks([[25, 40], [25.2, 39.9], [45, 33]], [True, False, True]))
    assert not both.mask[40, 25] and both.mask[33, 45]


def test_a_new_click_on_the_same_box_does_not_crop_again(echo, monkeypatch):
    calls = []
    real = sc.crop_image
    monkeypatch.setattr(sc, "crop_image", lambda *a: calls.append(1) or real(*a))
    echo.predict([10, 10, 40, 40])
    echo.predict([10, 10, 40, 40], _clicks([[20, 20]], [True]))
    echo.predict([10, 10, 40, 40], _clicks([[20, 20], [30, 30]], [True, False]))
    assert len(calls) == 1
    echo.predict([11, 10, 40, 40])
    assert len(calls) == 2


def test_a_box_partly_outside_is_clipped_and_the_state_is_the_mask(echo):
    pred = echo.predict([-30, -20, 40, 30])
    assert pred.mask[0, 0] and pred.mask[29, 39] and not pred.mask[31, 41]
    np.testing.assert_array_equal(pred.state, pred.mask)


@pytest.mark.parametrize(
    ("box", "clicks", "match"),
    [
        ([200, 200, 300, 300], None, "outside"),
        ([10, 10, 10, 30], None, "degenerate"),
        ([10, np.nan, 20, 30], None, "finite"),
        ([10, 10, 20], None, "4 finite numbers"),
        ([10, 10, 40, 40], [[130, 20]], "click 0 at \\(130, 20\\) is outside"),
        ([10, 10, 40, 40], [[5, -1]], "outside"),
    ],
)
def test_bad_boxes_and_clicks_raise_value_errors(echo, box, clicks, match):
    with pytest.raises(ValueError, match=match):
        echo.predict(box, None if clicks is None else _clicks(clicks, [True] * len(clicks)))


def test_empty_and_full_previous_masks_are_accepted_and_a_wrong_shape_is_not(echo):
    for previous in (np.zeros((100, 120), bool), np.ones((100, 120), bool)):
        assert echo.predict([10, 10, 40, 40], previous=previous).mask.any()
    with pytest.raises(ValueError, match="previous \\(the last mask\\) of shape"):
        echo.predict([10, 10, 40, 40], previous=np.zeros((5, 5), bool))
    with pytest.raises(ValueError, match="the model backend needs a box"):
        echo.predict(None, _clicks([[20, 20]], [True]))


def test_predict_before_set_image_says_what_to_do(tiny_folder):
    with pytest.raises(RuntimeError, match="set_image"):
        MaskPredictor.load(tiny_folder).predict([0, 0, 5, 5])


def test_clicks_without_an_m_b_c_model_are_refused(tiny_folder):
    (tiny_folder / "m_bc.pt").unlink()
    predictor = MaskPredictor.load(tiny_folder)
    predictor.set_image(np.zeros((40, 40, 3), np.uint8))
    assert predictor.predict([5, 5, 20, 20]).mask.shape == (40, 40)
    with pytest.raises(ValueError, match="no M_b\\+c model"):
        predictor.predict([5, 5, 20, 20], _clicks([[10, 10]], [True]))


def test_grayscale_and_16_bit_images_give_the_masks_of_their_rgb8_version(tiny_folder):
    predictor = MaskPredictor.load(tiny_folder)
    gray16 = (np.random.default_rng(0).random((48, 64)) * 65535).astype(np.uint16)
    gray16[0, 0], gray16[0, 1] = 0, 65535
    rgb8 = np.repeat(np.round(gray16 / 65535 * 255).astype(np.uint8)[..., None], 3, axis=2)
    clicks = _clicks([[20, 20]], [False])
    results = []
    for image in (gray16, rgb8, rgb8[..., 0]):
        predictor.set_image(image)
        results.append(
            [predictor.predict([10, 12, 40, 30]).mask, predictor.predict([10, 12, 40, 30], clicks).mask]
        )
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_load_names_the_missing_corrupt_or_foreign_file(tmp_path, tiny_folder):
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        MaskPredictor.load(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="m_b.pt: no such model file"):
        MaskPredictor.load(empty)
    (tiny_folder / "m_bc.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="m_bc.pt: not a readable fewclick model"):
        MaskPredictor.load(tiny_folder)
    torch.save({"kind": "click-detector", "version": 1}, tiny_folder / "m_bc.pt")
    with pytest.raises(ValueError, match="expected a fewclick mask-net checkpoint, got 'click-detector'"):
        MaskPredictor.load(tiny_folder)


def test_load_refuses_other_versions_and_weights_that_do_not_fit(tiny_folder):
    ckpt = torch.load(tiny_folder / "m_b.pt", weights_only=False)
    torch.save({**ckpt, "version": 99}, tiny_folder / "m_b.pt")
    with pytest.raises(ValueError, match="version 99 is not 1"):
        load_masknet(tiny_folder / "m_b.pt")
    torch.save({**ckpt, "config": {**ckpt["config"], "widths": (4, 8, 16)}}, tiny_folder / "m_b.pt")
    with pytest.raises(ValueError, match="weights do not fit"):
        load_masknet(tiny_folder / "m_b.pt")


def test_models_of_the_wrong_kind_or_crop_are_refused():
    m_b, m_bc = MaskNet(MaskNetConfig(**TINY)), MaskNet(MaskNetConfig(clicks="disks", **TINY))
    with pytest.raises(ValueError, match="m_b to be a model without clicks"):
        MaskPredictor(m_bc, m_bc)
    with pytest.raises(ValueError, match="m_bc to be a model with click channels"):
        MaskPredictor(m_b, m_b)
    other = MaskNet(MaskNetConfig(clicks="disks", widths=(4, 8, 8), crop=64, inner=16))
    with pytest.raises(ValueError, match="same crop size"):
        MaskPredictor(m_b, other)
