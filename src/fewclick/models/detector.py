"""The click-to-detect network: backbone, optional click fusion, CenterNet-style head.

``ClickDetectorNet.encode`` runs the image-only part once (cacheable); ``decode`` runs
the click-dependent part (Late Fusion, C3, the head). Early Fusion is the exception: its
clicks enter with the image, so ``encode`` needs them and nothing can be cached.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from fewclick.models.backbone import Backbone, conv_bn
from fewclick.models.clicks import C3, ClickTensors, LateFusion, class_heatmaps

METHODS = ("c3det", "late-fusion", "early-fusion", "plain")


@dataclass(frozen=True)
class DetectorConfig:
    """Everything needed to rebuild a network; stored in every checkpoint as a dict."""

    num_classes: int
    method: str = "c3det"  # one of METHODS; Passthrough is a decoder over "plain"
    oriented: bool = False  # predict an angle (oriented boxes)
    points_only: bool = False  # data has centre points only: no size head
    widths: tuple[int, int, int] = (48, 96, 128)
    blocks: tuple[int, int, int] = (1, 2, 2)
    features: int = 64
    head_width: int = 64
    late_fusion_channels: int = 16
    late_fusion_sigma: float = 1.0  # input pixels (the paper's sigma for LF input)
    c3_sigma: float = 3.0  # input pixels (the paper's per-click heatmaps in C3)
    c3_order: str = "correlate-then-collate"
    early_fusion_sigma: float = 5.0  # larger, as Early Fusion needs
    uel: bool = True  # User-input Enforcing Loss (a training switch, kept with the model)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; expected one of {METHODS}")
        if self.num_classes < 1:
            raise ValueError(f"expected num_classes >= 1, got {self.num_classes}")

    @property
    def uses_clicks(self) -> bool:
        return self.method != "plain"

    @property
    def late_fusion(self) -> bool:
        return self.method in ("c3det", "late-fusion")

    @property
    def c3(self) -> bool:
        return self.method == "c3det"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DetectorConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(
                f"unknown detector config keys {sorted(unknown)}: a model from a newer fewclick?"
            )
        values = dict(data)
        for key in ("widths", "blocks"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


class CenterHead(nn.Module):
    """Dense outputs on the stride-4 grid: class ``heatmap`` logits ``[B, C, h, w]``,
    ``size`` = log(w / stride), log(h / stride) ``[B, 2, h, w]``, sub-cell ``offset``
    ``[B, 2, h, w]`` in cells, and ``angle`` = (cos 2a, sin 2a) ``[B, 2, h, w]`` when oriented.

    The head is split so that an interactive predictor pays for the 3 x 3 convolutions
    once per image: ``image_part`` sees only image features (cached by ``set_image``);
    the click features enter through a 1 x 1 projection added to it, followed by 1 x 1
    layers, which is all a click re-runs.
    """

    def __init__(
        self,
        in_channels: int,
        click_channels: int,
        width: int,
        num_classes: int,
        oriented: bool,
        points_only: bool,
    ) -> None:
        super().__init__()
        self.image_part = nn.Sequential(conv_bn(in_channels, width), nn.Conv2d(width, width, 3, 1, 1))
        self.click_part = nn.Conv2d(click_channels, width, 1, bias=False) if click_channels else None
        self.mix = nn.Sequential(
            nn.BatchNorm2d(width), nn.ReLU(inplace=True), nn.Conv2d(width, width, 1), nn.ReLU(inplace=True)
        )
        self.heatmap = nn.Conv2d(width, num_classes, 1)
        nn.init.constant_(self.heatmap.bias, -math.log((1 - 0.01) / 0.01))  # prior 0.01
        self.offset = nn.Conv2d(width, 2, 1)
        self.size = None if points_only else nn.Conv2d(width, 2, 1)
        self.angle = nn.Conv2d(width, 2, 1) if oriented else None

    def forward(
        self, image_part: torch.Tensor, click_features: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        x = image_part
        if self.click_part is not None and click_features is not None:
            x = x + self.click_part(click_features)
        t = self.mix(x)
        out = {"heatmap": self.heatmap(t), "offset": self.offset(t)}
        if self.size is not None:
            out["size"] = self.size(t)
        if self.angle is not None:
            out["angle"] = self.angle(t)
        return out


@dataclass
class Encoded:
    """What ``encode`` computes once per image: backbone ``features [B, D, h, w]``, the
    head's image part ``head [B, W, h, w]`` and, for C3, the channel-normalised features."""

    features: torch.Tensor
    head: torch.Tensor
    unit: torch.Tensor | None = None


class ClickDetectorNet(nn.Module):
    """``forward(images [B, 3, H, W] normalised, clicks) -> dict`` of head outputs."""

    def __init__(self, config: DetectorConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        in_channels = 3 + (c.num_classes if c.method == "early-fusion" else 0)
        self.backbone = Backbone(in_channels, c.widths, c.blocks, c.features)
        self.stride = self.backbone.stride
        click_channels = 0
        self.late_fusion = None
        self.c3 = None
        if c.late_fusion:
            self.late_fusion = LateFusion(
                c.num_classes, c.late_fusion_channels, c.late_fusion_sigma, self.stride
            )
            click_channels += self.late_fusion.out_channels
        if c.c3:
            self.c3 = C3(c.num_classes, c.c3_sigma, self.stride, c.c3_order)
            click_channels += self.c3.out_channels
        self.head = CenterHead(
            c.features, click_channels, c.head_width, c.num_classes, c.oriented, c.points_only
        )

    def encode(self, images: torch.Tensor, clicks: ClickTensors | None = None) -> Encoded:
        """The image-only part, once per image; Early Fusion also takes the clicks here."""
        if self.config.method == "early-fusion":
            clicks = clicks if clicks is not None else ClickTensors.empty(images.device)
            heat = class_heatmaps(
                clicks,
                images.shape[0],
                self.config.num_classes,
                images.shape[-2:],
                1.0,
                self.config.early_fusion_sigma,
            )
            images = torch.cat([images, heat], dim=1)
        features = self.backbone(images)
        unit = self.c3.unit_features(features) if self.c3 is not None else None
        return Encoded(features, self.head.image_part(features), unit)

    def decode(self, encoded: Encoded, clicks: ClickTensors | None = None) -> dict[str, torch.Tensor]:
        """The click-dependent part: fusion modules and the 1 x 1 head on cached features."""
        clicks = clicks if clicks is not None else ClickTensors.empty(encoded.features.device)
        parts = []
        size = encoded.features.shape[-2:]
        if self.late_fusion is not None:
            parts.append(self.late_fusion(clicks, encoded.features.shape[0], size))
        if self.c3 is not None:
            parts.append(self.c3(encoded.unit, clicks))
        return self.head(encoded.head, torch.cat(parts, dim=1) if parts else None)

    def forward(self, images: torch.Tensor, clicks: ClickTensors | None = None) -> dict[str, torch.Tensor]:
        return self.decode(self.encode(images, clicks), clicks)
