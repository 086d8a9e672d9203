import pytest
import torch

from fewclick.models.masknet import MaskNet, MaskNetConfig

TINY = dict(widths=(4, 8, 8), crop=32, inner=16)


@pytest.mark.parametrize(("clicks", "channels"), [(None, 4), ("disks", 6), ("gaussians", 6), ("distance", 6)])
def test_the_input_channels_follow_the_click_encoding_and_the_output_is_one_logit_map(clicks, channels):
    config = MaskNetConfig(clicks=clicks, **TINY)
    assert config.in_channels == channels
    out = MaskNet(config)(torch.randn(2, channels, 32, 32))
    assert out.shape == (2, 1, 32, 32) and torch.isfinite(out).all()


def test_the_default_network_is_a_small_four_stage_unet():
    net = MaskNet()
    assert len(net.down) == 3 and len(net.up) == 3
    assert sum(p.numel() for p in net.parameters()) < 1_000_000
    assert net(torch.randn(1, 4, 128, 128)).shape == (1, 1, 128, 128)


def test_a_batch_gives_the_answers_of_its_items_in_eval_mode():
    torch.manual_seed(0)
    net = MaskNet(MaskNetConfig(clicks="disks", **TINY)).eval()
    x = torch.randn(3, 6, 32, 32)
    with torch.no_grad():
        batched = net(x)
        single = torch.cat([net(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-4)


def test_every_parameter_gets_a_gradient():
    net = MaskNet(MaskNetConfig(clicks="disks", **TINY))
    net(torch.randn(2, 6, 32, 32)).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_the_config_round_trips_through_a_plain_dict():
    config = MaskNetConfig(clicks="gaussians", widths=(8, 16, 16, 32), crop=96, inner=40, click_radius=3.0)
    data = config.to_dict()
    assert data["widths"] == (8, 16, 16, 32) or data["widths"] == [8, 16, 16, 32]
    assert MaskNetConfig.from_dict({**data, "widths": list(data["widths"])}) == config


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(clicks="circles"), "expected clicks"),
        (dict(widths=(8,)), "at least two positive widths"),
        (dict(crop=100), "divisible by 8"),
        (dict(inner=200), "0 < inner <= crop"),
    ],
)
def test_bad_configs_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MaskNetConfig(**kwargs)


def test_unknown_config_keys_are_refused():
    with pytest.raises(ValueError, match="unknown mask-net config keys"):
        MaskNetConfig.from_dict({"clicks": None, "depth": 3})
