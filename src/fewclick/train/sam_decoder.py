"""Fine-tune SAM's mask decoder on a project's finished masks, on their cached embeddings.

Each step draws finished objects and plays the rounds protocol's session on them, as the
person in the app would: a noisy box (or, for one session in four, a first click at the
object's centre and no box), then up to ``max_clicks`` corrective clicks at the centre of
the largest error, each with the previous logits fed back. The session's last prediction
is the one trained on (the ones before it only make its prompt); the loss is SAM's:
sigmoid focal and dice loss on the mask SAM serves for that prompt (for an ambiguous prompt
the best of its three masks, as SAM trains), plus the squared error of every mask's
predicted IoU. Everything runs at SAM's 256 x 256 low resolution, where the targets are the
masks resized into SAM's padded 1024 px frame.

At the end (in the last :data:`FIT_SHARE` of the budget) the tuned decoder is shown a noisy
box alone and one centre click on up to :data:`FIT_EXAMPLES` of the objects, and the
project's offsets for which of the four masks serves such a prompt are fit on what it
predicted and how well each mask fit (:mod:`fewclick.models.sam_pick`); they move the
choice most where the gradient steps, few on a CPU, move it least.

:func:`score_decoder` measures a decoder on held-out objects (mIoU of the box alone, after
clicks, and of one click), which decides whether a tuned decoder serves.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from fewclick.metrics.segmentation import mask_iou
from fewclick.models.sam_decoder import IMAGE_SIZE, SamDecoder
from fewclick.models.sam_pick import AMBIGUOUS_POINTS, fit_offsets, prompt_kind, served_index
from fewclick.simulate.corrective import noisy_box
from fewclick.train.common import working_clock

LOW_RES = 256
BOX_MIN_IOU = 0.7  # the rounds protocol's loose box (protocols.segment.RoundsConfig)
FIT_SHARE = 0.15  # of a budget in minutes, kept for fitting the offsets
FIT_EXAMPLES = 200  # objects (a box and a click each) the offsets are fit on at most


@dataclass(frozen=True)
class MaskExample:
    """One finished object: its image's ``embedding float32[1, 256, 64, 64]``, the image's
    ``input_size`` (H', W') in SAM's 1024 px frame and the object's ``target float32[256,
    256]`` (:func:`low_res_target`)."""

    embedding: np.ndarray
    input_size: tuple[int, int]
    target: np.ndarray


def examples_from(
    items, encode: Callable[[np.ndarray], tuple[np.ndarray, tuple[int, int]]], limit: int | None = None
) -> list[MaskExample]:
    """:class:`MaskExample` per non-empty object of ``items`` (``(image, masks bool[N, H, W],
    ...)`` as :class:`~fewclick.protocols.segment_run.InstanceItems` yields them), each
    image encoded once by ``encode(image) -> (embedding, input_size)``; at most ``limit``."""
    out: list[MaskExample] = []
    last, encoded = None, None
    for image, masks, *_ in items:
        if image is not last:
            last, encoded = image, encode(image)
        for mask in np.asarray(masks, bool).reshape(-1, *np.shape(image)[:2]):
            if mask.any():
                out.append(MaskExample(encoded[0], encoded[1], low_res_target(mask, encoded[1])))
            if limit is not None and len(out) >= limit:
                return out
    return out


def low_res_target(mask: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """``mask bool[H, W]`` -> ``float32[256, 256]`` in SAM's padded low-resolution frame:
    resized to ``input_size``, padded to 1024, then averaged down 4x (a soft edge)."""
    h, w = input_size
    resized = cv2.resize(np.asarray(mask, np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    full = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    full[:h, :w] = resized
    return cv2.resize(full, (LOW_RES, LOW_RES), interpolation=cv2.INTER_AREA)


@dataclass
class TuneConfig:
    """``steps`` (None: until ``budget_minutes``), ``batch`` sessions per step, Adam at
    ``lr``, ``max_clicks`` corrective clicks per session (0..max drawn uniformly),
    ``box_noise`` as the rounds protocol's (a fraction of the box's geometric-mean side);
    ``offsets``: fit the choice of the mask served at the end (module docstring)."""

    steps: int | None = None
    budget_minutes: float | None = 3.0
    batch: int = 4
    lr: float = 1e-5  # chosen on our training parts: 1e-4 lost 0.03 on dsb2018, 1e-5 gained 0.01-0.03
    max_clicks: int = 3
    box_noise: float = 0.2
    click_only: float = 0.25
    seed: int = 0
    threads: int = 1
    parts: str = "all"  # "all", or "head": the upscaling, the hypernetworks and the IoU head only
    offsets: bool = True

    def __post_init__(self) -> None:
        if self.steps is None and self.budget_minutes is None:
            raise ValueError("expected steps or budget_minutes, got neither")
        if self.batch < 1 or self.lr <= 0 or self.max_clicks < 0:
            raise ValueError(
                f"expected batch >= 1, lr > 0 and max_clicks >= 0, got {self.batch}, {self.lr}, "
                f"{self.max_clicks}"
            )


@dataclass
class TuneResult:
    decoder: SamDecoder
    steps: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    fit_prompts: int = 0  # the prompts the offsets were fit on


def tune_decoder(
    decoder: SamDecoder,
    examples: list[MaskExample],
    config: TuneConfig | None = None,
    progress: Callable[[int, float], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> TuneResult:
    """Fine-tune ``decoder`` (in place) on ``examples`` (module docstring). ``progress(step,
    loss)`` is called after each step; ``stop()`` ends training early when it says so."""
    cfg = TuneConfig() if config is None else config
    usable = [e for e in examples if (e.target > 0.5).any() and (e.target <= 0.5).any()]
    if not usable:
        raise ValueError("no example with an object and background to tune on (all masks empty or full)")
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    head = ("output_upscaling.", "output_hypernetworks_mlps.", "iou_prediction_head.")
    for name, p in decoder.named_parameters():
        p.requires_grad_(cfg.parts == "all" or name.startswith(head))
    params = [p for p in decoder.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr)
    started, losses, step = working_clock(), [], 0
    end = None if cfg.budget_minutes is None else started + 60 * cfg.budget_minutes
    deadline = None if end is None else end - (60 * cfg.budget_minutes * FIT_SHARE if cfg.offsets else 0)
    while (cfg.steps is None or step < cfg.steps) and (deadline is None or working_clock() < deadline):
        if stop is not None and stop():
            break
        decoder.train()
        optimizer.zero_grad()
        total = 0.0
        for _ in range(cfg.batch):
            example = usable[int(rng.integers(len(usable)))]
            loss = _session_loss(decoder, example, rng, cfg) / cfg.batch
            loss.backward()
            total += float(loss.detach())
        optimizer.step()
        step += 1
        losses.append(total)
        if progress is not None:
            progress(step, total)
    decoder.eval()
    records = []
    if cfg.offsets:
        order = rng.permutation(len(usable))[:FIT_EXAMPLES]
        records = first_prompts(decoder, [usable[i] for i in order], rng, cfg.box_noise, end)
    decoder.iou_offsets = fit_offsets(records) or None
    return TuneResult(decoder, step, working_clock() - started, losses, len(records))


def first_prompts(
    decoder: SamDecoder,
    examples: list[MaskExample],
    rng: np.random.Generator,
    box_noise: float,
    deadline: float | None = None,
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """For each example (until ``deadline``, a :func:`~fewclick.train.common.working_clock`
    time) the records
    :func:`~fewclick.models.sam_pick.fit_offsets` takes: a noisy box alone and one click at
    the object's centre, each ``(kind, predicted IoUs [4], actual IoUs [4])``."""
    records = []
    decoder.eval()
    with torch.no_grad():
        for e in examples:
            if deadline is not None and working_clock() > deadline:
                break
            target = e.target > 0.5
            corners, _ = _noisy_corners(target, rng, box_noise)
            coords = torch.tensor([corners, [_centre(target), (0.0, 0.0)]], dtype=torch.float32)
            labels = torch.tensor([[2.0, 3.0], [1.0, -1.0]])
            low, iou = decoder(
                torch.from_numpy(e.embedding),
                coords,
                labels,
                torch.zeros(2, 1, LOW_RES, LOW_RES),
                torch.zeros(2),
            )
            for k, kind in enumerate(("box", "click")):
                records.append((kind, iou[k].numpy().copy(), _ious(low[k], target)))
    return records


