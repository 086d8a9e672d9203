"""The click-to-detect network: backbone, optional click fusion, CenterNet-style head.

``ClickDetectorNet.encode`` runs the image-only part once (cacheable); ``decode`` runs
the click-dependent part (Late Fusion, C3, the head). Early Fusion is the exception: its
clicks enter with the image, so ``encode`` needs them and nothing can be cached.

:func:`save_detector` / :func:`load_detector` write and read its checkpoint (kind
``"click-detector"``); :func:`normalise` makes the image input it expects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from fewclick.models.backbone import Backbone, FeatureNeck, conv_bn, unit_similarity_features
from fewclick.models.checkpoint import StoredConfig, load_module, save_module
from fewclick.models.clicks import C3, ClickTensors, LateFusion, class_heatmaps
from fewclick.models.imagenet import ImageNetBackbone
from fewclick.models.pixels import normalise as normalise  # the image input this network expects

METHODS = ("c3det", "late-fusion", "early-fusion", "plain")
BACKBONES = ("scratch", "pretrained", "imagenet")
CHECKPOINT_KIND = "click-detector"
CHECKPOINT_VERSION = 2  # 2: box outputs no longer see the clicks


@dataclass(frozen=True)
class DetectorConfig(StoredConfig, name="detector config"):
    """Everything needed to rebuild a network; stored in every checkpoint as a dict."""

    num_classes: int
    method: str = "c3det"  # one of METHODS; Passthrough is a decoder over "plain"
    # "scratch": our own backbone on the image; "pretrained": a neck on the frozen maps of
    # the pretrained encoder (models.backbone.PRETRAINED_MAPS), computed outside the network;
    # "imagenet": EfficientNet-Lite (``imagenet``: lite0 or lite2, models.imagenet) on the
    # image, its ImageNet weights fine-tuned end to end
    backbone: str = "scratch"
    imagenet: str = "lite0"
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
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}; expected one of {BACKBONES}")
        if self.backbone == "pretrained" and self.method == "early-fusion":
            raise ValueError("early fusion puts clicks into the image, which a frozen encoder never sees")
        if self.backbone == "imagenet" and self.method == "early-fusion":
            raise ValueError(
                "early fusion adds click channels to the image, which ImageNet weights never saw"
            )
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


class CenterHead(nn.Module):
    """Dense outputs on the stride-4 grid: class ``heatmap`` logits ``[B, C, h, w]``,
    ``size`` = log(w / stride), log(h / stride) ``[B, 2, h, w]``, sub-cell ``offset``
    ``[B, 2, h, w]`` in cells, and ``angle`` = (cos 2a, sin 2a) ``[B, 2, h, w]`` when oriented.

    A click says what is where, not how big it is: only the class heatmap sees the click
    features; the box outputs (offset, size, angle) come from the image features alone.
    (With clicks feeding the size too, a clicked large object that is rare in training,
    such as a white cell in ``bccd``, came back several times too large.) So an
    interactive predictor pays once per image for the 3 x 3 convolutions and the box
    outputs (``image_part`` and ``boxes``, cached by ``set_image``); a click re-runs a
    1 x 1 projection of the click features added to the image part, and 1 x 1 layers.
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
        self.mix = _mix(width)
        self.heatmap = nn.Conv2d(width, num_classes, 1)
        nn.init.constant_(self.heatmap.bias, -math.log((1 - 0.01) / 0.01))  # prior 0.01
        self.box_mix = _mix(width)
        self.offset = nn.Conv2d(width, 2, 1)
        self.size = None if points_only else nn.Conv2d(width, 2, 1)
        self.angle = nn.Conv2d(width, 2, 1) if oriented else None

    def boxes(self, image_part: torch.Tensor) -> dict[str, torch.Tensor]:
        """The click-independent outputs: ``offset`` and, where the model has them, ``size``, ``angle``."""
        t = self.box_mix(image_part)
        out = {"offset": self.offset(t)}
        if self.size is not None:
            out["size"] = self.size(t)
        if self.angle is not None:
            out["angle"] = self.angle(t)
        return out

    def forward(self, image_part: torch.Tensor, click_features: torch.Tensor | None) -> torch.Tensor:
        """Class heatmap logits ``[B, C, h, w]`` from the image part and the click features."""
        x = image_part
        if self.click_part is not None and click_features is not None:
            x = x + self.click_part(click_features)
        return self.heatmap(self.mix(x))


