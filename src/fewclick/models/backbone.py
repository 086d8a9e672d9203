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
