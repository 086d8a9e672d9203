"""Training the click detector on a CPU: ``train_detector(dataset, out_dir, ...)``.

Deterministic for a seed and a step count. ``budget_minutes`` turns into a step count
once, from the speed of the first steps (printed), so a resumed run keeps its schedule.
Checkpoints (``last.pt``) carry the network config, the class names, the optimizer and
the random state, and a run resumes from them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from fewclick.io.dataset import Dataset
from fewclick.io.images import load_image
from fewclick.models.clicks import ClickTensors
from fewclick.models.detector import ClickDetectorNet, DetectorConfig, load_detector, normalise, save_detector
from fewclick.models.pixels import resized
from fewclick.train.common import StepClock, TrainSchedule, bf16_supported, copy_weights, set_lr
from fewclick.train.detect_data import build_targets, make_sample, side_range
from fewclick.train.detect_loss import DetectionCriterion
from fewclick.types import Objects, geometry_only, scaled_geometry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig(TrainSchedule):
    crop: int = 256
    # A minute budget never becomes fewer steps than this: on a busy machine 1.5 minutes gave
    # 24 steps, all of them warm-up, and a localizer without a single peak.
    min_steps: int = 100
    max_clicks: int = 20
    click_rule: str = "code"
    uel_weight: float = 1.0
    val_every: int = 250
    init: str | None = None  # a checkpoint (e.g. the plain detector) whose weights start the run
    stop_after: int | None = None  # save and stop at this step (a pause; a later call resumes)
    # the ImageNet backbone: its pretrained part's learning rate as a share of ``lr``, and
    # whether its batch norms keep their ImageNet statistics ("frozen") or learn them ("train")
    imagenet_lr_scale: float = 0.1
    imagenet_bn: str = "frozen"
    # the factor images are resized by before the network sees them (in training and, kept
    # in the checkpoint, in prediction): a number, or "auto": the model's it warm-starts
    # from, else :func:`auto_input_scale` of the training objects (small objects enlarged)
    input_scale: float | str = 1.0


@dataclass
class TrainImage:
    image: np.ndarray
    objects: Objects


def load_images(dataset: Dataset) -> list[TrainImage]:
    """Every image of ``dataset`` in memory with its objects (segmentations dropped)."""
    out = []
    for rec in tqdm(dataset.images, desc="loading images", leave=False):
        pixels = rec.extra.get("pixels")
        image = pixels if pixels is not None else load_image(rec.path)
        out.append(TrainImage(image, geometry_only(rec.objects)))
    return out


#: :func:`auto_input_scale` enlarges images until their median object's longer side
#: reaches this many pixels, by at most :data:`MAX_INPUT_SCALE` (4 times the pixels)
TARGET_SIDE = 48.0
MAX_INPUT_SCALE = 2.0


def auto_input_scale(objects: list[Objects]) -> float:
    """The input scale for these (training) objects: :data:`TARGET_SIDE` over the median
    longer box side of the required ones, in steps of 0.5 from 1 (objects that large or
    larger, or none with a box) to :data:`MAX_INPUT_SCALE`. At stride 4 an object 25 px
    long is 6 cells; the ImageNet backbone's stride-16 features see it as under 2."""
    sides = []
    for o in objects:
        keep = ~np.asarray(o.ignore, bool) & np.isfinite(o.boxes).all(1)
        b = o.boxes[keep]
        sides.append(np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]))
    sides = np.concatenate(sides) if sides else np.zeros(0)
    sides = sides[sides > 0]
    if not len(sides):
        return 1.0
    return float(np.clip(np.round(2 * TARGET_SIDE / np.median(sides)) / 2, 1.0, MAX_INPUT_SCALE))


def scaled_images(images: list[TrainImage], scale: float) -> list[TrainImage]:
    """``images`` resized by ``scale`` (:func:`fewclick.models.pixels.resized`, as the
    predictor resizes), their objects with them."""
    if scale == 1:
        return images
    return [TrainImage(resized(im.image, scale), scaled_geometry(im.objects, scale)) for im in images]


