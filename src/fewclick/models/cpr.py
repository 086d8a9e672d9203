"""CPRNet (coarse point refinement, section 3.2): one feature level, four 3 x 3 convolutions,
and two 1 x 1 branches over the point features.

``classify`` (f_cls, sigmoid: "is this point of class k?") and ``select`` (f_ins, softmax
over a bag in the loss: "which points of the bag carry the class?") are linear maps of a
feature vector, so scoring a bilinearly interpolated feature vector is the same as
interpolating the logit maps; refinement uses the maps, training the vectors.

Training and refinement share the bag (:func:`bag_offsets`), the checkpoint
(:func:`save_cprnet` / :func:`load_cprnet`, kind ``"cpr"``) and the input (:func:`normalise`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fewclick.models.backbone import Backbone
from fewclick.models.checkpoint import StoredConfig, load_module, save_module
from fewclick.models.pixels import normalise as normalise  # the image input this network expects

LEVELS = (4, 8)
CHECKPOINT_KIND, CHECKPOINT_VERSION = "cpr", 2  # 2: config and weights under the keys of every kind


@dataclass(frozen=True)
class CPRNetConfig(StoredConfig, name="CPRNet config"):
    """Everything needed to rebuild the network; stored in every checkpoint as a dict.

    ``level``: the stride of the feature map the bags are sampled on (the paper: P2 or P3,
    i.e. 4 or 8). The backbone's stride-4 output is average-pooled for level 8."""

    num_classes: int
    level: int = 4
    widths: tuple[int, int, int] = (32, 64, 96)
    blocks: tuple[int, int, int] = (1, 2, 2)
    features: int = 64
    head_width: int = 64

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"expected a feature level in {LEVELS}, got {self.level}")
        if self.num_classes < 1:
            raise ValueError(f"expected num_classes >= 1, got {self.num_classes}")


class CPRNet(nn.Module):
    """``features(images float[B, 3, H, W]) -> float[B, D, H/level, W/level]``;
    ``classify`` / ``select``: ``float[..., D] -> float[..., K]`` logits."""

    def __init__(self, config: CPRNetConfig) -> None:
        super().__init__()
        self.config = config
        self.stride = config.level
        self.backbone = Backbone(3, config.widths, config.blocks, config.features)
        layers: list[nn.Module] = []
        c_in = config.features
        for _ in range(4):
            layers += [nn.Conv2d(c_in, config.head_width, 3, 1, 1), nn.ReLU(inplace=True)]
            c_in = config.head_width
        self.convs = nn.Sequential(*layers)
        self.cls = nn.Linear(config.head_width, config.num_classes)
        self.ins = nn.Linear(config.head_width, config.num_classes)
        nn.init.constant_(self.cls.bias, -4.6)  # prior 0.01: the background is most points

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = self.backbone(images)
        if self.stride == 8:
            x = F.avg_pool2d(x, 2, ceil_mode=True)
        return self.convs(x)

    def classify(self, vectors: torch.Tensor) -> torch.Tensor:
        return self.cls(vectors)

    def select(self, vectors: torch.Tensor) -> torch.Tensor:
        return self.ins(vectors)

    def class_logits(self, images: torch.Tensor) -> torch.Tensor:
        """Class logit maps ``float[B, K, h, w]``."""
        feats = self.features(images)
        return self.cls(feats.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def bag_offsets(radius: int, u0: int = 8) -> np.ndarray:
    """The bag around a point at the origin, ``float32[U, 2]`` in feature cells: R circles,
    circle r holding ``r * u0`` equally spaced points (Eq. 1), U = u0 * R (R + 1) / 2."""
    out = []
    for r in range(1, radius + 1):
        angle = 2 * np.pi * np.arange(r * u0) / (r * u0)
        out.append(np.stack([r * np.cos(angle), r * np.sin(angle)], 1))
    return np.concatenate(out).astype(np.float32)


def save_cprnet(path: str | Path, net: CPRNet, **fields) -> Path:
    """Write ``net`` with ``fields`` (class names, training settings) as a CPR checkpoint that
    :func:`load_cprnet` reads."""
    return save_module(path, CHECKPOINT_KIND, CHECKPOINT_VERSION, net, **fields)


def load_cprnet(path: str | Path) -> tuple[CPRNet, dict]:
    """A trained CPRNet (eval mode) and its checkpoint dict; errors name the file and the problem."""
    build = lambda config: CPRNet(CPRNetConfig.from_dict(config))  # noqa: E731
    return load_module(path, CHECKPOINT_KIND, CHECKPOINT_VERSION, build, {1: _from_version_1})


def _from_version_1(ckpt: dict) -> dict:
    """Version 1 kept the config under ``net`` and the weights under ``state_dict``."""
    out = {k: v for k, v in ckpt.items() if k not in ("net", "state_dict")}
    return {**out, "config": ckpt.get("net"), "model": ckpt.get("state_dict")}
