import numpy as np
import pytest
import torch

from fewclick.models.cpr import CPRNet, CPRNetConfig, bag_offsets
from fewclick.predict.points import PointRefiner, RefineConfig, refine_points, self_refine
from fewclick.train.cpr import CPRConfig, CPRLoss, PointImage, _Crop, focal, negatives, train_cpr
from fewclick.types import Detections

TINY = dict(widths=(8, 8, 16), blocks=(1, 1, 1), features=16, head_width=16)


def test_bags_hold_r_times_u0_points_on_circle_r():
    offsets = bag_offsets(3, u0=8)
    assert len(offsets) == 8 * (1 + 2 + 3)
    radii = np.sqrt((offsets**2).sum(1))
    np.testing.assert_allclose(np.sort(np.unique(radii.round(5))), [1, 2, 3], atol=1e-5)
    assert (radii.round(5) == 3).sum() == 24


def test_focal_loss_follows_eq_4():
    prob = torch.tensor([[0.8, 0.3]])
    target = torch.tensor([[1.0, 0.0]])
    expected = -(0.2**2 * np.log(0.8) + 0.3**2 * np.log(0.7))
    assert focal(prob, target, 2.0).item() == pytest.approx(expected, rel=1e-5)


def test_negatives_are_cells_farther_than_r_from_every_point_of_their_class():
    centre = torch.tensor([[2.0, 2.0], [-1.5, 5.0]])  # the second point lies off the map (cut object)
    labels = torch.tensor([0, 1])
    neg = negatives(centre, labels, h=8, w=8, num_classes=3, radius=2)
    assert not neg[2, 2, 0] and not neg[2, 4, 0] and neg[2, 5, 0]  # (x 4, y 2) at distance 2, (5, 2) at 3
    assert not neg[5, 0, 1], "a cell near a point outside the crop is no negative"
    assert neg[2, 2, 1] and neg.all(dim=(0, 1))[2], "other classes and absent classes are negatives"


def test_cpr_loss_is_finite_and_trains_every_branch():
    torch.manual_seed(0)
    net = CPRNet(CPRNetConfig(num_classes=2, **TINY))
    crops = [
        _Crop(
            np.zeros((64, 64, 3), np.uint8),
            np.array([[20.0, 30.0], [50, 10]], np.float32),
            np.array([0, 1]),
            np.zeros(2, bool),
        ),
        _Crop(
            np.zeros((64, 64, 3), np.uint8),
            np.zeros((0, 2), np.float32),
            np.zeros(0, np.int64),
            np.zeros(0, bool),
        ),
    ]
    loss = CPRLoss(net, CPRConfig(radius=3))
    feats = net.features(torch.randn(2, 3, 64, 64))
    losses = loss(feats, crops)
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["mil"] > 0 and losses["ann"] > 0 and losses["neg"] > 0
    losses["total"].backward()
    for name in ("cls.weight", "ins.weight", "backbone.stem.0.0.weight"):
        grad = dict(net.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def _refiner(scores: np.ndarray, radius: int = 3, **config) -> PointRefiner:
    """A refiner over hand-made class scores ``[K, h, w]`` on a stride-4 grid."""
    k, h, w = scores.shape
    refiner = PointRefiner(
        CPRNet(CPRNetConfig(num_classes=k, **TINY)),
        [f"c{i}" for i in range(k)],
        radius,
        RefineConfig(**config),
    )
    refiner.set_state({"scores": scores.astype(np.float32), "size": (h * 4, w * 4)})
    return refiner


def _blob(h: int, w: int, cx: float, cy: float, sigma: float = 1.5) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w]
    return np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))


def test_refinement_moves_a_coarse_point_towards_the_class_score_peak():
    scores = np.stack([_blob(16, 16, 8, 8), np.zeros((16, 16))])  # class 0 peaks at cell (8, 8)
    refiner = _refiner(scores)
    peak = (np.array([8, 8]) + 0.5) * 4  # pixel (34, 34)
    coarse = peak + [6, -5]
    refined = refiner.refine(coarse[None], [0])[0]
    assert np.linalg.norm(refined - peak) < 0.5 * np.linalg.norm(coarse - peak)
    x, y = refiner.snap(*coarse, label=0)
    np.testing.assert_allclose((x, y), refined, atol=1e-4)