def detector_config_for(dataset: Dataset, method: str, **overrides) -> DetectorConfig:
    """The network config a dataset calls for: oriented when its objects have rboxes,
    points-only when they have no boxes."""
    objs = [r.objects for r in dataset.images if len(r.objects)]
    oriented = bool(objs) and all(o.rboxes is not None for o in objs)
    points_only = bool(objs) and all(np.isnan(o.boxes).all() for o in objs)
    return DetectorConfig(
        num_classes=len(dataset.classes),
        method=method,
        oriented=oriented and not points_only,
        points_only=points_only,
        **overrides,
    )


def train_detector(
    dataset: Dataset,
    out_dir: str | Path,
    config: DetectorConfig,
    train: TrainConfig | None = None,
    validate: Callable[[ClickDetectorNet, float], str] | None = None,
    log: Callable[[str], None] = logger.info,
    progress: Callable[[int, int | None], None] | None = None,
) -> Path:
    """Train (or resume) a click detector on ``dataset``; returns the path of ``last.pt``.
    ``progress(step, total)`` is called after every step (total None until it is known);
    ``validate(net, input_scale)`` at every checkpoint, its line logged (e.g.
    :func:`fewclick.protocols.detect.validation`)."""
    train = train or TrainConfig()
    if train.imagenet_bn not in ("frozen", "train"):
        raise ValueError(f"imagenet_bn must be 'frozen' or 'train', got {train.imagenet_bn!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(train.threads)
    torch.manual_seed(train.seed)
    images = [im for im in load_images(dataset) if im.image.shape[0] >= 8 and im.image.shape[1] >= 8]
    if not images:
        raise ValueError("the training dataset has no usable images")
    ckpt_path = out_dir / "last.pt"
    scale = _input_scale(train, ckpt_path, images, config)
    images = scaled_images(images, scale)
    if scale != 1:
        log(f"images resized by {scale:g}: their objects' median side was small")
    net = ClickDetectorNet(config).to(memory_format=torch.channels_last)
    if train.bf16 is None:
        train = replace(train, bf16=bf16_supported())
    optim = torch.optim.AdamW(parameter_groups(net, train), lr=train.lr, weight_decay=train.weight_decay)
    criterion = DetectionCriterion(
        config.points_only, config.oriented, train.uel_weight if config.uses_clicks and config.uel else 0.0
    )
    rng = np.random.default_rng(train.seed)
    step, total, elapsed = _start(ckpt_path, net, optim, rng, config, train, log)
    # per class [smallest, largest] side in network pixels (the predictor's size check), and
    # the predictor's input scale
    serving = {"sizes": side_range([im.objects for im in images], config.num_classes)}
    serving["predictor"] = {"input_scale": scale}
    clock = StepClock(
        f"train {config.method}", step, total, train.budget_minutes * 60, elapsed, train.min_steps
    )
    clock.per_step = _stored_speed(ckpt_path)
    while clock.running:
        set_lr(optim, train.lr, train.warmup_steps, clock.step, clock.total)
        clock.start()
        losses = _train_step(net, optim, criterion, images, rng, train, config)
        if clock.done({k: f"{v:.3f}" for k, v in losses.items()}):
            _log_budget(clock, train, log)
        step, total = clock.step, clock.total
        if progress is not None:
            progress(step, total)
        pause = step == train.stop_after
        if total is not None and (step % train.val_every == 0 or step == total or pause):
            at = (step, total, clock.elapsed(), clock.per_step)
            _save(ckpt_path, net, optim, rng, train, dataset.classes, at, serving)
            if validate is not None and not pause:
                log(f"step {step}/{total}: " + validate(net, scale))
        if pause:
            break
    clock.close()
    return ckpt_path


def _start(ckpt_path: Path, net, optim, rng, config: DetectorConfig, train: TrainConfig, log):
    """``(step, total steps, seconds so far)``: resumed from ``ckpt_path`` when it exists,
    else from the start, warm-started from ``train.init`` or on ImageNet's weights."""
    if ckpt_path.is_file():
        return _resume(ckpt_path, net, optim, rng, config, log)
    if train.init is not None:
        warm_start(net, train.init, log)
    elif config.backbone == "imagenet":
        net.backbone.load_imagenet()
        log(f"started from the ImageNet weights of EfficientNet-{config.imagenet.capitalize()}")
    return 0, train.steps, 0.0


def _log_budget(clock: StepClock, train: TrainConfig, log) -> None:
    """Say how many steps ``train.budget_minutes`` became (at least ``train.min_steps``)."""
    per_step, total = clock.per_step, clock.total
    if total == train.min_steps:
        log(
            f"{per_step:.2f} s/step: fewer than {total} steps fit in {train.budget_minutes:g} "
            f"minutes; training {total} steps, longer than the budget"
        )
    else:
        log(f"{per_step:.2f} s/step: {total} steps fit in {train.budget_minutes:g} minutes")


def parameter_groups(net: ClickDetectorNet, train: TrainConfig) -> list[dict]:
    """The optimizer's groups: on the ImageNet backbone, its pretrained part at
    ``imagenet_lr_scale`` times the rate (in issue 32's calibration a full rate undid
    ImageNet: 0.42 mAP against 0.68 on bccd, 5 images); everything else at the rate."""
    if net.config.backbone != "imagenet":
        return [{"params": list(net.parameters()), "lr_scale": 1.0}]
    pretrained = {id(p) for p in net.backbone.pretrained_parameters()}
    rest = [p for p in net.parameters() if id(p) not in pretrained]
    return [
        {"params": net.backbone.pretrained_parameters(), "lr_scale": train.imagenet_lr_scale},
        {"params": rest, "lr_scale": 1.0},
    ]


def train_mode(net: ClickDetectorNet, train: TrainConfig) -> None:
    """``net.train()``, but for the ImageNet part's batch norms under ``imagenet_bn="frozen"``:
    a batch of 8 crops would pull their ImageNet statistics towards a few images."""
    net.train()
    if net.config.backbone == "imagenet" and train.imagenet_bn == "frozen":
        for norm in net.backbone.pretrained_norms():
            norm.eval()


def _train_step(net, optim, criterion, images, rng, train: TrainConfig, config: DetectorConfig) -> dict:
    train_mode(net, train)
    samples = [
        make_sample(images[i].image, images[i].objects, train.crop, rng, train.max_clicks, train.click_rule)
        for i in rng.integers(0, len(images), train.batch_size)
    ]
    if not config.uses_clicks:
        for s in samples:
            s.clicked = s.clicked[:0]
    targets = [
        build_targets(s.objects, (train.crop, train.crop), config.num_classes, net.stride) for s in samples
    ]
    batch = torch.from_numpy(np.stack([normalise(s.image) for s in samples]))
    batch = batch.contiguous(memory_format=torch.channels_last)
    clicks = _sample_clicks(samples)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(train.bf16)):
        outputs = net(batch, clicks)
    outputs = {k: v.float() for k, v in outputs.items()}
    losses = criterion(outputs, targets, [s.clicked for s in samples])
    optim.zero_grad(set_to_none=True)
    losses["total"].backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
    optim.step()
    return {k: float(v.detach()) for k, v in losses.items()}


