"""``MaskNet``: the small U-Net behind M_b (box -> mask) and M_b+c (box + clicks -> mask).

The paper uses DeepLabv2 ResNet-101 with extra input channels; fewclick trains from scratch
on a CPU, so a small U-Net over a 128 x 128 crop does the same job: input the crop's RGB,
the box channel (inside / outside) and, for M_b+c, two click channels (positive /
negative); output one foreground logit per crop pixel.

:func:`save_masknet` / :func:`load_masknet` write and read its checkpoint (kind
``"mask-net"``); :func:`normalise` makes the RGB part of its input.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from fewclick.models.checkpoint import StoredConfig, load_module, save_module
from fewclick.models.pixels import normalise as normalise  # the RGB channels this network expects

CLICK_ENCODINGS = ("disks", "gaussians", "distance")
CHECKPOINT_KIND, CHECKPOINT_VERSION = "mask-net", 1


@dataclass(frozen=True)
class MaskNetConfig(StoredConfig, name="mask-net config"):
    """``clicks``: the click encoding (None for M_b; "disks", "gaussians" or "distance" for
    M_b+c, two channels each). ``widths``: channels of the full-resolution stage and of each
    of the downsampling stages. ``crop`` / ``inner`` / ``click_radius`` describe the crop the
    network was trained on (box fitted in ``inner`` px of a ``crop`` px square; clicks drawn
    with ``click_radius`` crop px) and travel with the weights."""

    clicks: str | None = None
    widths: tuple[int, ...] = (24, 48, 96, 128)
    crop: int = 128
    inner: int = 64
    click_radius: float = 5.0

    def __post_init__(self) -> None:
        if self.clicks is not None and self.clicks not in CLICK_ENCODINGS:
            raise ValueError(f"expected clicks None or one of {CLICK_ENCODINGS}, got {self.clicks!r}")
        if len(self.widths) < 2 or min(self.widths) < 1:
            raise ValueError(f"expected at least two positive widths, got {self.widths}")
        stride = 2 ** (len(self.widths) - 1)
        if self.crop % stride or not 0 < self.inner <= self.crop:
            raise ValueError(
                f"expected a crop divisible by {stride} and 0 < inner <= crop, "
                f"got crop {self.crop}, inner {self.inner}"
            )

    @property
    def in_channels(self) -> int:
        """RGB + box, plus two click channels for M_b+c."""
        return 4 + (0 if self.clicks is None else 2)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class MaskNet(nn.Module):
    """``[B, in_channels, S, S]`` float -> ``[B, 1, S, S]`` foreground logits.

    Encoder: two 3 x 3 conv-BN-ReLU at full resolution, then per further width a stride-2
    conv and a 3 x 3 conv. Decoder: bilinear upsampling, concatenation with the skip, one
    3 x 3 conv-BN-ReLU per stage; a 1 x 1 conv gives the logit."""

    def __init__(self, config: MaskNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or MaskNetConfig()
        w = self.config.widths
        self.stem = nn.Sequential(_conv(self.config.in_channels, w[0]), _conv(w[0], w[0]))
        self.down = nn.ModuleList(nn.Sequential(_conv(a, b, 2), _conv(b, b)) for a, b in zip(w[:-1], w[1:]))
        self.up = nn.ModuleList(_conv(b + a, a) for a, b in zip(w[:-1], w[1:]))
        self.head = nn.Conv2d(w[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(x)]
        for stage in self.down:
            skips.append(stage(skips[-1]))
        x = skips.pop()
        for stage in reversed(self.up):
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = stage(torch.cat([x, skip], dim=1))
        return self.head(x)


def save_masknet(path: str | Path, net: MaskNet, train: dict | None = None, **fields) -> Path:
    """Write ``net`` as a mask-net checkpoint (kind, version, config, weights, ``train``
    and any further ``fields`` such as the optimizer state) that :func:`load_masknet` reads."""
    return save_module(path, CHECKPOINT_KIND, CHECKPOINT_VERSION, net, train=train or {}, **fields)


def load_masknet(path: str | Path) -> tuple[MaskNet, dict]:
    """A trained M_b or M_b+c (eval mode) and its checkpoint; errors name the file and the problem."""
    build = lambda config: MaskNet(MaskNetConfig.from_dict(config))  # noqa: E731
    return load_module(path, CHECKPOINT_KIND, CHECKPOINT_VERSION, build)
