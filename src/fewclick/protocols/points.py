"""The points protocol (CPR, section 4): localizers trained on coarse, refined and exact points.

On the training part, every object gets one coarse point (a rectified Gaussian around the
box centre, sigma 0.25 of width and height, inside the mask when the dataset has masks).
Four point sets then train the same localizer (the click-to-detect network without clicks,
in its points mode: a class heatmap whose peaks are the predicted points):

- ``coarse``: the coarse points as annotated;
- ``self_refined``: each coarse point moved to the score-weighted mean of the predictions
  of a **pseudo-box** detector (fixed-size boxes around the coarse points) near it;
- ``cpr``: the coarse points refined by CPR (a CPRNet trained on them, then Algorithm 2);
- ``center``: the box centres (the upper bound).

The pseudo-box detector is scored too (its box centres as points). Everything is scored on
the test part with point mAP at tau 0.5 / 1 / 2 against the ground-truth boxes, and the
refinements by RSV (Eq. 13) against the training boxes, with the relative-position
histograms of the paper's Figure 6.

Scale: CPR's bag radius R (feature cells) and the pseudo box's side have to suit the
objects; unless given, both come from the median object size of the *training* part
(R = 0.6 x median side / stride, clipped to 2..16; pseudo box = median side), the one
use of box sizes outside the point annotation, stated in every result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.images import load_image
from fewclick.metrics.points import evaluate_points, rsv
from fewclick.models.cpr import CPRNetConfig
from fewclick.models.detector import DetectorConfig
from fewclick.predict.detect import ClickDetector
from fewclick.predict.points import PointRefiner, refine_points, self_refine
from fewclick.simulate.coarse import coarse_points
from fewclick.train.cpr import CPRConfig, PointImage, train_cpr
from fewclick.train.detect import TrainConfig, train_detector
from fewclick.types import Detections, Objects

VARIANTS = ("coarse", "self_refined", "cpr", "center")
MAX_MASK_PIXELS = 400_000_000  # objects x height x width above this: coarse points use boxes


@dataclass(frozen=True)
class PointsConfig:
    sigma_frac: float = 0.25
    use_masks: bool = True
    radius: int | None = None  # CPR's R in feature cells; None: from the training boxes
    level: int = 4  # CPRNet's feature stride
    pseudo_box: float | None = None  # side of the pseudo boxes in pixels; None: median side
    cpr_minutes: float = 3.0
    localizer_minutes: float = 3.0
    taus: tuple[float, ...] = (0.5, 1.0, 2.0)
    seed: int = 0
    steps: int | None = None  # fixed steps for every training instead of the minutes (tests)
    batch_size: int = 8


@dataclass
class PartImage:
    """One image of a part: its pixels, its boxed objects and its ignored ones."""

    image: np.ndarray
    objects: Objects  # non-ignored objects with boxes (XYXY; oriented ones enclosed)
    ignored: Objects


def load_part(dataset: Dataset, desc: str) -> list[PartImage]:
    """Images of a part with their boxed objects split into kept and ignored; objects without
    a box of positive width and height (points, degenerate boxes) are left out."""
    out = []
    for rec in tqdm(dataset.images, desc=f"loading {desc}", leave=False):
        pixels = rec.extra.get("pixels")
        image = pixels if pixels is not None else load_image(rec.path)
        objs = rec.objects
        sides = objs.boxes[:, 2:] - objs.boxes[:, :2]
        boxed = (np.isfinite(objs.boxes).all(1) & (sides > 0).all(1)) if len(objs) else np.zeros(0, bool)
        out.append(PartImage(image, objs[boxed & ~objs.ignore], objs[boxed & objs.ignore]))
    return out


def median_side(images: list[PartImage]) -> float:
    """Median sqrt(w h) of the objects' boxes."""
    sides = [np.sqrt(np.prod(im.objects.boxes[:, 2:] - im.objects.boxes[:, :2], axis=1)) for im in images]
    sides = np.concatenate(sides) if sides else np.zeros(0)
    if len(sides) == 0:
        raise ValueError("the training part has no objects with boxes")
    return float(np.median(sides))