def warm_start(net: ClickDetectorNet, path: str | Path, log: Callable[[str], None] = logger.info) -> None:
    """Start ``net`` from the weights of another click-detector checkpoint (typically the
    plain detector of the same data): every tensor whose name and shape match is copied;
    Early Fusion's first convolution takes the image channels and starts its click channels
    at zero, so at the first step it is the plain detector. Fails on other classes."""
    source, ckpt = load_detector(path)
    if source.config.num_classes != net.config.num_classes:
        raise ValueError(
            f"{path}: a model of {source.config.num_classes} classes cannot start one of "
            f"{net.config.num_classes}"
        )
    own = net.state_dict()
    copied = copy_weights(source, net)
    with torch.no_grad():
        if net.head.click_part is not None and "head.click_part.weight" not in source.state_dict():
            net.head.click_part.weight.zero_()  # clicks start with no say: step 0 is the source model
    log(f"started from {path}: {copied} of {len(own)} tensors copied")


def _sample_clicks(samples) -> ClickTensors:
    from fewclick.simulate.clicks import object_centres

    xy, labels, batch = [], [], []
    for b, s in enumerate(samples):
        if len(s.clicked):
            xy.append(object_centres(s.objects)[s.clicked])
            labels.append(s.objects.labels[s.clicked])
            batch.append(np.full(len(s.clicked), b))
    if not xy:
        return ClickTensors.empty()
    return ClickTensors(
        torch.from_numpy(np.concatenate(xy).astype(np.float32)),
        torch.from_numpy(np.concatenate(labels)),
        torch.from_numpy(np.concatenate(batch)),
    )


