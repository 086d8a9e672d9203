"""Training CPRNet (coarse point refinement, section 3.2) on a CPU: ``train_cpr(images, classes, out)``.

Each step takes random square crops with their annotated points and builds, on the feature
map of stride ``level``:

- a **bag** per annotated point in the crop: R circles around it, circle r (in feature
  cells) holding ``r * u0`` equally spaced points (Eq. 1); points off the feature map are
  left out;
- the **negatives** of class k: every feature cell farther than R cells from every
  annotated point of class k (Eq. 2). Points outside the crop count too, so an object cut
  by the crop edge is not taken for background. Points of ignored objects only exclude.

and minimises ``L_MIL + alpha_ann * L_ann + alpha_neg * L_neg`` (Eq. 3) with the focal
loss (gamma 2) throughout: the bag score ``sum_p softmax_p(ins) * sigmoid(cls)`` against the
point's class (Eq. 5-7), the annotated point's own class score (Eq. 8-9), and the negative
half of the focal loss on the negatives (Eq. 10), each divided by the number of annotated
points M. Points are (x, y) in image pixels, a feature cell c covering pixels
``[c * s, (c + 1) * s)``, so pixel x sits at cell coordinate ``x / s - 0.5``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from fewclick.models.cpr import CPRNet, CPRNetConfig, bag_offsets, normalise, save_cprnet
from fewclick.train.common import StepClock, TrainSchedule, bf16_supported, set_lr
from fewclick.train.detect_data import random_flip
from fewclick.types import Objects

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CPRConfig(TrainSchedule):
    """The loss and sampling settings of the paper (section 3 and 4.1) and our CPU schedule.

    ``radius``: R, the number of circles, in feature cells (the paper: 8 on P3)."""

    radius: int = 5
    u0: int = 8
    alpha_ann: float = 0.5
    alpha_neg: float = 3.0
    gamma: float = 2.0
    crop: int = 256
    lr: float = 2e-3
    warmup_steps: int = 30
    budget_minutes: float = 3.0

    def __post_init__(self) -> None:
        if self.radius < 1:
            raise ValueError(f"expected a bag radius R >= 1 feature cell, got {self.radius}")
        if self.u0 < 1:
            raise ValueError(f"expected u0 >= 1 points per unit of radius, got {self.u0}")


@dataclass
class PointImage:
    """One training image and its annotated points: ``points float32[N, 2]`` (x, y),
    ``labels int64[N]``, ``ignore bool[N]`` (points that only keep negatives away)."""

    image: np.ndarray
    points: np.ndarray
    labels: np.ndarray
    ignore: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.points = np.asarray(self.points, np.float32).reshape(-1, 2)
        self.labels = np.asarray(self.labels, np.int64).reshape(-1)
        n = len(self.points)
        self.ignore = np.zeros(n, bool) if self.ignore is None else np.asarray(self.ignore, bool).reshape(-1)
        if len(self.labels) != n or len(self.ignore) != n:
            raise ValueError(f"expected one label and ignore flag per point ({n}), got {len(self.labels)}")
        if not np.isfinite(self.points).all():
            raise ValueError("expected finite point coordinates; drop objects without a point first")


def focal(prob: torch.Tensor, target: torch.Tensor, gamma: float) -> torch.Tensor:
    """Eq. 4 as a loss (negated), summed over the last axis: ``prob`` and one-hot ``target`` ``[..., K]``."""
    p = prob.clamp(1e-6, 1 - 1e-6)
    pos = target * (1 - p) ** gamma * torch.log(p)
    neg = (1 - target) * p**gamma * torch.log(1 - p)
    return -(pos + neg).sum(-1)


@dataclass
class _Crop:
    image: np.ndarray  # uint8[S, S, 3]
    points: np.ndarray  # float32[N, 2], every point of the image, in crop pixels
    labels: np.ndarray
    ignore: np.ndarray


class _Sampler:
    """Crops of the training images: half of them centred near an annotated point drawn
    with equal chances per class (so that a rare class, such as the platelets among bccd's
    red cells, is learnt too), the other half anywhere in a random image."""

    def __init__(self, images: Sequence[PointImage]) -> None:
        self.images = images
        where = [(i, j) for i, im in enumerate(images) for j in np.flatnonzero(~im.ignore)]
        self.where = np.asarray(where, np.int64).reshape(-1, 2)
        labels = np.asarray([images[i].labels[j] for i, j in self.where], np.int64)
        counts = np.bincount(labels) if len(labels) else np.zeros(0)
        weights = 1.0 / counts[labels] if len(labels) else np.zeros(0)
        self.p = weights / weights.sum() if len(weights) else weights

    def __call__(self, size: int, rng: np.random.Generator) -> _Crop:
        if len(self.where) and rng.random() < 0.5:
            i, j = self.where[rng.choice(len(self.where), p=self.p)]
            return _crop_at(self.images[i], self.images[i].points[j], size, rng)
        return _crop_at(self.images[rng.integers(len(self.images))], None, size, rng)


def _crop_at(item: PointImage, centre: np.ndarray | None, size: int, rng: np.random.Generator) -> _Crop:
    h, w = item.image.shape[:2]
    if centre is not None:
        cx, cy = centre + rng.uniform(-size / 3, size / 3, 2)
        x0, y0 = int(cx - size / 2), int(cy - size / 2)
    else:
        x0, y0 = int(rng.integers(0, max(w - size, 0) + 1)), int(rng.integers(0, max(h - size, 0) + 1))
    x0 = int(np.clip(x0, 0, max(w - size, 0)))
    y0 = int(np.clip(y0, 0, max(h - size, 0)))
    crop = np.zeros((size, size, 3), np.uint8)
    part = item.image[y0 : y0 + size, x0 : x0 + size]
    crop[: part.shape[0], : part.shape[1]] = part
    objects = Objects(
        item.labels, np.full((len(item.points), 4), np.nan), points=item.points - [x0, y0], ignore=item.ignore
    )
    crop, objects = random_flip(crop, objects, rng)
    return _Crop(crop, objects.points, objects.labels, objects.ignore)


class CPRLoss:
    """The CPR loss of one batch of crops, given their feature maps."""

    def __init__(self, net: CPRNet, config: CPRConfig) -> None:
        self.net = net
        self.config = config
        self.offsets = torch.from_numpy(bag_offsets(config.radius, config.u0))

    def __call__(self, feats: torch.Tensor, crops: Sequence[_Crop]) -> dict[str, torch.Tensor]:
        cfg, s = self.config, self.net.stride
        num_classes = self.net.config.num_classes
        _, _, h, w = feats.shape
        mil, ann, neg = feats.new_zeros(()), feats.new_zeros(()), feats.new_zeros(())
        count = 0
        logits_map = self.net.classify(feats.permute(0, 2, 3, 1)).float()  # [B, h, w, K]
        for b, crop in enumerate(crops):
            centre = torch.from_numpy(crop.points / s - 0.5)  # every point, cell coordinates
            labels = torch.from_numpy(crop.labels)
            neg_mask = negatives(centre, labels, h, w, num_classes, cfg.radius)
            prob = torch.sigmoid(logits_map[b])
            neg = neg - (prob**cfg.gamma * F.logsigmoid(-logits_map[b]))[neg_mask].sum()
            inside = (
                ~torch.from_numpy(crop.ignore)
                & (centre[:, 0] >= -0.5)
                & (centre[:, 0] < w - 0.5)
                & (centre[:, 1] >= -0.5)
                & (centre[:, 1] < h - 0.5)
            )
            if not inside.any():
                continue
            a, k = centre[inside], labels[inside]
            target = F.one_hot(k, num_classes).float()
            bag = a[:, None, :] + self.offsets[None]  # [M, U, 2]
            valid = (bag[..., 0] >= 0) & (bag[..., 0] <= w - 1) & (bag[..., 1] >= 0) & (bag[..., 1] <= h - 1)
            vectors = _sample(feats[b], bag)  # [M, U, D]
            cls = torch.sigmoid(self.net.classify(vectors).float())
            ins = self.net.select(vectors).float().masked_fill(~valid[..., None], float("-inf"))
            weight = torch.softmax(ins, dim=1).nan_to_num(0.0)  # a bag wholly off the map: no score
            bag_score = (weight * cls).sum(1)
            mil = mil + focal(bag_score, target, cfg.gamma).sum()
            own = torch.sigmoid(self.net.classify(_sample(feats[b], a[:, None, :])[:, 0]).float())
            ann = ann + focal(own, target, cfg.gamma).sum()
            count += len(a)
        m = max(count, 1)
        losses = {"mil": mil / m, "ann": ann / m, "neg": neg / m}
        losses["total"] = losses["mil"] + cfg.alpha_ann * losses["ann"] + cfg.alpha_neg * losses["neg"]
        return losses


def negatives(
    centre: torch.Tensor, labels: torch.Tensor, h: int, w: int, num_classes: int, radius: float
) -> torch.Tensor:
    """Eq. 2: ``bool[h, w, K]``, True where cell (x, y) is a negative of class k: farther than
    ``radius`` cells from every point of class k (``centre [N, 2]`` in cell coordinates)."""
    cells = torch.stack(
        torch.meshgrid(
            torch.arange(w, dtype=torch.float32), torch.arange(h, dtype=torch.float32), indexing="xy"
        ),
        -1,
    ).reshape(-1, 2)
    out = torch.ones(h, w, num_classes, dtype=torch.bool)
    for k in labels.unique().tolist():
        far = torch.cdist(cells, centre[labels == k].float()).min(1).values > radius
        out[..., k] = far.reshape(h, w)
    return out


def _sample(feats: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    """Bilinear feature vectors ``[..., D]`` of one map ``[D, h, w]`` at cell coordinates ``xy [M, U, 2]``."""
    _, h, w = feats.shape
    scale = torch.tensor([max(w - 1, 1), max(h - 1, 1)], dtype=xy.dtype)
    grid = (2 * xy / scale - 1).to(feats.dtype)
    out = F.grid_sample(feats[None], grid[None], mode="bilinear", padding_mode="border", align_corners=True)
    return out[0].permute(1, 2, 0)  # [M, U, D]


def train_cpr(
    images: Sequence[PointImage],
    classes: Sequence[str],
    out_dir: str | Path,
    config: CPRConfig | None = None,
    net_config: CPRNetConfig | None = None,
    log: Callable[[str], None] = logger.info,
) -> Path:
    """Train CPRNet on annotated points; returns the path of the saved ``cpr.pt``."""
    config = config or CPRConfig()
    net_config = net_config or CPRNetConfig(num_classes=len(classes))
    if net_config.num_classes != len(classes):
        raise ValueError(f"expected {net_config.num_classes} class names, got {len(classes)}")
    images = [im for im in images if im.image.shape[0] >= 8 and im.image.shape[1] >= 8]
    if not any(len(im.points) for im in images):
        raise ValueError("CPR needs annotated points: the training images have none")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    if config.bf16 is None:
        config = replace(config, bf16=bf16_supported())
    net = CPRNet(net_config).to(memory_format=torch.channels_last)
    optim = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    criterion = CPRLoss(net, config)
    sample = _Sampler(images)
    rng = np.random.default_rng(config.seed)
    clock = StepClock("train CPRNet", 0, config.steps, config.budget_minutes * 60)
    while clock.running:
        set_lr(optim, config.lr, config.warmup_steps, clock.step, clock.total)
        clock.start()
        net.train()
        crops = [sample(config.crop, rng) for _ in range(config.batch_size)]
        batch = torch.from_numpy(np.stack([normalise(c.image) for c in crops])).to(
            memory_format=torch.channels_last
        )
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(config.bf16)):
            feats = net.features(batch)
        losses = criterion(feats.float(), crops)
        optim.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
        optim.step()
        if clock.done({k: f"{v.item():.3f}" for k, v in losses.items()}):
            minutes = config.budget_minutes
            log(f"{clock.per_step:.2f} s/step: {clock.total} CPRNet steps fit in {minutes:g} minutes")
    clock.close()
    return save_cprnet(
        out_dir / "cpr.pt",
        net,
        train=asdict(config),
        classes=list(classes),
        steps=clock.step,
        minutes=clock.elapsed() / 60,
    )
