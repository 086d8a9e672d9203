"""Training M_b and M_b+c on a CPU: ``train_segmenter(dataset, out_dir, ...)``.

As the paper does (section 3.1): the instances with a mask are split in two halves by
instance (a seeded permutation); M_b learns box -> mask on the first half; M_b+c then
learns box + clicks -> mask on the second half, with 1 to 9 (uniform) simulated corrective
clicks placed on M_b's own masks (centres of the error regions, N(0, 3 px) noise in image
pixels, :func:`fewclick.simulate.corrective.corrective_clicks`).

Boxes are loose (:func:`box_sigma`): corner noise N(0, sigma) kept at IoU >= 0.7 with the
tight box. Small objects stay in (the paper kept only > 80 x 80 px); only masks whose tight
box is under ``min_side`` (4) px on a side are skipped.

M_b+c starts from M_b's weights with its click channels at zero, so it begins as M_b and
only has to learn what the clicks add (a CPU budget is short; the paper trained both from
ImageNet weights). Deterministic for a seed and step counts; ``budget_minutes`` (both models together, half
each) becomes a step count from the speed of the first steps and is stored, so a resumed run
keeps its schedule. One checkpoint per model, ``m_b.pt`` and ``m_bc.pt``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from fewclick import crops as sc
from fewclick.io import rle
from fewclick.io.dataset import Dataset
from fewclick.io.images import load_image, to_rgb8
from fewclick.models.masknet import MaskNet, MaskNetConfig, normalise, save_masknet
from fewclick.simulate.corrective import corrective_clicks, noisy_box
from fewclick.train.common import StepClock, TrainSchedule, bf16_supported, copy_weights, set_lr

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentTrainConfig(TrainSchedule):
    """``steps`` is per model; ``budget_minutes`` for both models together, half each."""

    batch_size: int = 16
    warmup_steps: int = 30
    box_sigma: float = 60.0  # paper: 60 px, scaled down for small objects (box_sigma())
    box_sigma_fraction: float = 0.2
    box_min_iou: float = 0.7
    click_noise: float = 3.0  # image px
    max_clicks: int = 9
    min_side: float = 4.0  # skip masks whose tight box is smaller on a side
    dice_weight: float = 0.5
    val_every: int = 100
    val_instances: int = 64
    stop_after: int | None = None  # save and stop at this step of the running model (a pause)


@dataclass
class Instance:
    """One object: its image (index), tight box ``float32[4]`` (XYXY, continuous image
    coordinates) and mask ``bool[h, w]`` whose top-left pixel is ``origin`` (x, y)."""

    image: int
    box: np.ndarray
    mask: np.ndarray
    origin: tuple[int, int]


def box_sigma(box: np.ndarray, sigma: float = 60.0, fraction: float = 0.2) -> float:
    """Corner-noise sigma for a loose box: the paper's ``sigma`` (60 px, for objects of at
    least 80 px) but at most ``fraction`` of the geometric mean side of the tight XYXY
    ``box``, so a 10 px nucleus gets 2 px of noise instead of losing its box."""
    w, h = float(box[2] - box[0]), float(box[3] - box[1])
    return min(sigma, fraction * math.sqrt(max(w * h, 0.0)))


def collect_instances(dataset: Dataset, min_side: float = 4.0) -> tuple[list[np.ndarray], list[Instance]]:
    """Every image (``uint8[H, W, 3]``) and every non-ignored object with a mask whose tight
    box is at least ``min_side`` px on both sides."""
    images, instances = [], []
    for rec in tqdm(dataset.images, desc="loading instances", leave=False):
        objs = rec.objects
        if objs.segmentations is None or not len(objs):
            continue
        pixels = rec.extra.get("pixels")
        image = to_rgb8(pixels if pixels is not None else load_image(rec.path), name=str(rec.file_name))
        h, w = image.shape[:2]
        found = []
        for seg, ignore in zip(objs.segmentations, objs.ignore):
            if seg is None or ignore:
                continue
            full = rle.segmentation_to_mask(seg, h, w)
            ys, xs = np.nonzero(full)
            if len(xs) == 0 or xs.max() + 1 - xs.min() < min_side or ys.max() + 1 - ys.min() < min_side:
                continue
            x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
            box = np.array([x0, y0, x1, y1], np.float32)
            found.append(Instance(len(images), box, full[y0:y1, x0:x1].copy(), (int(x0), int(y0))))
        if found:
            images.append(image)
            instances += found
    return images, instances


def split_instances(instances: list[Instance], seed: int) -> tuple[list[Instance], list[Instance]]:
    """The two halves (M_b's, M_b+c's) of a seeded permutation of ``instances``."""
    order = np.random.default_rng(seed).permutation(len(instances))
    half = (len(order) + 1) // 2
    return [instances[i] for i in order[:half]], [instances[i] for i in order[half:]]


@dataclass
class Sample:
    """One training crop: ``input float32[4, S, S]`` (normalised RGB + box), ``target
    float32[S, S]`` (soft mask), the frame, the loose ``box float32[4]`` (XYXY image
    pixels), the instance and the image's (width, height)."""

    input: np.ndarray
    target: np.ndarray
    frame: sc.CropFrame
    box: np.ndarray
    instance: Instance
    image_size: tuple[int, int]