def _session_loss(decoder: SamDecoder, example: MaskExample, rng: np.random.Generator, cfg: TuneConfig):
    """The loss of one simulated session's last prediction."""
    embedding = torch.from_numpy(example.embedding)
    target = example.target > 0.5
    box = ([], []) if rng.random() < cfg.click_only else _noisy_corners(target, rng, cfg.box_noise)
    clicks = ([], []) if box[0] else ([_centre(target)], [1.0])
    previous = None
    for _ in range(int(rng.integers(0, cfg.max_clicks + 1))):
        with torch.no_grad():
            low, iou = _run(decoder, embedding, clicks, box, previous)
        chosen = _served(low, iou, _points(clicks, box))
        click = _error_centre(target, (chosen > 0).numpy())
        if click is None:
            break
        clicks = ([*clicks[0], click[0]], [*clicks[1], click[1]])
        previous = chosen[None, None]
    low, iou = _run(decoder, embedding, clicks, box, previous)
    n = _points(clicks, box)
    truth = torch.from_numpy(example.target)
    per_mask = torch.stack([_mask_loss(low[i], truth) for i in range(low.shape[0])])
    mask_loss = per_mask[1:].min() if n <= AMBIGUOUS_POINTS else per_mask[0]
    with torch.no_grad():
        actual = torch.stack([_iou(low[i] > 0, truth > 0.5) for i in range(low.shape[0])])
    return mask_loss + F.mse_loss(iou, actual)


