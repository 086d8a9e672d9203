"""The click-dependent parts of C3Det: click heatmaps, Late Fusion, and C3 correlation.

Clicks travel as a :class:`ClickTensors` triple (xy in input pixels, class ids, index of
the image in the batch). Feature cell ``(j, i)`` of a stride-``s`` map is centred on input
pixel ``((j + 0.5) s, (i + 0.5) s)``; heatmaps are rendered directly on that grid.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn

from fewclick.models.backbone import conv_bn


@dataclass(frozen=True)
class ClickTensors:
    """``xy float[M, 2]`` (x, y) input pixels, ``labels long[M]`` class ids, ``batch long[M]``."""

    xy: torch.Tensor
    labels: torch.Tensor
    batch: torch.Tensor

    @classmethod
    def empty(cls, device: torch.device | str = "cpu") -> ClickTensors:
        return cls(
            torch.zeros(0, 2, device=device),
            torch.zeros(0, dtype=torch.long, device=device),
            torch.zeros(0, dtype=torch.long, device=device),
        )

    def __len__(self) -> int:
        return len(self.labels)


def gaussian_maps(clicks: ClickTensors, size: tuple[int, int], stride: float, sigma: float) -> torch.Tensor:
    """One Gaussian per click on a ``size = (h, w)`` grid of cells ``stride`` pixels wide:
    ``float[M, h, w]`` with peak 1; ``sigma`` is in input pixels."""
    h, w = size
    device = clicks.xy.device
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * stride
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * stride
    gx = torch.exp(-((xs[None, :] - clicks.xy[:, :1]) ** 2) / (2 * sigma**2))
    gy = torch.exp(-((ys[None, :] - clicks.xy[:, 1:]) ** 2) / (2 * sigma**2))
    return gy[:, :, None] * gx[:, None, :]


def collate_by_class(
    maps: torch.Tensor, clicks: ClickTensors, batch_size: int, num_classes: int
) -> torch.Tensor:
    """Per-click maps ``[M, h, w]`` -> per-class maps ``[B, C, h, w]`` by element-wise max;
    classes without clicks stay zero."""
    h, w = maps.shape[-2:]
    out = maps.new_zeros(batch_size * num_classes, h, w)
    if len(clicks):
        index = clicks.batch * num_classes + clicks.labels
        out = _scatter_max(out, index, maps)
    return out.view(batch_size, num_classes, h, w)


def class_heatmaps(
    clicks: ClickTensors,
    batch_size: int,
    num_classes: int,
    size: tuple[int, int],
    stride: float,
    sigma: float,
) -> torch.Tensor:
    """The per-class click heatmaps (max within a class) ``float[B, C, h, w]``."""
    return collate_by_class(gaussian_maps(clicks, size, stride, sigma), clicks, batch_size, num_classes)


class LateFusion(nn.Module):
    """Per-class click heatmaps -> a small CNN -> ``float[B, out_channels, h, w]`` features
    (C3Det's local context). Rendered on the feature grid with ``sigma`` input pixels."""

    def __init__(self, num_classes: int, out_channels: int = 16, sigma: float = 1.0, stride: int = 4) -> None:
        super().__init__()
        self.num_classes, self.sigma, self.stride = num_classes, sigma, stride
        self.net = nn.Sequential(conv_bn(num_classes, out_channels), conv_bn(out_channels, out_channels))
        self.out_channels = out_channels

    def forward(self, clicks: ClickTensors, batch_size: int, size: tuple[int, int]) -> torch.Tensor:
        # A sigma below a third of a cell would miss every cell centre; keep it visible.
        sigma = max(self.sigma, self.stride / 3)
        heat = class_heatmaps(clicks, batch_size, self.num_classes, size, self.stride, sigma)
        return self.net(heat)


class C3(nn.Module):
    """Class-wise Collated Correlation: ``[B, C, h, w]`` maps of how much each location
    resembles the clicked examples of each class (C3Det's global context).

    Per click: a Gaussian (``sigma`` input pixels) on the feature grid, normalised to sum
    1; a template vector by heatmap-weighted sum pooling of the features; its correlation
    with every location; the maps of one class collated by max ("correlate-then-collate").
    ``order="collate-then-correlate"`` is the paper's ablation (one template per class).
    Features and templates are L2-normalised over channels, so a map is a cosine
    similarity in [-1, 1]; the paper's raw dot product has no fixed scale, which makes
    training from scratch unstable.
    """

    def __init__(
        self, num_classes: int, sigma: float = 3.0, stride: int = 4, order: str = "correlate-then-collate"
    ) -> None:
        super().__init__()
        if order not in ("correlate-then-collate", "collate-then-correlate"):
            raise ValueError(
                f"expected order 'correlate-then-collate' or 'collate-then-correlate', got {order!r}"
            )
        self.num_classes, self.sigma, self.stride, self.order = num_classes, sigma, stride, order
        self.out_channels = num_classes

    @staticmethod
    def unit_features(features: torch.Tensor) -> torch.Tensor:
        """Features L2-normalised over channels: what ``forward`` correlates (cacheable)."""
        return nn.functional.normalize(features, dim=1)

    def forward(self, unit: torch.Tensor, clicks: ClickTensors) -> torch.Tensor:
        """``unit``: :meth:`unit_features` of the backbone features ``[B, D, h, w]``."""
        b, _, h, w = unit.shape
        out = unit.new_zeros(b, self.num_classes, h, w)
        if not len(clicks):
            return out
        maps = gaussian_maps(clicks, (h, w), self.stride, max(self.sigma, self.stride / 3))
        if self.order == "collate-then-correlate":
            maps = collate_by_class(maps, clicks, b, self.num_classes).flatten(0, 1)
            present = maps.flatten(1).amax(1) > 0
            index = torch.nonzero(present).squeeze(1)
            maps, batch, labels = maps[index], index // self.num_classes, index % self.num_classes
        else:
            batch, labels = clicks.batch, clicks.labels
        weights = maps / maps.flatten(1).sum(1).clamp_min(1e-12)[:, None, None]
        for image in torch.unique(batch).tolist():
            sel = torch.nonzero(batch == image).squeeze(1)
            feat = unit[image]  # [D, h, w]
            templates = torch.einsum("mhw,dhw->md", weights[sel], feat)
            templates = nn.functional.normalize(templates, dim=1)
            corr = torch.einsum("md,dhw->mhw", templates, feat)
            index = labels[sel]
            per_class = corr.new_full((self.num_classes, h, w), -1.0)
            per_class = _scatter_max(per_class, index, corr)
            has = torch.zeros(self.num_classes, dtype=torch.bool, device=corr.device)
            has[index] = True
            out[image] = torch.where(has[:, None, None], per_class, torch.zeros_like(per_class))
        return out


def _scatter_max(out: torch.Tensor, index: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``out[index[m]] = max(out[index[m]], values[m])`` for every m."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="index_reduce", category=UserWarning)
        return out.index_reduce(0, index, values, "amax", include_self=True)