def make_sample(
    image: np.ndarray, inst: Instance, config: MaskNetConfig, train: SegmentTrainConfig, rng
) -> Sample:
    """A loose box around ``inst`` and the crop it frames."""
    h, w = image.shape[:2]
    sigma = box_sigma(inst.box, train.box_sigma, train.box_sigma_fraction)
    box = noisy_box(inst.box, rng, sigma=sigma, min_iou=train.box_min_iou, image_size=(w, h))
    frame = sc.crop_frame(box, config.inner, config.crop)
    pixels = normalise(sc.crop_image(image, frame))
    boxc = sc.box_channel(frame.box_to_crop(box), config.crop)
    target = sc.crop_mask(inst.mask, frame, inst.origin)
    return Sample(np.concatenate([pixels, boxc[None]]), target, frame, box, inst, (w, h))


def corrective_crop_clicks(
    sample: Sample, prob: np.ndarray, n: int, rng: np.random.Generator, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` corrective clicks on the errors of ``prob`` (``float[S, S]``, a model's output
    on ``sample``), simulated in image pixels over the crop's footprint (centre clicks,
    N(0, ``noise``) px). Returns crop pixel indices ``float32[K, 2]`` (x, y) and ``bool[K]``."""
    frame, inst = sample.frame, sample.instance
    ox, oy = inst.origin
    mh, mw = inst.mask.shape
    # the window: the crop's footprint joined with the object's own box, inside the image
    x0, y0, x1, y1 = frame.footprint(*sample.image_size)
    x0, y0, x1, y1 = min(x0, ox), min(y0, oy), max(x1, ox + mw), max(y1, oy + mh)
    local = replace(frame, cx=frame.cx - x0, cy=frame.cy - y0)
    pred = sc.paste_probability(prob, local, y1 - y0, x1 - x0)
    gt = np.zeros_like(pred)
    gt[oy - y0 : oy - y0 + mh, ox - x0 : ox - x0 + mw] = inst.mask
    clicks = corrective_clicks(gt, pred, n, rng, strategy="center", noise_sigma=noise)
    return local.to_crop(clicks.xy), clicks.positive


def train_segmenter(
    dataset: Dataset,
    out_dir: str | Path,
    config: MaskNetConfig | None = None,
    train: SegmentTrainConfig | None = None,
    clicks: str = "disks",
    log: Callable[[str], None] = logger.info,
) -> tuple[Path, Path]:
    """Train (or resume) M_b then M_b+c on the masks of ``dataset``; ``config`` is M_b's
    network (M_b+c: the same with ``clicks`` encoding). Returns the paths of ``m_b.pt`` and
    ``m_bc.pt``. With ``train.stop_after`` the run pauses there (M_b's steps count first)."""
    config, train = config or MaskNetConfig(), train or SegmentTrainConfig()
    if train.bf16 is None:
        train = replace(train, bf16=bf16_supported())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(train.threads)
    images, instances = collect_instances(dataset, train.min_side)
    if len(instances) < 2:
        raise ValueError(
            f"expected at least 2 objects with masks of >= {train.min_side} px, got {len(instances)}"
        )
    first, second = split_instances(instances, train.seed)
    log(f"{len(instances)} instances: {len(first)} for M_b, {len(second)} for M_b+c")
    m_b = _Run(out_dir / "m_b.pt", replace(config, clicks=None), train, images, first, second, log)
    if not m_b.fit():
        return m_b.path, out_dir / "m_bc.pt"
    stop = None if train.stop_after is None else train.stop_after - m_b.total
    train_bc = replace(train, seed=train.seed + 1, stop_after=stop if stop and stop > 0 else None)
    m_bc = _Run(out_dir / "m_bc.pt", replace(config, clicks=clicks), train_bc, images, second, first, log)
    m_bc.m_b = m_b.net.eval()
    if m_bc.step == 0:  # start from M_b, the click channels at zero: step 0 is M_b
        copy_weights(m_b.net, m_bc.net)
    m_bc.fit()
    return m_b.path, m_bc.path


class _Run:
    """The loop of one model: its net, optimizer, random state, schedule and checkpoint."""

    def __init__(self, path, config, train, images, instances, val_instances, log) -> None:
        torch.manual_seed(train.seed)
        self.path, self.config, self.train, self.log = path, config, train, log
        self.images, self.instances = images, instances
        self.val = val_instances[: train.val_instances]
        self.net = MaskNet(config).to(memory_format=torch.channels_last)
        self.optim = torch.optim.AdamW(self.net.parameters(), lr=train.lr, weight_decay=train.weight_decay)
        self.rng = np.random.default_rng(train.seed)
        self.m_b: MaskNet | None = None
        self.name = "M_b+c" if config.clicks else "M_b"
        start = self._resume() if path.is_file() else (0, train.steps, 0.0)
        budget = train.budget_minutes * 60 / 2  # half the budget per model
        self.clock = StepClock(f"train {self.name}", *start, budget)

    @property
    def step(self) -> int:
        return self.clock.step

    @property
    def total(self) -> int | None:
        return self.clock.total

    def fit(self) -> bool:
        """Train to the end (True) or to ``stop_after`` (False)."""
        clock = self.clock
        while clock.running:
            clock.start()
            loss = self._train_step()
            if clock.done({"loss": f"{loss:.3f}"}):
                self.log(
                    f"{clock.per_step:.2f} s/step: {self.total} steps fit in {clock.budget_s / 60:g} minutes"
                )
            pause = self.step == self.train.stop_after
            if self.total is not None and (
                self.step % self.train.val_every == 0 or self.step == self.total or pause
            ):
                self._save()
                if not pause and self.val:
                    self.log(f"{self.name} step {self.step}/{self.total}: {self.validate()}")
            if pause:
                clock.close()
                return False
        clock.close()
        return True

    def _batch(self, rng, instances: list[Instance]) -> tuple[torch.Tensor, torch.Tensor]:
        """Network inputs ``[B, C, S, S]`` and soft targets ``[B, 1, S, S]`` of ``instances``."""
        samples = [make_sample(self.images[i.image], i, self.config, self.train, rng) for i in instances]
        inputs = np.stack([s.input for s in samples])
        if self.config.clicks is not None:
            inputs = np.concatenate([inputs, self._click_channels(samples, inputs, rng)], axis=1)
        return torch.from_numpy(inputs), torch.from_numpy(np.stack([s.target for s in samples]))[:, None]

    def _click_channels(self, samples, inputs, rng) -> np.ndarray:
        prob = predict_prob(self.m_b, inputs, self.train.bf16)
        out = []
        for sample, p in zip(samples, prob):
            n = int(rng.integers(1, self.train.max_clicks + 1))
            xy, positive = corrective_crop_clicks(sample, p, n, rng, self.train.click_noise)
            out.append(
                sc.encode_clicks(xy, positive, self.config.crop, self.config.clicks, self.config.click_radius)
            )
        return np.stack(out)

    def _train_step(self) -> float:
        self.net.train()
        set_lr(self.optim, self.train.lr, self.train.warmup_steps, self.step, self.total)
        picks = self.rng.integers(0, len(self.instances), self.train.batch_size)
        inputs, target = self._batch(self.rng, [self.instances[i] for i in picks])
        flip = torch.from_numpy(self.rng.random(len(inputs)) < 0.5)
        inputs[flip], target[flip] = inputs[flip].flip(-1), target[flip].flip(-1)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(self.train.bf16)):
            logits = self.net(inputs.contiguous(memory_format=torch.channels_last))
        loss = mask_loss(logits.float(), target, self.train.dice_weight)
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 10.0)
        self.optim.step()
        return float(loss.detach())

    def validate(self) -> str:
        """mIoU in crop pixels on fixed loose boxes of the held-out instances (the other half),
        beside the box as mask (M_b) or M_b's mask (M_b+c, its clicks made on that mask)."""
        rng = np.random.default_rng(12345)
        inputs, target = self._batch(rng, self.val)
        gt = target[:, 0].numpy() > 0.5
        base = inputs[:, 3].numpy() > 0.5
        label = "box"
        if self.config.clicks is not None:
            base, label = predict_prob(self.m_b, inputs[:, :4].numpy(), self.train.bf16) > 0.5, "M_b"
        ours = predict_prob(self.net, inputs.numpy(), self.train.bf16) > 0.5
        return f"val mIoU {_miou(ours, gt):.3f} ({label} {_miou(base, gt):.3f}, {len(gt)} instances)"

    def _save(self) -> None:
        save_masknet(
            self.path,
            self.net,
            asdict(self.train),
            optimizer=self.optim.state_dict(),
            step=self.step,
            total_steps=self.total,
            elapsed_s=self.clock.elapsed(),
            rng=self.rng.bit_generator.state,
            torch_rng=torch.get_rng_state(),
        )

    def _resume(self) -> tuple[int, int | None, float]:
        """Load the checkpoint; ``(step, total steps, seconds so far)`` of its run."""
        ckpt = torch.load(self.path, map_location="cpu", weights_only=False)
        stored = MaskNetConfig.from_dict(ckpt["config"])
        if stored != self.config:
            raise ValueError(f"{self.path}: a checkpoint of another configuration ({stored}) is in the way")
        self.net.load_state_dict(ckpt["model"])
        self.optim.load_state_dict(ckpt["optimizer"])
        self.rng.bit_generator.state = ckpt["rng"]
        torch.set_rng_state(ckpt["torch_rng"])
        self.log(f"resuming {self.path} at step {ckpt['step']}/{ckpt['total_steps']}")
        return ckpt["step"], ckpt["total_steps"], ckpt["elapsed_s"]


def predict_prob(net: MaskNet, inputs: np.ndarray, bf16: bool = False) -> np.ndarray:
    """Foreground probabilities ``float32[B, S, S]`` of ``net`` (eval mode) for network
    inputs ``float32[B, C, S, S]``."""
    net.eval()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(bf16)):
        x = torch.as_tensor(inputs).contiguous(memory_format=torch.channels_last)
        return torch.sigmoid(net(x).float())[:, 0].numpy()


def mask_loss(logits: torch.Tensor, target: torch.Tensor, dice_weight: float = 0.5) -> torch.Tensor:
    """Binary cross-entropy plus ``dice_weight`` x soft Dice loss, both ``[B, 1, S, S]``."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    if dice_weight <= 0:
        return bce
    prob = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1)
    dice = 1 - (2 * (prob * t).sum(1) + 1) / (prob.sum(1) + t.sum(1) + 1)
    return bce + dice_weight * dice.mean()


def _miou(pred: np.ndarray, gt: np.ndarray) -> float:
    inter = (pred & gt).sum(axis=(1, 2))
    union = (pred | gt).sum(axis=(1, 2))
    return float(np.mean(np.where(union > 0, inter / np.maximum(union, 1), 1.0)))