def _mix(width: int) -> nn.Sequential:
    return nn.Sequential(
        nn.BatchNorm2d(width), nn.ReLU(inplace=True), nn.Conv2d(width, width, 1), nn.ReLU(inplace=True)
    )


@dataclass
class Encoded:
    """What ``encode`` computes once per image: backbone ``features [B, D, h, w]``, the
    head's image part ``head [B, W, h, w]``, the click-independent box outputs and, for
    C3, the channel-normalised features."""

    features: torch.Tensor
    head: torch.Tensor
    boxes: dict[str, torch.Tensor]
    unit: torch.Tensor | None = None


class ClickDetectorNet(nn.Module):
    """``forward(images [B, 3, H, W] normalised, clicks) -> dict`` of head outputs."""

    def __init__(self, config: DetectorConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        in_channels = 3 + (c.num_classes if c.method == "early-fusion" else 0)
        if c.backbone == "pretrained":
            self.backbone = FeatureNeck(out_channels=c.features)
        elif c.backbone == "imagenet":
            self.backbone = ImageNetBackbone(c.imagenet, c.features)
        else:
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
            # on the pretrained backbone, C3 correlates the encoder's own stride-8 features
            # (unit_similarity_features), not the neck's, which a minute of training barely shapes
            c3_stride = 8 if c.backbone == "pretrained" else self.stride
            self.c3 = C3(c.num_classes, c.c3_sigma, c3_stride, c.c3_order)
            click_channels += self.c3.out_channels
        self.head = CenterHead(
            c.features, click_channels, c.head_width, c.num_classes, c.oriented, c.points_only
        )

    def encode(
        self, images: torch.Tensor | list[torch.Tensor], clicks: ClickTensors | None = None
    ) -> Encoded:
        """The image-only part, once per image; Early Fusion also takes the clicks here.
        ``images``: normalised pixels ``[B, 3, H, W]``, or for the pretrained backbone the
        encoder's maps (finest first, the finest at stride 4 of the encoder's input)."""
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
        unit = None
        if self.c3 is not None:
            pretrained = self.config.backbone == "pretrained"
            unit = unit_similarity_features(images) if pretrained else self.c3.unit_features(features)
        image_part = self.head.image_part(features)
        return Encoded(features, image_part, self.head.boxes(image_part), unit)

    def decode(self, encoded: Encoded, clicks: ClickTensors | None = None) -> dict[str, torch.Tensor]:
        """The click-dependent part: fusion modules and the 1 x 1 class head on cached
        features; the box outputs come from ``encode``."""
        clicks = clicks if clicks is not None else ClickTensors.empty(encoded.features.device)
        parts = []
        size = encoded.features.shape[-2:]
        if self.late_fusion is not None:
            parts.append(self.late_fusion(clicks, encoded.features.shape[0], size))
        if self.c3 is not None:
            corr = self.c3(encoded.unit, clicks)
            if corr.shape[-2:] != size:
                corr = nn.functional.interpolate(corr, size=size, mode="bilinear", align_corners=False)
            parts.append(corr)
        heatmap = self.head(encoded.head, torch.cat(parts, dim=1) if parts else None)
        return {"heatmap": heatmap, **encoded.boxes}

    def forward(self, images: torch.Tensor, clicks: ClickTensors | None = None) -> dict[str, torch.Tensor]:
        return self.decode(self.encode(images, clicks), clicks)


def save_detector(path: str | Path, net: ClickDetectorNet, **fields) -> Path:
    """Write ``net`` (its config as a dict and its weights) with ``fields`` (class names,
    training state) as a click-detector checkpoint that :func:`load_detector` reads."""
    return save_module(path, CHECKPOINT_KIND, CHECKPOINT_VERSION, net, **fields)


def load_detector(path: str | Path) -> tuple[ClickDetectorNet, dict]:
    """A trained network (eval mode) and its checkpoint dict; errors name the file and the problem."""
    build = lambda config: ClickDetectorNet(DetectorConfig.from_dict(config))  # noqa: E731
    return load_module(path, CHECKPOINT_KIND, CHECKPOINT_VERSION, build)
