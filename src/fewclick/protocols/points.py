"""The points protocol (CPR, section 4): localizers trained on coarse, refined and exact points.

On the training part, every object gets one coarse point (a rectified Gaussian around the
box centre, sigma 0.25 of width and height, inside the mask when the dataset has masks).
Five point sets then train the same localizer (the click-to-detect network without clicks,
in its points mode: a class heatmap whose peaks are the predicted points):

- ``coarse``: the coarse points as annotated;
- ``self_refined``: each coarse point moved to the score-weighted mean of the predictions
  of a **pseudo-box** detector (fixed-size boxes around the coarse points) near it;
- ``cpr``: the coarse points refined by CPR (a CPRNet trained on them, then Algorithm 2);
- ``sam_centre``: each coarse point moved to the centre of the box of the pretrained SAM's
  mask for a click there (no training);
- ``center``: the box centres (the upper bound).

The pseudo-box detector is scored too (its box centres as points). Everything is scored on
the test part with point mAP at tau 0.5 / 1 / 2 against the ground-truth boxes, and the
refinements by RSV (Eq. 13) against the training boxes, with the relative-position
histograms of the paper's Figure 6.

Each localizer is trained ``PointsConfig.seeds`` times (seeds ``seed``, ``seed + 1``, ...;
the point sets stay the same): its result is the mean over the seeds whose training did not
collapse, judged on the training part (:mod:`fewclick.protocols.seeds`), with every seed's
scores beside it. ``VARIANTS`` maps each localizer's name to the function making its points.

Scale: CPR's bag radius R (feature cells) and the pseudo box's side have to suit the
objects; unless given, both come from the median object size of the *training* part
(R = 0.6 x median side / stride, clipped to 2..16; pseudo box = median side), the one
use of box sizes outside the point annotation, stated in every result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
from tqdm import tqdm

from fewclick.io.dataset import Dataset, ImageRecord
from fewclick.io.images import load_image
from fewclick.io.rle import objects_masks
from fewclick.metrics.points import evaluate_points, rsv
from fewclick.models.cpr import CPRNetConfig
from fewclick.models.detector import DetectorConfig
from fewclick.predict.detect import ClickDetector
from fewclick.predict.points import PointRefiner, refine_points, self_refine
from fewclick.protocols.seeds import CollapseRule, aggregate_seeds
from fewclick.simulate.coarse import coarse_points
from fewclick.train.cpr import CPRConfig, PointImage, train_cpr
from fewclick.train.detect import TrainConfig, train_detector
from fewclick.types import Detections, Objects

logger = logging.getLogger(__name__)

T = TypeVar("T")
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
    steps: int | None = None  # fixed steps for every training instead of the minutes
    batch_size: int = 8
    seeds: int = 1  # each localizer is trained with seeds seed, seed + 1, ...
    collapse: CollapseRule = CollapseRule()  # which trainings count as collapsed
    collapse_images: int = 32  # training-part images the collapse check scores
    variants: tuple[str, ...] | None = None  # names in VARIANTS to run; None: all of them


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
            masks = objects_masks(objs, h, w)
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


@dataclass
class ProtocolRun:
    """What the steps of one protocol run share: the parts, the annotated points, the
    scale, and the results and training minutes collected so far."""

    config: PointsConfig
    work: Path
    classes: list[str]
    train_images: list[PartImage]
    test_images: list[PartImage]
    points: list[np.ndarray]  # the annotated points of the training part (coarse ones, simulated)
    radius: int = 0  # CPR's bag radius, feature cells
    pseudo_side: float = 0.0  # pixels
    log: Callable[[str], None] = logger.info
    results: dict = field(default_factory=dict)
    minutes: dict[str, float] = field(default_factory=dict)

    @property
    def labels(self) -> list[np.ndarray]:
        return [im.objects.labels for im in self.train_images]

    def timed(self, name: str, fn: Callable[[], T]) -> T:
        """``fn()``, its minutes kept under ``name`` (the longest call when called again)."""
        started = time.perf_counter()
        value = fn()
        spent = round((time.perf_counter() - started) / 60, 2)
        self.minutes[name] = max(spent, self.minutes.get(name, 0.0))
        return value

    def train_and_score(
        self, name: str, dataset: Dataset, points_only: bool, seeds: int | None = None
    ) -> list[ClickDetector]:
        """Train ``name`` once per seed (``seeds`` of them, default ``config.seeds``), score
        each model on the test part, detect collapsed trainings from the training part;
        ``results[name]`` gets the aggregate. Returns the models in seed order."""
        probe = _spread(self.train_images, self.config.collapse_images)
        models, test, train = [], {}, {}
        for seed in range(self.config.seed, self.config.seed + (seeds or self.config.seeds)):
            model = self.timed(name, lambda seed=seed: self._train(name, dataset, points_only, seed))
            test[seed] = self._score(
                model, self.test_images, f"localize ({name}, seed {seed})", self.config.taus
            )
            train[seed] = self._score(model, probe, "collapse check", (1.0,))["mAP_1.0"]
            self.log(f"{name} seed {seed}: {test[seed]}, training part mAP_1.0 {train[seed]}")
            models.append(model)
        self.results[name] = aggregate_seeds(test, train, self.config.collapse)
        if self.results[name]["collapsed"]:
            self.log(f"{name}: seeds {self.results[name]['collapsed']} collapsed, left out of the mean")
        return models

    def _train(self, name: str, dataset: Dataset, points_only: bool, seed: int) -> ClickDetector:
        c = self.config
        net = DetectorConfig(num_classes=len(self.classes), method="plain", points_only=points_only)
        schedule = TrainConfig(
            budget_minutes=c.localizer_minutes, seed=seed, steps=c.steps, batch_size=c.batch_size
        )
        return ClickDetector.load(
            train_detector(dataset, self.work / name / f"seed{seed}", net, schedule, log=self.log)
        )

    def _score(self, model: ClickDetector, images: list[PartImage], desc: str, taus) -> dict[str, float]:
        return score(localize(model, images, desc), images, len(self.classes), taus)


def coarse_set(run: ProtocolRun) -> list[np.ndarray]:
    """The coarse points as annotated."""
    return run.points


def self_refined_set(run: ProtocolRun) -> list[np.ndarray]:
    """The coarse points moved to the score-weighted mean of the pseudo-box detector's
    predictions near them; the pseudo-box detector is scored as ``pseudo_box`` (trained
    once: self-refinement averages one model's predictions)."""
    dataset = _pseudo_box_dataset(run.train_images, run.points, run.pseudo_side, run.classes)
    (model,) = run.train_and_score("pseudo_box", dataset, points_only=False, seeds=1)
    preds = localize(model, run.train_images, "pseudo-box predictions on train")
    return [
        self_refine(pts, lab, pred, radius=run.pseudo_side / 2)
        for pts, lab, pred in zip(run.points, run.labels, preds, strict=True)
    ]


def cpr_set(run: ProtocolRun) -> list[np.ndarray]:
    """The coarse points refined by CPR: a CPRNet trained on them, then Algorithm 2."""
    c = run.config
    images = [
        PointImage(im.image, pts, lab)
        for im, pts, lab in zip(run.train_images, run.points, run.labels, strict=True)
    ]
    schedule = CPRConfig(
        radius=run.radius, budget_minutes=c.cpr_minutes, seed=c.seed, steps=c.steps, batch_size=c.batch_size
    )
    net = CPRNetConfig(num_classes=len(run.classes), level=c.level)
    path = run.timed(
        "cprnet", lambda: train_cpr(images, run.classes, run.work / "cprnet", schedule, net, log=run.log)
    )
    refiner = PointRefiner.load(path)
    triples = (
        (im.image, pts, lab) for im, pts, lab in zip(run.train_images, run.points, run.labels, strict=True)
    )
    return run.timed("cpr_refine", lambda: refine_points(refiner, triples, total=len(run.train_images)))


def sam_centre_set(run: ProtocolRun) -> list[np.ndarray]:
    """The coarse points moved by the pretrained SAM: a positive click at each point, and
    the centre of the box of its mask (``predict.sam.click_centre``; no training)."""
    from fewclick.predict.sam import SamPredictor, click_centre

    def refine() -> list[np.ndarray]:
        sam, out = SamPredictor(threads=2), []
        for im, pts in tqdm(
            list(zip(run.train_images, run.points, strict=True)), desc="sam-centre", leave=False
        ):
            if len(pts):
                sam.set_image(im.image)
                pts = np.array([click_centre(sam, float(x), float(y))[:2] for x, y in pts], np.float32)
            out.append(pts.reshape(-1, 2))
        return out

    return run.timed("sam_centre_refine", refine)


def center_set(run: ProtocolRun) -> list[np.ndarray]:
    """The box centres (the upper bound)."""
    return [
        ((im.objects.boxes[:, :2] + im.objects.boxes[:, 2:]) / 2).astype(np.float32)
        for im in run.train_images
    ]


# The localizer variants: the name of each point set and how it is made. A new variant is
# one function and one line here.
VARIANTS: dict[str, Callable[[ProtocolRun], list[np.ndarray]]] = {
    "coarse": coarse_set,
    "self_refined": self_refined_set,
    "cpr": cpr_set,
    "sam_centre": sam_centre_set,
    "center": center_set,
}


def run_points_protocol(
    train: Dataset,
    test: Dataset,
    work: str | Path,
    config: PointsConfig | None = None,
    log: Callable[[str], None] = logger.info,
) -> dict:
    """Run the whole protocol (see the module docstring); returns a JSON-ready dict."""
    config = config or PointsConfig()
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
    run = ProtocolRun(config, Path(work), classes, train_images, test_images, coarse, radius, pseudo, log)
    names = tuple(VARIANTS) if config.variants is None else config.variants
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown localizer variants {unknown}: expected names from {list(VARIANTS)}")
    sets = {name: VARIANTS[name](run) for name in names}
    for name, points in sets.items():
        run.train_and_score(name, points_dataset(train_images, points, classes), points_only=True)
    results = run.results
    refined = [name for name in sets if name != "center"]
    boxes = np.concatenate([im.objects.boxes for im in train_images])
    results["rsv"] = {name: round(rsv(np.concatenate(sets[name]), boxes), 5) for name in refined}
    results["relative"] = {
        name: relative_positions(sets[name], train_images).round(4).tolist() for name in refined
    }
    results["train_minutes"] = run.minutes
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


def _spread(items: list[T], count: int) -> list[T]:
    """At most ``count`` items, evenly spaced over ``items``."""
    if len(items) <= count:
        return list(items)
    return [items[i] for i in np.unique(np.linspace(0, len(items) - 1, count).round().astype(int))]