def simulate_coarse(images: list[PartImage], config: PointsConfig) -> list[np.ndarray]:
    rng = np.random.default_rng(config.seed)
    out = []
    for im in images:
        objs = im.objects
        masks = None
        h, w = im.image.shape[:2]
        if config.use_masks and objs.segmentations is not None and len(objs) * h * w <= MAX_MASK_PIXELS:
            masks = objs.masks(h, w)
        out.append(coarse_points(objs, rng, config.sigma_frac, masks=masks))
    return out


def points_dataset(images: list[PartImage], points: list[np.ndarray], classes: list[str]) -> Dataset:
    """A dataset whose objects are known by points only (and the ignored boxes)."""
    records = []
    for i, (im, pts) in enumerate(zip(images, points, strict=True)):
        n, ign = len(im.objects), im.ignored
        objs = Objects(
            np.concatenate([im.objects.labels, ign.labels]),
            np.concatenate([np.full((n, 4), np.nan, np.float32), ign.boxes]),
            points=np.concatenate([pts, np.full((len(ign), 2), np.nan, np.float32)]),
            ignore=np.concatenate([np.zeros(n, bool), np.ones(len(ign), bool)]),
        )
        h, w = im.image.shape[:2]
        records.append(ImageRecord(f"{i}.png", w, h, objs, extra={"pixels": im.image}))
    return Dataset(list(classes), records, "points")


def _pseudo_box_dataset(images: list[PartImage], points: list[np.ndarray], side: float, classes) -> Dataset:
    records = []
    for i, (im, pts) in enumerate(zip(images, points, strict=True)):
        h, w = im.image.shape[:2]
        boxes = np.concatenate([pts - side / 2, pts + side / 2], 1)
        boxes = np.clip(boxes, 0, [w, h, w, h]).astype(np.float32)
        ign = im.ignored
        objs = Objects(
            np.concatenate([im.objects.labels, ign.labels]),
            np.concatenate([boxes, ign.boxes]),
            ignore=np.concatenate([np.zeros(len(pts), bool), np.ones(len(ign), bool)]),
        )
        records.append(ImageRecord(f"{i}.png", w, h, objs, extra={"pixels": im.image}))
    return Dataset(list(classes), records, "pseudo-box")


def localize(model: ClickDetector, images: list[PartImage], desc: str) -> list[Detections]:
    """The localizer's points on every image (no clicks)."""
    out = []
    for im in tqdm(images, desc=desc, leave=False, unit="image"):
        model.set_image(im.image)
        out.append(model.predict())
    return out


def score(preds: list[Detections], images: list[PartImage], num_classes: int, taus) -> dict[str, float]:
    gts = [
        Objects(
            np.concatenate([im.objects.labels, im.ignored.labels]),
            np.concatenate([im.objects.boxes, im.ignored.boxes]),
            ignore=np.concatenate([np.zeros(len(im.objects), bool), np.ones(len(im.ignored), bool)]),
        )
        for im in images
    ]
    return {f"mAP_{tau:.1f}": round(evaluate_points(gts, preds, num_classes, tau).map, 4) for tau in taus}


def relative_positions(points: list[np.ndarray], images: list[PartImage]) -> np.ndarray:
    """``(x - xc) / w, (y - yc) / h`` of every point against its object's box, ``float64[N, 2]``."""
    pts = np.concatenate(points).astype(np.float64) if points else np.zeros((0, 2))
    boxes = np.concatenate([im.objects.boxes for im in images]).astype(np.float64)
    return (pts - (boxes[:, :2] + boxes[:, 2:]) / 2) / np.maximum(boxes[:, 2:] - boxes[:, :2], 1e-6)


