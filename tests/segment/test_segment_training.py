import numpy as np
import pytest
import torch

from fewclick.data.synthetic import make_dataset
from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.rle import mask_to_rle
from fewclick.models.masknet import MaskNetConfig
from fewclick.predict.segment import MaskPredictor
from fewclick.train.segment import (
    SegmentTrainConfig,
    box_sigma,
    collect_instances,
    corrective_crop_clicks,
    make_sample,
    mask_loss,
    split_instances,
    train_segmenter,
)
from fewclick.types import Objects

TINY = MaskNetConfig(widths=(8, 16, 16), crop=32, inner=16)
QUIET = dict(log=lambda _: None)


@pytest.fixture(scope="module")
def cells():
    return make_dataset("cells", 2, seed=3, width=96, height=96)


def _dataset_of(masks, ignore=None) -> Dataset:
    h, w = masks[0].shape
    boxes = np.zeros((len(masks), 4), np.float32)
    objs = Objects(np.zeros(len(masks)), boxes, segmentations=[mask_to_rle(m) for m in masks], ignore=ignore)
    rec = ImageRecord("a.png", w, h, objs)
    rec.extra["pixels"] = np.zeros((h, w), np.uint16)  # grayscale 16-bit pixels are fine
    return Dataset(["thing"], [rec])


def test_box_noise_is_the_papers_for_large_objects_and_scaled_for_small_ones():
    assert box_sigma(np.array([0, 0, 400, 500])) == 60.0
    assert box_sigma(np.array([0, 0, 10, 10])) == pytest.approx(2.0)
    assert box_sigma(np.array([0, 0, 40, 10]), fraction=0.5) == pytest.approx(10.0)


def test_small_objects_are_kept_and_only_specks_and_ignored_ones_dropped():
    masks = np.zeros((4, 40, 40), bool)
    masks[0, 2:7, 3:8] = True  # 5 x 5: kept
    masks[1, 10:13, 10:30] = True  # 3 px tall: dropped
    masks[2, 20:35, 20:35] = True  # ignored (crowd)
    masks[3, 30:38, 2:6] = True  # 4 x 8: kept
    images, instances = collect_instances(_dataset_of(masks, ignore=[False, False, True, False]))
    assert len(images) == 1 and images[0].dtype == np.uint8 and images[0].shape == (40, 40, 3)
    assert [i.box.tolist() for i in instances] == [[3, 2, 8, 7], [2, 30, 6, 38]]
    np.testing.assert_array_equal(instances[1].mask, masks[3, 30:38, 2:6])
    assert instances[1].origin == (2, 30)


def test_the_split_is_by_instance_disjoint_and_deterministic(cells):
    _, instances = collect_instances(cells)
    a, b = split_instances(instances, seed=0)
    assert len(a) + len(b) == len(instances) and abs(len(a) - len(b)) <= 1
    assert not {id(i) for i in a} & {id(i) for i in b}
    assert [id(i) for i in split_instances(instances, seed=0)[0]] == [id(i) for i in a]


def test_a_sample_frames_a_loose_box_around_its_object(cells):
    images, instances = collect_instances(cells)
    sample = make_sample(
        images[instances[0].image], instances[0], TINY, SegmentTrainConfig(), np.random.default_rng(0)
    )
    assert sample.input.shape == (4, 32, 32) and sample.target.shape == (32, 32)
    inside = sample.input[3] > 0.5
    assert sample.target[~inside].sum() < 0.3 * sample.target.sum()  # the object is mostly in its box


def test_corrective_clicks_on_an_empty_mask_are_positive_and_on_the_object(cells):
    images, instances = collect_instances(cells)
    inst = max(instances, key=lambda i: i.mask.sum())
    sample = make_sample(images[inst.image], inst, TINY, SegmentTrainConfig(), np.random.default_rng(1))
    xy, positive = corrective_crop_clicks(
        sample, np.zeros((32, 32), np.float32), 3, np.random.default_rng(2), 0.0
    )
    assert len(xy) == 3 and positive.all()
    ij = np.round(xy).astype(int)
    assert (sample.target[ij[:, 1], ij[:, 0]] > 0.5).all()
    xy, positive = corrective_crop_clicks(
        sample, np.ones((32, 32), np.float32), 2, np.random.default_rng(2), 0.0
    )
    assert len(xy) == 2 and not positive.any()