def _ious(low: torch.Tensor, target: np.ndarray) -> np.ndarray:
    """The actual IoU of each of the four masks with ``target``."""
    return np.array([mask_iou((m > 0).numpy(), target) for m in low])


def _points(clicks: tuple, box: tuple) -> int:
    """How many points the prompt of ``clicks`` and ``box`` holds (a padding point without a box)."""
    return len(clicks[0]) + (len(box[0]) or 1)


def _run(decoder, embedding, clicks: tuple, box: tuple, previous):
    """The decoder on one prompt laid out as SamPredictor's: ``clicks`` (points, labels),
    then the ``box``'s corners or a padding point: ``low [4, 256, 256]``, ``iou [4]``."""
    pts, lab = [*clicks[0], *box[0]], [*clicks[1], *box[1]]
    if not box[0]:
        pts, lab = [*pts, (0.0, 0.0)], [*lab, -1.0]
    coords = torch.tensor([pts], dtype=torch.float32)
    lab_t = torch.tensor([lab], dtype=torch.float32)
    mask_input = torch.zeros(1, 1, LOW_RES, LOW_RES) if previous is None else previous
    has = torch.tensor([0.0 if previous is None else 1.0])
    low, iou = decoder(embedding, coords, lab_t, mask_input, has)
    return low[0], iou[0]


def _served(low: torch.Tensor, iou: torch.Tensor, points: int, kind: str | None = None, offsets=None):
    """The mask SAM serves for a prompt of ``points`` points (of ``kind``, with the tuned
    decoder's ``offsets``; :func:`fewclick.models.sam_pick.served_index`)."""
    return low[served_index(iou.detach().numpy(), points, kind, offsets)]


def _mask_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SAM's loss: 20 x sigmoid focal + dice (Kirillov et al., 2023, appendix A)."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    pt = p * target + (1 - p) * (1 - target)
    alpha = 0.25 * target + 0.75 * (1 - target)
    focal = (alpha * ce * (1 - pt) ** 2).mean()
    dice = 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
    return 20 * focal + dice


def _iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    union = (a | b).sum()
    return (a & b).sum() / union if union else torch.tensor(1.0)


