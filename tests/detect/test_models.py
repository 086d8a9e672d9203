import numpy as np
import pytest
import torch

from fewclick.models.clicks import C3, ClickTensors, class_heatmaps, gaussian_maps
from fewclick.models.detector import METHODS, ClickDetectorNet, DetectorConfig


def _clicks(xy, labels, batch=None) -> ClickTensors:
    n = len(labels)
    return ClickTensors(
        torch.tensor(xy, dtype=torch.float32).reshape(-1, 2),
        torch.tensor(labels, dtype=torch.long),
        torch.tensor(batch if batch is not None else [0] * n, dtype=torch.long),
    )


def test_gaussian_peaks_on_the_clicked_cell():
    maps = gaussian_maps(_clicks([[10, 22]], [0]), (8, 8), stride=4, sigma=2.0)
    assert maps.shape == (1, 8, 8)
    assert divmod(int(maps[0].argmax()), 8) == (5, 2)  # row = 22 // 4, col = 10 // 4


def test_class_heatmaps_max_within_class_zero_elsewhere():
    clicks = _clicks([[2, 2], [30, 30], [2, 30]], [1, 1, 0], batch=[0, 0, 1])
    heat = class_heatmaps(clicks, batch_size=2, num_classes=3, size=(8, 8), stride=4, sigma=2.0)
    assert heat.shape == (2, 3, 8, 8)
    assert heat[0, 1, 0, 0] == pytest.approx(heat[0, 1].max().item()) and heat[0, 1, 7, 7] > 0.5
    assert heat[0, 0].abs().sum() == 0 and heat[0, 2].abs().sum() == 0  # no clicks of classes 0, 2 in image 0
    assert heat[1, 0, 7, 0] > 0.5 and heat[1, 1].abs().sum() == 0


def test_c3_finds_every_location_that_looks_like_the_clicked_one():
    # Feature map with two kinds of cells: A on a chequerboard of blocks, B elsewhere.
    feats = torch.zeros(1, 4, 16, 16)
    kind_a = torch.zeros(16, 16, dtype=torch.bool)
    kind_a[::4, ::4] = True
    feats[0, 0][kind_a] = 1.0
    feats[0, 1][~kind_a] = 1.0
    c3 = C3(num_classes=2, sigma=0.5, stride=4)
    out = c3(C3.unit_features(feats), _clicks([[2, 2]], [1]))  # one click on an A cell, class 1
    assert out.shape == (1, 2, 16, 16)
    assert out[0, 0].abs().sum() == 0, "a class without clicks stays zero"
    assert out[0, 1][kind_a].min() > 0.9 and out[0, 1][~kind_a].max() < 0.1


def test_c3_orders_agree_with_one_click_per_class():
    feats = torch.randn(2, 8, 10, 12)
    clicks = _clicks([[5, 5], [20, 30], [40, 8]], [0, 2, 1], batch=[0, 0, 1])
    unit = C3.unit_features(feats)
    a = C3(3, order="correlate-then-collate")(unit, clicks)
    b = C3(3, order="collate-then-correlate")(unit, clicks)
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="expected order"):
        C3(3, order="sideways")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("oriented", "points_only"), [(False, False), (True, False), (False, True)])
def test_every_method_runs_and_decode_on_cached_features_equals_forward(method, oriented, points_only):
    net = ClickDetectorNet(
        DetectorConfig(
            num_classes=3,
            method=method,
            oriented=oriented,
            points_only=points_only,
            widths=(8, 8, 8),
            blocks=(1, 1, 1),
            features=8,
            head_width=8,
        )
    ).eval()
    images = torch.randn(2, 3, 64, 48)
    clicks = _clicks([[10, 10], [30, 50]], [0, 2], batch=[0, 1])
    with torch.no_grad():
        out = net(images, clicks)
        again = net.decode(net.encode(images, clicks), clicks)
    assert out["heatmap"].shape == (2, 3, 16, 12)
    assert ("size" in out) == (not points_only) and ("angle" in out) == oriented
    for key in out:
        torch.testing.assert_close(out[key], again[key])
    if method != "plain":  # the clicks change the output
        with torch.no_grad():
            none = net(images, None)
        assert not torch.allclose(none["heatmap"], out["heatmap"])
    if method in ("c3det", "late-fusion"):  # a click says what is where, not how big
        for key in set(out) - {"heatmap"}:
            torch.testing.assert_close(none[key], out[key])


def test_config_round_trip_and_errors():
    cfg = DetectorConfig(num_classes=4, method="late-fusion", oriented=True)
    assert DetectorConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown method 'magic'"):
        DetectorConfig(num_classes=4, method="magic")
    with pytest.raises(ValueError, match="unknown detector config keys \\['colour'\\]"):
        DetectorConfig.from_dict({**cfg.to_dict(), "colour": "red"})
    assert np.isfinite(sum(p.detach().sum().item() for p in ClickDetectorNet(cfg).parameters()))
