"""Training the full-image and single-region models (interactive full image segmentation,
section 3.3 and 5.3) on label maps, with the annotator simulated.

Each step takes one training image and simulates a session on it:

1. every region's 4 extreme points (DEXTR's rule, ties within 0-2 px drawn at random);
2. 0 to ``max_rounds`` rounds of corrective scribbles (uniformly), each simulated as the
   benchmark does (:func:`fewclick.simulate.allocation.allocate_scribbles`) against the
   network's own current prediction, on a canvas whose longest side is ``canvas`` pixels.
   The paper trains its scribble models on scribbles simulated against its extreme-point
   models' predictions; here the model being trained plays that part. The full-image
   model's rounds use either allocation at random, the single-region model's one per
   region (the only allocation it is run with);
3. the loss on that canvas:

   - ``pixelwise`` (full image): every region's logits pasted onto the canvas, a softmax
     across regions at every pixel, cross-entropy weighted by the inverse area of the
     smallest RoI box holding the pixel; void pixels and pixels in no box count for nothing;
   - ``mask`` (single region): per region, binary cross-entropy of its ``MASK x MASK``
     logits against its ground-truth mask RoI-aligned to its box (Mask R-CNN's loss), void
     pixels weighted out, averaged over regions.

Only the neck (or the from-scratch backbone) and the head train; the pretrained encoder's
maps are computed once per image (:func:`fewclick.models.fullimage.feature_inputs`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.nn import functional as F
from torchvision.ops import roi_align
from tqdm import tqdm

from fewclick.models.checkpoint import save_module
from fewclick.models.fullimage import (
    KIND,
    MASK,
    MIN_REGION,
    VERSION,
    FullImageConfig,
    FullImageNet,
    RegionPrompt,
    annotation_maps,
    feature_inputs,
    paste,
    region_map,
    region_prior,
    roi_boxes,
)
from fewclick.simulate.allocation import ALLOCATIONS, allocate_scribbles
from fewclick.simulate.extreme import extreme_points
from fewclick.train.common import set_lr
from fewclick.types import ExtremePoints, Scribble


@dataclass(frozen=True)
class FullImageTrainConfig:
    steps: int = 1000
    lr: float = 1e-3
    warmup: int = 50
    canvas: int = 256  # the loss canvas's longest side, pixels
    max_rounds: int = 3  # scribble rounds simulated per training session
    max_jitter: int = 2  # extreme point ties within this many pixels
    seed: int = 0


@dataclass
class TrainImage:
    """One training image: the network's input, its scale, the ground-truth label map
    (``gt``, region ids with -1 void) and the same on the loss canvas."""

    inputs: object
    scale: float
    gt: np.ndarray
    canvas_gt: np.ndarray
    canvas_scale: float
    crops: list[tuple[np.ndarray, int, int]]  # per region: its mask's bounding crop, x0, y0
    priors: np.ndarray | None = None  # per region: SAM's low-res logits from its exact extreme points


def prepare_image(
    config: FullImageConfig,
    image: np.ndarray,
    gt: np.ndarray,
    canvas: int,
    encoder=None,
    key=None,
    sam=None,
) -> TrainImage:
    """What a training step needs of one image (see :class:`TrainImage`); ``sam`` (a
    :class:`fewclick.predict.sam.SamPredictor`) for a model with ``sam_prior``."""
    inputs, scale = feature_inputs(config, image, encoder, key)
    if isinstance(inputs, list):
        inputs = [m.half() for m in inputs]  # half the memory; steps compute in float32
    h, w = gt.shape
    c = canvas / max(h, w)
    size = (max(int(round(w * c)), 1), max(int(round(h * c)), 1))
    canvas_gt = cv2.resize(gt, size, interpolation=cv2.INTER_NEAREST).astype(np.int32)
    crops = _region_slices(gt)
    priors = None
    if config.sam_prior:
        if sam is None:
            raise ValueError("a model with sam_prior trains with the SAM predictor, got None")
        sam.set_image(image, key)
        priors = np.stack(
            [
                region_prior(sam, ExtremePoints(extreme_points(mask).points + np.array([x0, y0], np.float32)))
                for mask, x0, y0 in crops
            ]
        ).astype(np.float16)
    return TrainImage(inputs, scale, gt, canvas_gt, size[0] / w, crops, priors)


def prepare_records(
    records, config: FullImageConfig, canvas: int, encoder=None, sam=None, min_region: float | None = None
) -> list[TrainImage]:
    """:func:`prepare_image` of every record of a dataset with masks (its region map as
    the full-image protocol makes it: every object a region, the rest one more), with a
    progress bar. The encoder's cache is keyed by each image's resolved path."""
    out = []
    for r in tqdm(records, desc=f"full-image {config.backbone}: inputs"):
        gt, _ = region_map(r, MIN_REGION if min_region is None else min_region)
        out.append(prepare_image(config, r.load_image(), gt, canvas, encoder, image_key(r), sam))
    return out


def image_key(record) -> str:
    """A cache key of a dataset image: a digest of its resolved path (or its name)."""
    import hashlib

    where = str(Path(record.path).resolve()) if record.path else record.file_name
    return hashlib.blake2b(where.encode(), digest_size=12).hexdigest()


def _region_slices(gt: np.ndarray) -> list[tuple[np.ndarray, int, int]]:
    from scipy import ndimage

    out = []
    n = int(gt.max()) + 1
    for k, window in enumerate(ndimage.find_objects(gt + 1, max_label=n)):
        if window is None:
            raise ValueError(f"region {k} of a label map has no pixel: regions must be numbered 0..N-1")
        ys, xs = window
        out.append(((gt[window] == k), xs.start, ys.start))
    return out


def simulated_extremes(image: TrainImage, rng: np.random.Generator, max_jitter: int) -> list:
    prompts = []
    for mask, x0, y0 in image.crops:
        e = extreme_points(mask, rng, int(rng.integers(0, max_jitter + 1)))
        prompts.append(RegionPrompt(ExtremePoints(e.points + np.array([x0, y0], np.float32))))
    return prompts


def forward(net: FullImageNet, features, image: TrainImage, prompts) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits [N, 1, MASK, MASK], RoI boxes [N, 4])`` of ``prompts`` on ``image``."""
    boxes = roi_boxes(prompts, image.gt.shape)
    maps = annotation_maps(prompts, boxes, image.gt.shape, share=net.config.share)
    boxes_t = torch.from_numpy(boxes)
    prior = None if image.priors is None else torch.from_numpy(image.priors).float()
    return net.region_logits(features, boxes_t, image.scale, maps, prior), boxes_t