def _noisy_corners(target: np.ndarray, rng: np.random.Generator, noise: float) -> tuple[list, list]:
    """The object's box loosened as the rounds protocol loosens it (each side moved by N(0,
    noise x its geometric-mean side), redrawn until IoU >= :data:`BOX_MIN_IOU` with the
    tight box), as the two corner points (labels 2, 3) in the 1024 px frame."""
    ys, xs = np.nonzero(target)
    box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)
    side = math.sqrt((box[2] - box[0]) * (box[3] - box[1]))
    if noise > 0:
        box = noisy_box(box, rng, sigma=noise * side, min_iou=BOX_MIN_IOU, image_size=(LOW_RES, LOW_RES))
    scale = IMAGE_SIZE / LOW_RES
    return [(box[0] * scale, box[1] * scale), (box[2] * scale, box[3] * scale)], [2.0, 3.0]


def _centre(target: np.ndarray) -> tuple[float, float]:
    """The object's interior point farthest from its edge, in the 1024 px frame."""
    dist = cv2.distanceTransform(np.pad(target, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    scale = IMAGE_SIZE / LOW_RES
    return ((x + 0.5) * scale, (y + 0.5) * scale)


def _error_centre(target: np.ndarray, mask: np.ndarray) -> tuple[tuple[float, float], float] | None:
    """A click at the centre of the largest error (positive where the mask misses the
    object), in the 1024 px frame, and its label; None when there is no error."""
    best = None
    for positive, error in ((1.0, target & ~mask), (0.0, mask & ~target)):
        count, labels, stats, _ = cv2.connectedComponentsWithStats(error.astype(np.uint8), connectivity=8)
        for k in range(1, count):
            area = stats[k, cv2.CC_STAT_AREA]
            if best is None or area > best[0]:
                best = (area, labels == k, positive)
    if best is None:
        return None
    point = _centre(best[1])
    return point, best[2]


def score_decoder(decoder: SamDecoder, examples: list[MaskExample], seed: int = 0, clicks: int = 2) -> dict:
    """A decoder on held-out ``examples``: mIoU (at 256 x 256) of the noisy box alone, after
    ``clicks`` corrective clicks, and of one click at the object's centre alone, the same
    boxes and clicks for every decoder (the mask served as the decoder's offsets choose)."""
    rng = np.random.default_rng(seed)
    cfg = TuneConfig(steps=1, box_noise=0.2)
    offsets = getattr(decoder, "iou_offsets", None)
    box_only, after, one_click = [], [], []
    decoder.eval()
    with torch.no_grad():
        for e in examples:
            target = e.target > 0.5
            if not target.any():
                continue
            embedding = torch.from_numpy(e.embedding)
            box, made, previous = _noisy_corners(target, rng, cfg.box_noise), ([], []), None
            for k in range(clicks + 1):
                low, iou = _run(decoder, embedding, made, box, previous)
                points = _points(made, box)
                chosen = _served(low, iou, points, prompt_kind(points, True), offsets)
                mask = (chosen > 0).numpy()
                score = mask_iou(mask, target)
                if k == 0:
                    box_only.append(score)
                click = _error_centre(target, mask)
                if click is None or k == clicks:
                    break
                made = ([*made[0], click[0]], [*made[1], click[1]])
                previous = chosen[None, None]
            after.append(score)
            one, no_box = ([_centre(target)], [1.0]), ([], [])
            low, iou = _run(decoder, embedding, one, no_box, None)
            chosen = _served(low, iou, _points(one, no_box), "click", offsets)
            one_click.append(mask_iou((chosen > 0).numpy(), target))
    return {
        "box_mIoU": _mean(box_only),
        "clicks_mIoU": _mean(after),
        "click_mIoU": _mean(one_click),
        "count": len(box_only),
    }


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def save_tuned(decoder: SamDecoder, template: str | Path, out: str | Path) -> Path:
    """The tuned decoder as an ONNX file like ``template`` (what SamPredictor runs)."""
    return decoder.write_onnx(template, out)


__all__ = [
    "examples_from",
    "MaskExample",
    "TuneConfig",
    "TuneResult",
    "low_res_target",
    "save_tuned",
    "score_decoder",
    "tune_decoder",
]