def _save(path: Path, net, optim, rng, train, classes, progress: tuple, serving: dict) -> None:
    """``progress``: step, total steps, seconds so far, seconds per step; ``serving``: what
    the predictor reads (``sizes``, ``predictor``)."""
    step, total, elapsed, per_step = progress
    save_detector(
        path,
        net,
        train=asdict(train),
        classes=list(classes),
        optimizer=optim.state_dict(),
        step=step,
        total_steps=total,
        elapsed_s=elapsed,
        seconds_per_step=per_step,  # the calibrated speed (None for a fixed step count)
        rng=rng.bit_generator.state,
        torch_rng=torch.get_rng_state(),
        **serving,
    )


def _input_scale(
    train: TrainConfig, ckpt_path: Path, images: list[TrainImage], config: DetectorConfig
) -> float:
    """The factor the images are resized by: a resumed run's own, else the number given,
    else ("auto") the warm start's, else :func:`auto_input_scale`; 1 on SAM's features."""
    if ckpt_path.is_file():
        return _stored_scale(ckpt_path)
    if config.backbone == "pretrained":
        return 1.0
    if train.input_scale != "auto":
        scale = float(train.input_scale)
        if not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"expected a positive input scale or 'auto', got {train.input_scale!r}")
        return scale
    if train.init is not None:
        return _stored_scale(Path(train.init))
    return auto_input_scale([im.objects for im in images])


def _stored_scale(path: Path) -> float:
    from fewclick.models.checkpoint import read_checkpoint
    from fewclick.models.detector import CHECKPOINT_KIND, CHECKPOINT_VERSION

    ckpt = read_checkpoint(path, CHECKPOINT_KIND, CHECKPOINT_VERSION)  # a torn file: ValueError naming it
    return float(ckpt.get("predictor", {}).get("input_scale", 1.0))


def _stored_speed(path: Path) -> float | None:
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=False).get("seconds_per_step")


def _resume(path: Path, net, optim, rng, config: DetectorConfig, log) -> tuple[int, int, float]:
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    stored = DetectorConfig.from_dict(ckpt["config"])
    if replace(stored) != config:
        raise ValueError(
            f"{path}: a checkpoint of another configuration ({stored.method}, "
            f"{stored.num_classes} classes) is in the way; choose another --out"
        )
    net.load_state_dict(ckpt["model"])
    optim.load_state_dict(ckpt["optimizer"])
    rng.bit_generator.state = ckpt["rng"]
    torch.set_rng_state(ckpt["torch_rng"])
    log(f"resuming {path} at step {ckpt['step']}/{ckpt['total_steps']}")
    return ckpt["step"], ckpt["total_steps"], ckpt["elapsed_s"]