def run_points_protocol(
    train: Dataset,
    test: Dataset,
    work: str | Path,
    config: PointsConfig | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Run the whole protocol (see the module docstring); returns a JSON-ready dict."""
    config = config or PointsConfig()
    work = Path(work)
    classes = list(train.classes)
    if list(test.classes) != classes:
        raise ValueError(f"train and test classes differ: {classes} vs {list(test.classes)}")
    train_images, test_images = load_part(train, "train"), load_part(test, "test")
    side = median_side(train_images)
    radius = config.radius or int(np.clip(round(0.6 * side / config.level), 2, 16))
    pseudo = config.pseudo_box or side
    log(
        f"median object side {side:.1f} px: CPR bag radius R = {radius} cells of {config.level} px, "
        f"pseudo boxes {pseudo:.1f} px"
    )
    coarse = simulate_coarse(train_images, config)
    labels = [im.objects.labels for im in train_images]
    centres = [
        ((im.objects.boxes[:, :2] + im.objects.boxes[:, 2:]) / 2).astype(np.float32) for im in train_images
    ]
    minutes: dict[str, float] = {}
    results: dict = {}

    def timed(name: str, fn):
        started = time.perf_counter()
        value = fn()
        minutes[name] = round((time.perf_counter() - started) / 60, 2)
        return value

    def trained(name: str, dataset: Dataset, points_only: bool) -> ClickDetector:
        net = DetectorConfig(num_classes=len(classes), method="plain", points_only=points_only)
        train = TrainConfig(
            budget_minutes=config.localizer_minutes,
            seed=config.seed,
            steps=config.steps,
            batch_size=config.batch_size,
        )
        return ClickDetector.load(
            timed(name, lambda: train_detector(dataset, work / name, net, train, log=log))
        )

    def localizer(name: str, points: list[np.ndarray]) -> None:
        model = trained(name, points_dataset(train_images, points, classes), points_only=True)
        results[name] = score(
            localize(model, test_images, f"localize ({name})"), test_images, len(classes), config.taus
        )
        log(f"{name}: {results[name]}")

    # the pseudo-box detector: a baseline, and the predictions self-refinement averages
    pseudo_model = trained("pseudo_box", _pseudo_box_dataset(train_images, coarse, pseudo, classes), False)
    results["pseudo_box"] = score(
        localize(pseudo_model, test_images, "localize (pseudo box)"), test_images, len(classes), config.taus
    )
    train_preds = localize(pseudo_model, train_images, "pseudo-box predictions on train")
    self_refined = [
        self_refine(pts, lab, pred, radius=pseudo / 2)
        for pts, lab, pred in zip(coarse, labels, train_preds, strict=True)
    ]

    cpr_path = timed(
        "cprnet",
        lambda: train_cpr(
            [
                PointImage(im.image, pts, lab)
                for im, pts, lab in zip(train_images, coarse, labels, strict=True)
            ],
            classes,
            work / "cprnet",
            CPRConfig(
                radius=radius,
                budget_minutes=config.cpr_minutes,
                seed=config.seed,
                steps=config.steps,
                batch_size=config.batch_size,
            ),
            CPRNetConfig(num_classes=len(classes), level=config.level),
            log=log,
        ),
    )
    refiner = PointRefiner.load(cpr_path)
    refined = timed(
        "cpr_refine",
        lambda: refine_points(
            refiner,
            ((im.image, pts, lab) for im, pts, lab in zip(train_images, coarse, labels, strict=True)),
            total=len(train_images),
        ),
    )

    sets = {"coarse": coarse, "self_refined": self_refined, "cpr": refined, "center": centres}
    for name in VARIANTS:
        localizer(name, sets[name])
    boxes = np.concatenate([im.objects.boxes for im in train_images])
    results["rsv"] = {
        name: round(rsv(np.concatenate(sets[name]), boxes), 5) for name in ("coarse", "self_refined", "cpr")
    }
    results["relative"] = {
        name: relative_positions(sets[name], train_images).round(4).tolist()
        for name in ("coarse", "self_refined", "cpr")
    }
    results["train_minutes"] = minutes
    results["scale"] = {
        "median_side_px": round(side, 2),
        "radius_cells": radius,
        "level": config.level,
        "pseudo_box_px": round(pseudo, 2),
    }
    results["config"] = asdict(config)
    results["counts"] = {
        "train_images": len(train_images),
        "train_objects": int(sum(len(im.objects) for im in train_images)),
        "test_images": len(test_images),
        "test_objects": int(sum(len(im.objects) for im in test_images)),
    }
    return results
