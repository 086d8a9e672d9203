"""A light fully-convolutional backbone with stride-4 output, trained from scratch on a CPU.

Three stages (strides 4, 8, 16) of residual blocks and a top-down path that brings the
deeper stages back to stride 4, so tiny objects keep their own feature cells while the
features still see tens of pixels of context.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def conv_bn(c_in: int, c_out: int, stride: int = 1, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = conv_bn(channels, channels)
        self.conv2 = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.conv2(self.conv1(x)), inplace=True)


class Backbone(nn.Module):
    """``float[B, in_channels, H, W]`` -> ``float[B, out_channels, H/4, W/4]``.

    ``widths`` are the channels of the stride-4, -8 and -16 stages; ``blocks`` the
    residual blocks per stage. H and W need not be multiples of 16.
    """

    stride = 4

    def __init__(
        self,
        in_channels: int = 3,
        widths: tuple[int, int, int] = (32, 64, 96),
        blocks: tuple[int, int, int] = (1, 2, 2),
        out_channels: int = 64,
    ) -> None:
        super().__init__()
        w4, w8, w16 = widths
        self.stem = nn.Sequential(conv_bn(in_channels, 16, 2), conv_bn(16, w4, 2))
        self.stage4 = nn.Sequential(*[ResidualBlock(w4) for _ in range(blocks[0])])
        self.stage8 = nn.Sequential(conv_bn(w4, w8, 2), *[ResidualBlock(w8) for _ in range(blocks[1])])
        self.stage16 = nn.Sequential(conv_bn(w8, w16, 2), *[ResidualBlock(w16) for _ in range(blocks[2])])
        self.lat4 = nn.Conv2d(w4, out_channels, 1)
        self.lat8 = nn.Conv2d(w8, out_channels, 1)
        self.lat16 = nn.Conv2d(w16, out_channels, 1)
        self.smooth = conv_bn(out_channels, out_channels)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c4 = self.stage4(self.stem(x))
        c8 = self.stage8(c4)
        c16 = self.stage16(c8)
        p8 = self.lat8(c8) + F.interpolate(self.lat16(c16), size=c8.shape[-2:], mode="nearest")
        p4 = self.lat4(c4) + F.interpolate(p8, size=c4.shape[-2:], mode="nearest")
        return self.smooth(p4)


#: The pretrained encoder's maps the neck reads, finest first: (stride, channels) of
#: TinyViT-5M's stride 4 / 8 / 16 maps and SAM's image embedding (stride 16).
PRETRAINED_MAPS = ((4, 64), (8, 128), (16, 160), (16, 256))


class FeatureNeck(nn.Module):
    """A pretrained encoder's frozen maps -> ``float[B, out_channels, H/4, W/4]``, the
    same output as :class:`Backbone`'s, so the click modules and the head sit on either.

    Each map gets a 1 x 1 projection and batch norm (the maps differ in scale by orders
    of magnitude), is brought to stride 4 (bilinear), and the sum goes through one 3 x 3
    convolution. Only this neck and what follows it train; the encoder does not.
    """

    stride = 4

    def __init__(self, maps: tuple[tuple[int, int], ...] = PRETRAINED_MAPS, out_channels: int = 64) -> None:
        super().__init__()
        self.strides = tuple(s for s, _ in maps)
        self.lateral = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))
            for _, c in maps
        )
        self.smooth = conv_bn(out_channels, out_channels)
        self.out_channels = out_channels

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        if len(maps) != len(self.lateral):
            raise ValueError(f"expected {len(self.lateral)} feature maps, got {len(maps)}")
        size = maps[0].shape[-2:]
        total = None
        for lateral, x in zip(self.lateral, maps):
            y = lateral(x)
            if y.shape[-2:] != size:
                y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
            total = y if total is None else total + y
        return self.smooth(F.relu(total))


def unit_similarity_features(maps: list[torch.Tensor], stride_index: int = 1) -> torch.Tensor:
    """The pretrained maps as one unit vector per location, ``[B, D, h, w]`` on the grid of
    ``maps[stride_index]`` (stride 8 by default): every map from there on L2-normalised,
    brought to that grid (bilinear) and concatenated, and the whole normalised again. What
    a click's object is compared with, by the training-free start and by C3 on the
    pretrained backbone: general features no few-image training could learn."""
    size = maps[stride_index].shape[-2:]
    parts = []
    for m in maps[stride_index:]:
        m = F.normalize(m, dim=1)
        if m.shape[-2:] != size:
            m = F.interpolate(m, size=size, mode="bilinear", align_corners=False)
        parts.append(m)
    return F.normalize(torch.cat(parts, 1), dim=1)