def canvas_prediction(logits: torch.Tensor, boxes: torch.Tensor, image: TrainImage) -> np.ndarray:
    """The argmax region of every pixel of the loss canvas."""
    return paste(logits, boxes, image.canvas_gt.shape, image.canvas_scale).argmax(0).numpy().astype(np.int32)


def add_scribbles(
    prompts, image: TrainImage, prediction: np.ndarray, rng: np.random.Generator, allocation: str
) -> int:
    """One round of scribbles against a canvas ``prediction``, added to ``prompts`` in
    image pixels; returns how many."""
    drawn = allocate_scribbles(image.canvas_gt, prediction, rng, allocation)
    for s in drawn:
        points = (s.points + 0.5) / image.canvas_scale - 0.5
        prompts[s.region].scribbles.append(Scribble(points, s.region))
    return len(drawn)


def pixelwise_loss(logits: torch.Tensor, boxes: torch.Tensor, image: TrainImage) -> torch.Tensor:
    canvas = paste(logits, boxes, image.canvas_gt.shape, image.canvas_scale)
    weights = torch.from_numpy(box_weights(boxes.numpy() * image.canvas_scale, image.canvas_gt.shape))
    target = torch.from_numpy(image.canvas_gt).long()
    weights = torch.where(target >= 0, weights, torch.zeros_like(weights))
    ce = F.cross_entropy(canvas[None], target.clamp(min=0)[None], reduction="none")[0]
    return (ce * weights).sum() / weights.sum().clamp(min=1e-12)


