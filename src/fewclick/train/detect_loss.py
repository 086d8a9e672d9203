"""Losses of the click detector: CenterNet's focal and regression losses, and C3Det's
User-input Enforcing Loss (UEL) adapted to a dense head."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from fewclick.train.detect_data import Targets


def focal_heatmap_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss; ``weight [B, h, w]`` zeroes ignore regions."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    neg = (1 - pos) * (1 - target).pow(4)
    w = weight[:, None]
    pos_loss = -(torch.log(p) * (1 - p).pow(2) * pos * w).sum()
    neg_loss = -(torch.log(1 - p) * p.pow(2) * neg * w).sum()
    return (pos_loss + neg_loss) / pos.sum().clamp_min(1)


@dataclass(frozen=True)
class DetectionCriterion:
    """``criterion(outputs, targets, clicked) -> dict`` of named loss terms and ``total``.

    The UEL: for every clicked object, the predictions that overlap its ground-truth box
    (here: the grid cells inside it) must agree with the click's class: the clicked class
    is pushed up at the object's centre and every other class is pushed down in the box
    (a focal binary cross-entropy, as the paper pairs UEL with the task's own loss).
    """

    points_only: bool
    oriented: bool
    uel_weight: float = 1.0
    size_weight: float = 1.0
    offset_weight: float = 1.0
    angle_weight: float = 1.0

    def __call__(
        self, outputs: dict[str, torch.Tensor], targets: list[Targets], clicked: list[np.ndarray]
    ) -> dict[str, torch.Tensor]:
        heat = torch.from_numpy(np.stack([t.heatmap for t in targets]))
        weight = torch.from_numpy(np.stack([t.weight for t in targets]))
        losses = {"heatmap": focal_heatmap_loss(outputs["heatmap"], heat, weight)}
        batch = torch.cat([torch.full((len(t.index),), i, dtype=torch.long) for i, t in enumerate(targets)])
        index = torch.from_numpy(np.concatenate([t.index for t in targets]))
        object_weight = torch.from_numpy(np.concatenate([t.object_weight for t in targets]))
        n = max(len(index), 1)

        def gather(name: str) -> torch.Tensor:
            out = outputs[name].flatten(2)  # [B, 2, h*w]
            return out[batch, :, index]

        def target(name: str) -> torch.Tensor:
            return torch.from_numpy(np.concatenate([getattr(t, name) for t in targets]))

        def l1(name: str) -> torch.Tensor:  # summed over objects, each by its loss weight
            error = F.l1_loss(gather(name), target(name), reduction="none").sum(1)
            return (error * object_weight).sum() / n

        losses["offset"] = self.offset_weight * l1("offset")
        if not self.points_only:
            losses["size"] = self.size_weight * l1("size")
            if not self.oriented and len(index):
                giou = self._giou(gather("offset"), gather("size"), target("boxes"), index, outputs)
                losses["giou"] = (giou * object_weight).mean()
        if self.oriented:
            losses["angle"] = self.angle_weight * l1("angle")
        if self.uel_weight > 0:
            losses["uel"] = self.uel_weight * self._uel(outputs["heatmap"], targets, clicked)
        losses["total"] = sum(losses.values())
        return losses

    def _giou(
        self,
        offset: torch.Tensor,
        size: torch.Tensor,
        boxes: torch.Tensor,
        index: torch.Tensor,
        outputs: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        """GIoU loss ``[N]`` of the box decoded at each object's centre cell (in cells), which
        rewards what evaluation measures: the overlap, not the log-size error."""
        from torchvision.ops import generalized_box_iou_loss

        w = outputs["heatmap"].shape[-1]
        cell = torch.stack([index % w, index // w], 1).float()
        centre = cell + offset
        half = torch.exp(size.clamp(-4, 6)) / 2
        pred = torch.cat([centre - half, centre + half], 1)
        return generalized_box_iou_loss(pred, boxes, reduction="none")

    def _uel(self, logits: torch.Tensor, targets: list[Targets], clicked: list[np.ndarray]) -> torch.Tensor:
        """Mean over clicked objects of: focal pull of the clicked class at the object's
        centre cell + focal push of every other class over the cells of its box."""
        num_classes, h, w = logits.shape[1:]
        batch, labels, cells, masks = [], [], [], []
        ys, xs = np.arange(h)[:, None], np.arange(w)[None, :]
        for b, (t, chosen) in enumerate(zip(targets, clicked)):
            for r in np.flatnonzero(np.isin(t.object, chosen)):
                x0, y0, x1, y1 = t.boxes[r]
                mask = (xs >= np.floor(x0)) & (xs < np.ceil(x1)) & (ys >= np.floor(y0)) & (ys < np.ceil(y1))
                if not mask.any():
                    continue
                batch.append(b)
                labels.append(int(t.labels[r]))
                cells.append(int(t.index[r]))
                masks.append(mask)
        if not batch:
            return logits.sum() * 0
        batch_t, labels_t = torch.tensor(batch), torch.tensor(labels)
        p_centre = torch.sigmoid(logits.flatten(2)[batch_t, labels_t, torch.tensor(cells)]).clamp(
            1e-4, 1 - 1e-4
        )
        pull = -torch.log(p_centre) * (1 - p_centre) ** 2
        p = torch.sigmoid(logits[batch_t]).clamp(1e-4, 1 - 1e-4)  # [K, C, h, w]
        others = torch.ones(len(batch), num_classes, 1, 1)
        others[torch.arange(len(batch)), labels_t] = 0
        inside = torch.from_numpy(np.stack(masks)).float()[:, None]  # [K, 1, h, w]
        push = (-torch.log(1 - p) * p**2 * others * inside).sum((1, 2, 3))
        return (pull + push).mean()
