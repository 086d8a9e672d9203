"""Training C3Det on the frozen maps of the pretrained encoder, in about a minute.

The encoder's maps of every training tile are computed once (by the caller, with
:func:`fewclick.predict.features.training_tiles`) and held in memory as float16; a step
crops the maps, not the pixels, so only the neck, the click modules and the head run:
the same Late Fusion, C3 correlation, User-input Enforcing Loss and dense head as the
from-scratch detector (:mod:`fewclick.train.detect`). Crops start on multiples of 16
input pixels so that the four maps stay aligned; flips and the transpose act on the maps
(the encoder is not flip-equivariant, so this is an augmentation, not an identity).

``train_pretrained_detector(tiles, classes, out_dir, config, train)`` is deterministic
for a seed and a step count and writes a click-detector checkpoint that
:class:`fewclick.predict.detect.ClickDetector` loads with an encoder.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from fewclick.io.tiling import Tile, crop_objects
from fewclick.models.backbone import PRETRAINED_MAPS
from fewclick.models.detector import ClickDetectorNet, DetectorConfig, save_detector
from fewclick.simulate.clicks import training_click_indices
from fewclick.train.common import set_lr
from fewclick.train.detect import _sample_clicks, warm_start
from fewclick.train.detect_data import Sample, build_targets, flip_objects, side_range
from fewclick.train.detect_loss import DetectionCriterion
from fewclick.types import Objects, geometry_only

logger = logging.getLogger(__name__)

ALIGN = 16  # input pixels: the coarsest map's stride
#: Seconds per step (two 512 px crops) on this machine's 2 cores with nothing else
#: running, measured 2026-11-23 over 100 steps on bccd and hit_uav (0.198, 0.185; eight
#: 256 px crops took 0.200, 0.201): a budget in seconds becomes steps by it, so a busy
#: machine trains the same model, only slower (``benchmarks/detect_fewshot.py
#: --calibrate`` measures it). A second 2-thread job on the same 2 cores made a step 7x
#: slower (1.48 s), so the earlier 0.38 s, taken beside other jobs, gave the minute only
#: half its steps.
PRETRAINED_SECONDS_PER_STEP = 0.20


@dataclass(frozen=True)
class FeatureTile:
    """One training tile: the encoder's ``maps`` (``float16[C, h, w]`` each, finest first,
    the finest at stride 4 of the encoder's 1024 px input), its ``objects`` in encoder-input
    pixels, and ``valid`` = (height, width) of the input the tile fills (the rest is padding)."""

    maps: list[np.ndarray]
    objects: Objects
    valid: tuple[int, int]


@dataclass(frozen=True)
class PretrainedTrainConfig:
    # Input pixels (128 cells at stride 4). Two 512 px crops cost a step what eight 256 px
    # ones did, and scored +0.12 (bccd) and +0.05 (hit_uav) mAP at 5 clicks after 300 steps
    # on 5 images (validation images of the training part): a cell of bccd is 160-320 px at
    # the encoder's scale, more than a 256 px crop holds, and more context per crop helps
    # small objects too.
    crop: int = 512
    batch_size: int = 2
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 30
    steps: int = 300  # 60 s at PRETRAINED_SECONDS_PER_STEP
    seed: int = 0
    max_clicks: int = 20
    click_rule: str = "code"
    uel_weight: float = 1.0
    flips: bool = True
    threads: int = 2
    # a click-detector checkpoint whose weights start the run (fine-tuning: box-level active
    # learning retrains each episode from the last episode's model)
    init: str | None = None


def pretrained_config(num_classes: int, oriented: bool = False, points_only: bool = False) -> DetectorConfig:
    """C3Det on the pretrained maps."""
    return DetectorConfig(
        num_classes=num_classes,
        method="c3det",
        backbone="pretrained",
        oriented=oriented,
        points_only=points_only,
    )


def train_pretrained_detector(
    tiles: list[FeatureTile],
    classes: list[str],
    out_dir: str | Path,
    config: DetectorConfig,
    train: PretrainedTrainConfig | None = None,
    log: Callable[[str], None] = logger.info,
    progress: Callable[[int, int | None], None] | None = None,
) -> Path:
    """Train on ``tiles``; writes and returns ``out_dir/last.pt`` (a fresh run each time:
    at a minute, resuming is not worth its bookkeeping). ``progress(step, total)`` after
    every step."""
    train = train or PretrainedTrainConfig()
    if config.backbone != "pretrained":
        raise ValueError(f"expected a config with backbone 'pretrained', got {config.backbone!r}")
    if len(classes) != config.num_classes:
        raise ValueError(f"{len(classes)} class names for a model of {config.num_classes} classes")
    if not config.oriented:  # sizes then come from the axis-aligned boxes
        tiles = [replace(t, objects=geometry_only(t.objects, oriented=False)) for t in tiles]
    tiles = [t for t in tiles if len(t.objects)]
    if not tiles:
        raise ValueError("no training tile has an object: nothing to learn from")
    expected = [c for _, c in PRETRAINED_MAPS]
    found = [m.shape[0] for m in tiles[0].maps]
    if found != expected:
        raise ValueError(f"expected maps of {expected} channels (the pretrained encoder's), got {found}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(train.threads)
    torch.manual_seed(train.seed)
    rng = np.random.default_rng(train.seed)
    net = ClickDetectorNet(config)
    if train.init is not None:
        warm_start(net, train.init, log)
    optim = torch.optim.AdamW(net.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    criterion = DetectionCriterion(
        config.points_only, config.oriented, train.uel_weight if config.uses_clicks and config.uel else 0.0
    )
    started = time.perf_counter()
    for step in range(train.steps):
        set_lr(optim, train.lr, train.warmup_steps, step, train.steps)
        net.train()
        samples = [_sample(tiles[i], train, rng) for i in rng.integers(0, len(tiles), train.batch_size)]
        maps = [torch.from_numpy(np.stack([s[0][j] for s in samples])).float() for j in range(len(expected))]
        crops = [s[1] for s in samples]
        targets = [
            build_targets(c.objects, (train.crop, train.crop), config.num_classes, net.stride) for c in crops
        ]
        outputs = net(maps, _sample_clicks(crops))
        losses = criterion(outputs, targets, [c.clicked for c in crops])
        optim.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
        optim.step()
        if progress is not None:
            progress(step + 1, train.steps)
    elapsed = time.perf_counter() - started
    log(f"trained {train.steps} steps in {elapsed:.1f} s ({elapsed / train.steps:.3f} s/step)")
    path = out_dir / "last.pt"
    save_detector(
        path,
        net,
        train=asdict(train),
        classes=list(classes),
        step=train.steps,
        total_steps=train.steps,
        elapsed_s=elapsed,
        seconds_per_step=elapsed / train.steps,
        sizes=side_range([t.objects for t in tiles], config.num_classes),
    )
    return path


def _sample(tile: FeatureTile, train: PretrainedTrainConfig, rng: np.random.Generator) -> tuple[list, Sample]:
    """A crop of the tile's maps (``[C, h, w]`` each) and its objects, flipped at random,
    with clicks on a random subset of the objects."""
    size = train.crop
    vh, vw = tile.valid
    centres = tile.objects.centers
    usable = np.flatnonzero(np.isfinite(centres).all(1) & ~tile.objects.ignore)
    if len(usable) and rng.random() < 0.5:
        cx, cy = centres[rng.choice(usable)] + rng.uniform(-size / 3, size / 3, 2)
        x0, y0 = cx - size / 2, cy - size / 2
    else:
        x0, y0 = rng.uniform(0, max(vw - size, 0) + 1), rng.uniform(0, max(vh - size, 0) + 1)
    full = tile.maps[0].shape[-1] * 4  # the encoder's input side (1024)
    x0 = int(np.clip(round(x0 / ALIGN) * ALIGN, 0, full - size))
    y0 = int(np.clip(round(y0 / ALIGN) * ALIGN, 0, full - size))
    maps = []
    for (stride, _), m in zip(PRETRAINED_MAPS, tile.maps):
        c0, r0, n = x0 // stride, y0 // stride, size // stride
        maps.append(m[:, r0 : r0 + n, c0 : c0 + n])
    objects = crop_objects(
        tile.objects, Tile(x0, y0, x0 + size, y0 + size), min_visible=0.7, cut_as_difficult=True
    )
    if train.flips:
        ops = rng.random(3) < 0.5
        maps = [_flip(m, ops) for m in maps]
        objects = flip_objects(objects, size, ops)
    clicked = training_click_indices(objects, rng, train.max_clicks, train.click_rule)
    return maps, Sample(np.zeros((0,), np.uint8), objects, clicked)


def _flip(m: np.ndarray, ops: np.ndarray) -> np.ndarray:
    if ops[0]:
        m = m[:, :, ::-1]
    if ops[1]:
        m = m[:, ::-1]
    if ops[2]:
        m = m.transpose(0, 2, 1)
    return np.ascontiguousarray(m)


def steps_for_seconds(seconds: float) -> int:
    """The step count of a budget of ``seconds`` (at :data:`PRETRAINED_SECONDS_PER_STEP`)."""
    return max(int(round(seconds / PRETRAINED_SECONDS_PER_STEP)), 1)
