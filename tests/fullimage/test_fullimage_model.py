"""The full-image network's pieces, its training, and the predictor's incremental updates."""

import numpy as np
import pytest
import torch

from fewclick.models.fullimage import (
    MASK,
    OUTSIDE,
    ROI,
    FullImageConfig,
    FullImageNet,
    RegionPrompt,
    annotation_maps,
    paste,
    roi_boxes,
)
from fewclick.predict.fullimage import FullImageModel
from fewclick.train.fullimage import (
    FullImageTrainConfig,
    box_weights,
    prepare_image,
    train_fullimage,
)
from fewclick.types import ExtremePoints, Scribble

SMALL = FullImageConfig(backbone="scratch", channels=8, head_width=8, scratch_side=64)


def _prompt(x0, y0, x1, y1, scribbles=()):
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    points = [[x0, cy], [cx, y0], [x1, cy], [cx, y1]]
    return RegionPrompt(ExtremePoints(points), [Scribble(s, 0) for s in scribbles])


def _scene():
    """A 64 x 48 image: a background region and two squares with their prompts."""
    gt = np.zeros((48, 64), np.int32)
    gt[4:16, 4:16] = 1
    gt[20:36, 30:50] = 2
    image = np.full((48, 64, 3), 40, np.uint8)
    image[gt == 1] = (200, 60, 60)
    image[gt == 2] = (60, 200, 60)
    prompts = [_prompt(0, 0, 63, 47), _prompt(4, 4, 15, 15), _prompt(30, 20, 49, 35)]
    return image, gt, prompts


def test_roi_boxes_hold_the_extreme_points_and_the_scribbles_and_stay_in_the_image():
    prompts = [_prompt(10, 10, 20, 20, [[[25, 15], [40, 30]]]), _prompt(0, 0, 63, 47)]
    boxes = roi_boxes(prompts, (48, 64))
    assert boxes[0][0] < 10 and boxes[0][1] < 10 and boxes[0][2] > 40 and boxes[0][3] > 30
    assert boxes[1].tolist() == [0, 0, 64, 48]  # enlarged, then clipped to the image


def test_the_annotation_map_holds_own_marks_in_channel_0_and_only_other_regions_in_channel_1():
    _, _, prompts = _scene()
    prompts[2].scribbles.append(Scribble([[32, 22], [47, 33]], 2))
    boxes = roi_boxes(prompts, (48, 64))
    shared = annotation_maps(prompts, boxes, (48, 64), share=True)
    assert shared.shape == (3, 2, ROI, ROI)
    assert shared[:, 0].amax((1, 2)).tolist() == [1, 1, 1]  # every region sees its own marks
    # the background's box holds both squares: their marks are its negatives, not its own
    assert shared[0, 1].sum() > 0 and shared[2, 1].sum() == 0  # the right square's box holds no other mark
    alone = annotation_maps(prompts, boxes, (48, 64), share=False)
    assert torch.equal(alone[:, 0], shared[:, 0]) and alone[:, 1].sum() == 0
    only = annotation_maps(prompts, boxes, (48, 64), share=True, only=[2])
    assert torch.equal(only[0], shared[2])


def test_paste_puts_each_region_logits_inside_its_box_and_outside_elsewhere():
    logits = torch.stack([torch.full((1, MASK, MASK), 2.0), torch.full((1, MASK, MASK), -1.0)])
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 20.0, 15.0]])
    canvas = paste(logits, boxes, (15, 20))
    assert canvas[0, 2, 2] == 2.0 and canvas[0, 12, 15] == OUTSIDE
    assert canvas[1, 12, 15] == -1.0 and canvas[1, 2, 2] == OUTSIDE
    half = paste(logits, boxes, (8, 10), scale=0.5)  # a canvas at half the image's pixels
    assert half[0, 1, 1] == 2.0 and half[0, 7, 9] == OUTSIDE


def test_box_weights_give_a_pixel_the_inverse_area_of_the_smallest_box_holding_it():
    w = box_weights(np.array([[0, 0, 20, 20], [5, 5, 10, 10]], np.float32), (20, 20))
    assert w[7, 7] / w[1, 1] == pytest.approx(400 / 25)
    assert w.mean() == pytest.approx(1.0)


def _model() -> FullImageModel:
    torch.manual_seed(0)
    return FullImageModel(FullImageNet(SMALL))


def test_a_prediction_gives_every_pixel_one_region_and_scribbles_their_own_pixels():
    image, _, prompts = _scene()
    model = _model()
    model.set_image(image)
    labels = model.predict(prompts)
    assert labels.shape == (48, 64) and labels.dtype == np.int32
    assert set(np.unique(labels)) <= {0, 1, 2}
    prompts[1].scribbles.append(Scribble([[5, 5], [14, 14]], 1))
    assert (model.predict(prompts)[5:15, 5:15].diagonal() == 1).all()


def test_an_update_recomputes_only_the_regions_a_scribble_touches_and_equals_a_fresh_prediction(monkeypatch):
    image, _, prompts = _scene()
    model = _model()
    model.set_image(image)
    model.predict(prompts)
    heads = []
    original = model.net.region_logits
    monkeypatch.setattr(
        model.net, "region_logits", lambda f, boxes, *a: heads.append(len(boxes)) or original(f, boxes, *a)
    )
    prompts[2].scribbles.append(Scribble([[44, 24], [46, 32]], 2))  # inside the right square only
    updated = model.predict(prompts)
    assert heads == [2]  # the square itself and the background whose box holds it; not the left square
    fresh = _model()
    fresh.set_image(image)
    assert np.array_equal(updated, fresh.predict(prompts))
    del prompts[1]  # a deleted region: the rest renumbered, nothing recomputed but the repaint
    heads.clear()
    after = model.predict(prompts)
    fresh.set_image(image)
    assert np.array_equal(after, fresh.predict(prompts))
    assert heads == [1]  # the background lost the deleted square's marks from its negatives