def test_points_of_another_class_where_that_class_wins_are_not_kept():
    scores = np.stack([_blob(16, 16, 8, 8), 2 * _blob(16, 16, 11, 8)])  # class 1 stronger to the right
    coarse = np.array([[(9 + 0.5) * 4, 8.5 * 4]])
    with_constraint = _refiner(scores).refine(coarse, [0])[0]
    only_class_0 = _refiner(scores[:1]).refine(coarse, [0])[0]
    assert with_constraint[0] < only_class_0[0], "cells where class 1 wins must not pull the point right"


def test_two_points_of_one_object_class_keep_to_their_own_side():
    scores = np.stack([_blob(16, 16, 4, 8) + _blob(16, 16, 11, 8)])
    pts = np.array([[5.5 * 4, 8.5 * 4], [10.5 * 4, 8.5 * 4]])
    refined = _refiner(scores, radius=5).refine(pts, [0, 0])
    assert refined[0, 0] < 7 * 4 < refined[1, 0], "each point keeps to the half nearer to it"
    assert refined[0, 0] < pts[0, 0] and refined[1, 0] > pts[1, 0]


def test_a_bag_with_nothing_above_the_thresholds_leaves_the_point_alone():
    refiner = _refiner(np.full((1, 16, 16), 0.05))
    pts = np.array([[20.0, 24.0]])
    np.testing.assert_allclose(refiner.refine(pts, [0]), pts)


def test_bad_points_get_errors_that_name_the_problem():
    refiner = _refiner(np.zeros((2, 16, 16)))
    with pytest.raises(ValueError, match="outside the 64 x 64 image"):
        refiner.refine([[70.0, 5.0]], [0])
    with pytest.raises(ValueError, match="class id 5"):
        refiner.refine([[10.0, 5.0]], [5])
    with pytest.raises(ValueError, match="one class id per point"):
        refiner.refine([[10.0, 5.0]], [0, 1])
    assert refiner.refine(np.zeros((0, 2)), []).shape == (0, 2)
    with pytest.raises(RuntimeError, match="set_image"):
        PointRefiner(CPRNet(CPRNetConfig(num_classes=1, **TINY)), ["a"], 3).refine([[1.0, 1.0]], [0])


def test_tiled_scoring_fills_every_cell_of_a_large_image():
    torch.manual_seed(0)
    refiner = PointRefiner(
        CPRNet(CPRNetConfig(num_classes=2, **TINY)), ["a", "b"], 3, RefineConfig(tile=64, overlap=16)
    )
    image = np.random.default_rng(0).integers(0, 255, (150, 200, 3), np.uint8)
    refiner.set_image(image)
    scores = refiner.get_state()["scores"]
    assert scores.shape == (2, 38, 50)
    assert (scores > 0).all(), "every cell scored by some tile"
    whole = PointRefiner(refiner.net, ["a", "b"], 3)
    whole.set_image(image)
    inner = np.abs(whole.get_state()["scores"] - scores)[:, 4:-4, 4:-4]
    assert np.median(inner) < 0.05, "tiles agree with the whole image away from the tile borders"


def test_grayscale_images_are_accepted_and_tiny_ones_refused():
    refiner = PointRefiner(CPRNet(CPRNetConfig(num_classes=1, **TINY)), ["a"], 3)
    refiner.set_image(np.zeros((32, 40), np.uint8))
    assert refiner.get_state()["scores"].shape == (1, 8, 10)
    with pytest.raises(ValueError, match="at least 8 x 8"):
        refiner.set_image(np.zeros((4, 40, 3), np.uint8))


def test_self_refinement_averages_nearby_predictions_of_the_class_by_score():
    pts = np.array([[10.0, 10.0], [40.0, 10.0]])
    preds = Detections(
        np.zeros((4, 4)),
        [0.5, 1.0, 0.9, 0.9],
        [0, 0, 1, 0],
        points=[[12, 10], [15, 10], [10, 12], [100, 100]],
    )
    out = self_refine(pts, [0, 0], preds, radius=10)
    np.testing.assert_allclose(out[0], [(0.5 * 12 + 1.0 * 15) / 1.5, 10])
    np.testing.assert_allclose(out[1], [40, 10], err_msg="no prediction of its own nearby: unchanged")