def box_weights(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``float32[H, W]``: 1 / area of the smallest box holding each pixel (0 in none),
    normalised to mean 1 over the pixels some box holds."""
    out = np.zeros(shape, np.float32)
    areas = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1.0)
    for i in np.argsort(-areas):  # smaller boxes paint last, on top
        x0, y0, x1, y1 = (int(round(v)) for v in boxes[i])
        out[max(y0, 0) : y1, max(x0, 0) : x1] = 1.0 / areas[i]
    held = out > 0
    if held.any():
        out[held] /= out[held].mean()
    return out


def mask_loss(logits: torch.Tensor, boxes: torch.Tensor, image: TrainImage) -> torch.Tensor:
    gt = torch.from_numpy(image.canvas_gt).long()
    n = len(logits)
    onehot = F.one_hot(gt.clamp(min=0), n).permute(2, 0, 1).float() * (gt >= 0).float()
    void = (gt < 0).float()[None]
    rois = torch.cat([torch.arange(n, dtype=torch.float32)[:, None] * 0, boxes * image.canvas_scale], 1)
    stacked = torch.cat([onehot, void])[None]
    crops = roi_align(stacked, rois, MASK, spatial_scale=1.0, sampling_ratio=2, aligned=True)
    target = crops[torch.arange(n), torch.arange(n)]  # region i's own mask in its own box
    weight = 1.0 - crops[:, n]
    bce = F.binary_cross_entropy_with_logits(
        logits[:, 0], (target > 0.5).float(), weight=weight, reduction="none"
    )
    return (bce.sum((1, 2)) / weight.sum((1, 2)).clamp(min=1.0)).mean()


def train_fullimage(
    images: list[TrainImage],
    config: FullImageConfig,
    train: FullImageTrainConfig,
    out: str | Path,
    progress: bool = True,
) -> Path:
    """Train on ``images`` and write the checkpoint to ``out``; returns its path."""
    if not images:
        raise ValueError("expected at least one training image, got none")
    torch.manual_seed(train.seed)
    rng = np.random.default_rng(train.seed)
    net = FullImageNet(config)
    optim = torch.optim.AdamW(net.parameters(), lr=train.lr, weight_decay=1e-4)
    allocations = ALLOCATIONS if config.loss == "pixelwise" else ("one_per_region",)
    losses, t0 = [], time.perf_counter()
    bar = tqdm(range(train.steps), desc=f"full-image {config.backbone}/{config.loss}", disable=not progress)
    for step in bar:
        set_lr(optim, train.lr, train.warmup, step, train.steps)
        image = images[int(rng.integers(len(images)))]
        inputs = [m.float() for m in image.inputs] if isinstance(image.inputs, list) else image.inputs
        net.train()
        features = net.features(inputs)
        prompts = simulated_extremes(image, rng, train.max_jitter)
        for _ in range(int(rng.integers(0, train.max_rounds + 1))):
            with torch.no_grad():
                logits, boxes = forward(net, features.detach(), image, prompts)
            allocation = allocations[int(rng.integers(len(allocations)))]
            if not add_scribbles(prompts, image, canvas_prediction(logits, boxes, image), rng, allocation):
                break
        logits, boxes = forward(net, features, image, prompts)
        if config.loss == "pixelwise":
            loss = pixelwise_loss(logits, boxes, image)
        else:
            loss = mask_loss(logits, boxes, image)
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(loss.item())
        if step % 20 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
    window = min(max(len(losses) // 5, 1), 50)  # the mean loss of the first and the last steps
    return save_module(
        out,
        KIND,
        VERSION,
        net,
        train=asdict(train),
        images=len(images),
        seconds=round(time.perf_counter() - t0, 1),
        first_loss=float(np.mean(losses[:window])),
        final_loss=float(np.mean(losses[-window:])),
    )