def test_odd_inputs_get_a_defined_result():
    image, _, prompts = _scene()
    model = _model()
    model.set_image(image)
    with pytest.raises(ValueError, match="at least one region"):
        model.predict([])
    twins = prompts + [_prompt(4, 4, 15, 15)]  # two regions with the same box
    assert set(np.unique(model.predict(twins))) <= {0, 1, 2, 3}
    dot = [*prompts]
    dot[1] = RegionPrompt(prompts[1].extreme, [Scribble([[9, 9]], 1)])  # a scribble of zero length
    assert model.predict(dot)[9, 9] == 1
    flat = [RegionPrompt(ExtremePoints([[5, 30], [5, 30], [40, 30], [40, 30]]))]  # points on a line
    assert (model.predict(flat) == 0).all()  # one region: every pixel is it


def test_five_hundred_regions_are_predicted():
    image = np.zeros((100, 200, 3), np.uint8)
    prompts = [_prompt(x, y, x + 7, y + 3) for y in range(0, 80, 4) for x in range(0, 200, 8)]
    assert len(prompts) == 500
    model = _model()
    model.set_image(image)
    labels = model.predict(prompts)
    assert labels.min() >= 0 and labels.max() < 500 and len(np.unique(labels)) > 250


@pytest.mark.parametrize("loss", ["pixelwise", "mask"])
def test_training_writes_a_model_that_loads(tmp_path, loss):
    image, gt, _ = _scene()
    config = FullImageConfig(
        backbone="scratch", loss=loss, share=loss == "pixelwise", channels=8, head_width=8
    )
    images = [prepare_image(config, image, gt, 32)]
    path = train_fullimage(
        images, config, FullImageTrainConfig(steps=6, warmup=2, max_rounds=1), tmp_path / "m.pt"
    )
    ckpt = torch.load(path, weights_only=False)
    assert np.isfinite(ckpt["first_loss"]) and np.isfinite(ckpt["final_loss"])  # lower: on some CPUs
    model = FullImageModel.load(path)
    model.set_image(image)
    assert model.predict(_scene()[2]).shape == gt.shape
    assert model.method == ("full_image" if loss == "pixelwise" else "single_region")


class _FakeSam:
    """SAM's interface for the prior: low-res logits, positive inside the box it is given."""

    def __init__(self) -> None:
        self.calls = 0

    def set_image(self, image, key=None) -> None:
        h, w = image.shape[:2]
        self.scale = 1024 / max(h, w)

    def low_res_logits(self, box, clicks) -> np.ndarray:
        self.calls += 1
        out = np.full((256, 256), -5.0, np.float32)
        x0, y0, x1, y1 = (int(v * self.scale / 4) for v in box)
        out[y0:y1, x0:x1] = 5.0
        return out


def test_a_model_on_sam_prior_asks_sam_once_per_region_and_not_again_for_scribbles():
    image, gt, prompts = _scene()
    config = FullImageConfig(backbone="scratch", sam_prior=True, channels=8, head_width=8, scratch_side=64)
    with pytest.raises(ValueError, match="SAM predictor"):
        FullImageModel(FullImageNet(config))
    with pytest.raises(ValueError, match="SAM predictor"):
        prepare_image(config, image, gt, 32)
    sam = _FakeSam()
    assert prepare_image(config, image, gt, 32, sam=sam).priors.shape == (3, 256, 256)
    torch.manual_seed(0)
    model = FullImageModel(FullImageNet(config), sam=sam)
    model.set_image(image)
    sam.calls = 0
    model.predict(prompts)
    assert sam.calls == 3
    prompts[2].scribbles.append(Scribble([[44, 24], [46, 32]], 2))
    assert model.predict(prompts).shape == gt.shape and sam.calls == 3


def test_sam_compete_gives_a_pixel_in_no_box_to_the_nearest_box():
    from fewclick.predict.fullimage import SamCompete

    class FlatSam:
        def set_image(self, image):
            self.shape = image.shape[:2]

        def logits(self, box, clicks):
            return np.zeros(self.shape, np.float32)

    compete = SamCompete(FlatSam())
    compete.set_image(np.zeros((20, 60, 3), np.uint8))
    labels = compete.predict([_prompt(0, 0, 9, 9), _prompt(50, 10, 59, 19)])
    assert labels[19, 2] == 0 and labels[2, 57] == 1  # outside both boxes: the nearer one's
    assert labels[15, 35] == 1 and labels[5, 20] == 0


def test_sam_compete_keeps_a_scribble_grazing_the_border_inside_the_image_for_sam():
    from fewclick.predict.fullimage import SamCompete

    class StrictSam:
        def set_image(self, image):
            self.shape = image.shape[:2]

        def logits(self, box, clicks):
            h, w = self.shape
            assert (clicks.xy >= 0).all() and (clicks.xy[:, 0] < w).all() and (clicks.xy[:, 1] < h).all()
            return np.zeros(self.shape, np.float32)

    compete = SamCompete(StrictSam())
    compete.set_image(np.zeros((20, 60, 3), np.uint8))
    grazing = _prompt(0, 0, 29, 19, [[[-0.3, 5.0], [10.0, 19.4]]])  # simulated scribbles may, by half a px
    assert compete.predict([grazing, _prompt(30, 0, 59, 19)]).shape == (20, 60)