def test_the_loss_prefers_the_right_mask():
    target = torch.zeros(1, 1, 8, 8)
    target[..., 2:6, 2:6] = 1
    right, wrong = (target - 0.5) * 20, (0.5 - target) * 20
    assert mask_loss(right, target) < 0.05 < 1.0 < mask_loss(wrong, target)


def _weights(path):
    return torch.load(path, weights_only=False)["model"]


def test_training_is_deterministic_resumes_and_writes_both_models(cells, tmp_path):
    train = SegmentTrainConfig(
        steps=3, batch_size=4, warmup_steps=1, val_every=100, val_instances=4, bf16=False, threads=1
    )
    a = train_segmenter(cells, tmp_path / "a", TINY, train, **QUIET)
    pause = SegmentTrainConfig(**{**train.__dict__, "stop_after": 4})  # M_b's 3 steps, then 1 of M_b+c
    b = train_segmenter(cells, tmp_path / "b", TINY, pause, **QUIET)
    assert torch.load(b[1], weights_only=False)["step"] == 1
    b = train_segmenter(cells, tmp_path / "b", TINY, train, **QUIET)
    for path_a, path_b in zip(a, b):
        ckpt = torch.load(path_b, weights_only=False)
        assert ckpt["kind"] == "mask-net" and ckpt["version"] == 1 and ckpt["step"] == 3
        assert "train" in ckpt and MaskNetConfig.from_dict(ckpt["config"]).crop == 32
        for key, value in _weights(path_a).items():
            torch.testing.assert_close(value, _weights(path_b)[key], msg=f"{path_b.name} {key}")
    assert MaskNetConfig.from_dict(torch.load(a[1], weights_only=False)["config"]).clicks == "disks"
    assert MaskPredictor.load(tmp_path / "a").m_bc is not None


def test_m_bc_starts_as_m_b(cells, tmp_path):
    train = SegmentTrainConfig(steps=2, batch_size=2, warmup_steps=1, stop_after=2, bf16=False, threads=1)
    train_segmenter(cells, tmp_path, TINY, train, **QUIET)  # M_b only: the pause is at its end
    m_b = MaskPredictor.load(tmp_path).m_b
    train = SegmentTrainConfig(**{**train.__dict__, "stop_after": 3, "lr": 0.0})  # one M_b+c step, lr 0
    train_segmenter(cells, tmp_path, TINY, train, **QUIET)
    m_bc = MaskPredictor.load(tmp_path).m_bc
    x = torch.randn(3, 6, 32, 32)
    with torch.no_grad():  # batch statistics: the step moved the running ones, not the weights
        torch.testing.assert_close(m_bc.train()(x), m_b.train()(x[:, :4]))


def test_a_folder_of_another_configuration_is_refused(cells, tmp_path):
    train = SegmentTrainConfig(steps=1, batch_size=2, warmup_steps=1, stop_after=1, bf16=False, threads=1)
    train_segmenter(cells, tmp_path, TINY, train, **QUIET)
    other = MaskNetConfig(widths=(8, 16, 16), crop=32, inner=24)
    with pytest.raises(ValueError, match="another configuration"):
        train_segmenter(cells, tmp_path, other, train, **QUIET)


def test_a_dataset_without_masks_is_refused(tmp_path):
    ds = Dataset(["a"], [ImageRecord("a.png", 10, 10, Objects([0], [[1, 1, 5, 5]]))])
    with pytest.raises(ValueError, match="at least 2 objects with masks"):
        train_segmenter(ds, tmp_path, TINY, SegmentTrainConfig(steps=1, threads=1), **QUIET)


def test_a_trained_m_b_gives_a_probability_for_every_pixel_of_its_crop(cells, tmp_path):
    """A short run's masks hold on any CPU only as probabilities over the crop; how
    much M_b beats the box is measured in benchmarks/segment.py, not here."""
    train = SegmentTrainConfig(
        steps=3, batch_size=4, warmup_steps=1, stop_after=3, val_instances=0, bf16=False, threads=1
    )
    train_segmenter(cells, tmp_path, TINY, train, **QUIET)
    predictor = MaskPredictor.load(tmp_path)
    images, instances = collect_instances(cells)
    inst = instances[0]
    sample = make_sample(images[inst.image], inst, TINY, train, np.random.default_rng(7))
    predictor.set_image(images[inst.image])
    prob, _ = predictor.predict_prob(sample.box)
    assert prob.shape == sample.target.shape  # the crop around the box
    assert np.isfinite(prob).all() and prob.min() >= 0.0 and prob.max() <= 1.0


def _iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)