def _disk_images(n: int, rng: np.random.Generator) -> tuple[list[PointImage], list[np.ndarray]]:
    """Bright disks (radius 7) on a dark background; coarse points anywhere on the disk."""
    images, centres = [], []
    for _ in range(n):
        image = np.full((96, 96, 3), 30, np.uint8)
        c = rng.uniform(15, 81, (3, 2))
        ys, xs = np.mgrid[0:96, 0:96]
        for x, y in c:
            image[(xs + 0.5 - x) ** 2 + (ys + 0.5 - y) ** 2 <= 49] = 220
        angle, r = rng.uniform(0, 2 * np.pi, 3), rng.uniform(3, 6, 3)
        coarse = c + np.stack([r * np.cos(angle), r * np.sin(angle)], 1)
        images.append(PointImage(image, coarse, np.zeros(3, np.int64)))
        centres.append(c)
    return images, centres


def test_a_trained_cpr_moves_each_point_within_its_bag(tmp_path):
    """Whatever a short training run learned on this CPU, refinement is a weighted mean of
    the point and cells of its bag: no point moves farther than R cells. (How close the
    points come to the centres is measured in benchmarks/points.py, not here.)"""
    images, _ = _disk_images(4, np.random.default_rng(0))
    config = CPRConfig(radius=3, steps=3, crop=64, batch_size=4, lr=5e-3)
    net = CPRNetConfig(num_classes=1, **TINY)
    path = train_cpr(images, ["disk"], tmp_path, config, net, log=lambda _: None)
    refiner = PointRefiner.load(path)
    refined = refine_points(refiner, ((im.image, im.points, im.labels) for im in images))
    for im, r in zip(images, refined, strict=True):
        assert r.shape == im.points.shape and np.isfinite(r).all()
        assert (np.linalg.norm(r - im.points, axis=1) <= config.radius * refiner.stride + 1e-3).all()


def test_training_refuses_images_without_points(tmp_path):
    empty = [PointImage(np.zeros((64, 64, 3), np.uint8), np.zeros((0, 2)), np.zeros(0))]
    with pytest.raises(ValueError, match="no(ne)? .*points|have none"):
        train_cpr(empty, ["a"], tmp_path, CPRConfig(steps=1))
    with pytest.raises(ValueError, match="finite"):
        PointImage(np.zeros((8, 8, 3), np.uint8), [[np.nan, 1.0]], [0])


def test_a_class_with_a_single_point_and_an_image_without_points_train_and_refine(tmp_path):
    rng = np.random.default_rng(1)
    images, _ = _disk_images(3, rng)
    images[0].labels[0] = 1  # class "rare" has one point in the whole set
    images.append(PointImage(np.full((96, 96, 3), 30, np.uint8), np.zeros((0, 2)), np.zeros(0)))
    path = train_cpr(
        images,
        ["disk", "rare"],
        tmp_path,
        CPRConfig(radius=3, steps=3, crop=64, batch_size=4),
        CPRNetConfig(num_classes=2, **TINY),
        log=lambda _: None,
    )
    refiner = PointRefiner.load(path)
    out = refine_points(refiner, ((im.image, im.points, im.labels) for im in images))
    assert [len(o) for o in out] == [3, 3, 3, 0]
    assert all(np.isfinite(o).all() for o in out)


def test_a_version_1_checkpoint_still_loads(tmp_path):
    """Version 1 kept the config under ``net`` and the weights under ``state_dict``; a point
    model a project trained before the one checkpoint format still serves."""
    import torch

    from fewclick.models.checkpoint import write_checkpoint
    from fewclick.models.cpr import CHECKPOINT_KIND, load_cprnet, save_cprnet

    net = CPRNet(CPRNetConfig(num_classes=2, **TINY))
    old = write_checkpoint(
        tmp_path / "v1.pt",
        CHECKPOINT_KIND,
        1,
        net=net.config.to_dict(),
        state_dict=net.state_dict(),
        classes=["a", "b"],
    )
    new = save_cprnet(tmp_path / "v2.pt", net, classes=["a", "b"])
    for path in (old, new):
        loaded, ckpt = load_cprnet(path)
        assert ckpt["classes"] == ["a", "b"] and ckpt["version"] == 2
        for key, value in net.state_dict().items():
            torch.testing.assert_close(loaded.state_dict()[key], value)
