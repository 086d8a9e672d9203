"""The segmentation protocols of interactive segmentation at scale, run against any
:class:`~fewclick.predict.segment_api.SegmentPredictor`.

:func:`run_rounds` is the paper's rounds x clicks session (section 3.1-3.2): per instance a
noisy box, the box prediction (round 0), then in each round the simulated annotator adds
``clicks_per_round`` corrective clicks on the current mask's errors to all the clicks so
far and the predictor re-runs with them and the previous mask. An annotator who finds no
error region to click (none left of at least ``min_region_px`` pixels) stops; later rounds
keep that mask. :func:`run_noc` is RITM's per-click protocol for NoC@85 / NoC@90.

A predictor that offers candidate masks (SAM with ``multimask``) lets the annotator switch
to another one, as ``Tab`` does on the page: after each prediction they press ``Tab`` until
the candidate closest to the object shows, when it is more than :data:`TAB_GAIN` of IoU
better than the mask served. Each press is an interaction: it is counted with the clicks
of its round, and in NoC it takes a click's place.

Items are ``(image uint8[H, W, 3], gt masks bool[N, H, W])`` (or ``bool[H, W]`` for one
instance); empty ground-truth masks are skipped. Simulation and metrics run on a window
around the ground truth, the box and the prediction, which gives the same results as the
whole image (clicks are clamped to the whole image) at a fraction of the cost. Each
instance draws its noisy box and its clicks from its own seeded streams, so every predictor
gets the same boxes and results do not depend on what happened to earlier instances.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm import tqdm

from fewclick.metrics.segmentation import boundary_f, mask_iou, mean_noc
from fewclick.predict.segment_api import SegmentPredictor
from fewclick.quality.ranker import interaction_features
from fewclick.simulate.corrective import corrective_clicks, noisy_box, ritm_next_click
from fewclick.types import Clicks, mask_box

__all__ = [
    "RoundsConfig",
    "RoundsResult",
    "NocResult",
    "run_rounds",
    "run_noc",
    "tight_box",
    "tab_to",
    "plot_miou_vs_clicks",
    "SIZE_EDGES",
]

SIZE_EDGES = (32.0, 96.0)  # sqrt(area) in pixels: small < 32 <= medium <= 96 < large
TAB_GAIN = 0.02  # how much better (IoU) a candidate must be for the annotator to Tab to it


@dataclass(frozen=True)
class RoundsConfig:
    """``rounds`` of ``clicks_per_round`` clicks; ``strategy`` where clicks go in an error
    region; ``click_noise`` their Gaussian std in px (paper: 3); error regions under
    ``min_region_px`` pixels are ignored (the paper's 20^2..30^2 are for objects of 80 px and
    more; fewclick's objects are small); ``box_noise``: std of each box coordinate as a
    fraction of the tight box's geometric-mean side (0 = tight boxes), redrawn until IoU
    >= ``box_min_iou`` with the tight box (paper: N(0, 60 px), IoU >= 0.7)."""

    rounds: int = 3
    clicks_per_round: int = 3
    strategy: Literal["center", "boundary", "random"] = "center"
    click_noise: float = 3.0
    min_region_px: int = 9
    min_region_fraction: float = 0.0
    box_noise: float = 0.2
    box_min_iou: float = 0.7
    seed: int = 0
    max_instances: int | None = None
    boundary_tolerance: float = 2.0

    def __post_init__(self) -> None:
        if self.rounds < 0 or self.clicks_per_round < 1:
            raise ValueError(
                "expected rounds >= 0 and clicks_per_round >= 1, "
                f"got {self.rounds} and {self.clicks_per_round}"
            )
        if self.strategy not in ("center", "boundary", "random"):
            raise ValueError(f"expected strategy 'center', 'boundary' or 'random', got {self.strategy!r}")
        if self.click_noise < 0 or self.box_noise < 0 or self.min_region_px < 0:
            raise ValueError(
                "expected click_noise, box_noise and min_region_px >= 0, "
                f"got {self.click_noise}, {self.box_noise}, {self.min_region_px}"
            )
        if not 0 <= self.min_region_fraction < 1:
            raise ValueError(f"expected min_region_fraction in [0, 1), got {self.min_region_fraction}")


@dataclass
class RoundsResult:
    """Per instance (rows, in item order) and round (columns 0..rounds): ``ious float64[N, R+1]``,
    ``boundary_f float64[N, R+1]``, ``clicks int64[N, R+1]`` (clicks given in that round; 0 in
    round 0), ``sizes float64[N]`` (sqrt of the GT area, px), ``scores float64[N]`` (the
    predictor's own score of each final mask), ``features float32[N, 5]`` (the
    ranker's, at each instance's last round with clicks) and ``final_ious float64[N]``;
    with a ``finish`` step, ``finished float64[N, 2]``: the IoU after it and its seconds."""

    config: RoundsConfig
    ious: np.ndarray
    boundary_f: np.ndarray
    clicks: np.ndarray
    sizes: np.ndarray
    features: np.ndarray
    scores: np.ndarray
    finished: np.ndarray | None = None

    @property
    def final_ious(self) -> np.ndarray:
        return self.ious[:, -1]

    @property
    def miou(self) -> list[float]:
        """mIoU after each round (NaN without instances)."""
        return _column_means(self.ious)

    @property
    def mean_boundary_f(self) -> list[float]:
        return _column_means(self.boundary_f)

    def clicks_curve(self) -> tuple[list[float], list[float]]:
        """(mean cumulative clicks per instance, mIoU) after each round, for plotting."""
        return _column_means(np.cumsum(self.clicks, axis=1)), self.miou

    def by_size(self, edges: tuple[float, float] = SIZE_EDGES) -> dict[str, dict]:
        """``{"small" | "medium" | "large": {"count", "mIoU": [per round]}}`` by sqrt(area)."""
        groups = {
            "small": self.sizes < edges[0],
            "medium": (self.sizes >= edges[0]) & (self.sizes <= edges[1]),
            "large": self.sizes > edges[1],
        }
        return {k: {"count": int(m.sum()), "mIoU": _column_means(self.ious[m])} for k, m in groups.items()}

    def to_dict(self) -> dict:
        clicks, _ = self.clicks_curve()
        return {
            "config": asdict(self.config),
            "instances": len(self.ious),
            "mIoU": self.miou,
            "boundary_F": self.mean_boundary_f,
            "mean_clicks": clicks,
            "by_size": self.by_size(),
        }


@dataclass
class NocResult:
    """``ious float64[N, max_clicks + 1]``: column 0 the box prediction, column k the IoU
    after click k; ``noc``: ``{"NoC@85": mean, ...}`` over instances."""

    max_clicks: int
    ious: np.ndarray
    noc: dict[str, float]

    @property
    def miou_per_click(self) -> list[float]:
        return _column_means(self.ious)

    def to_dict(self) -> dict:
        return {"instances": len(self.ious), **self.noc, "mIoU_per_click": self.miou_per_click}


def _column_means(values: np.ndarray) -> list[float]:
    if len(values) == 0:
        return [math.nan] * values.shape[1]
    return values.mean(axis=0).astype(float).tolist()


def tight_box(mask: np.ndarray) -> np.ndarray:
    """Pixel-edge box of a non-empty ``bool[H, W]`` mask: ``float32[4]`` (x0, y0, x1, y1),
    x1 / y1 one past the last mask pixel."""
    box = mask_box(mask)
    if box is None:
        raise ValueError("an empty mask has no box")
    return box


def _instances(items: Iterable, max_instances: int | None, desc: str, progress: bool) -> Iterator[tuple]:
    """Yield ``(image, gt bool[H, W], void bool[H, W] | None, first instance of its image?,
    instance number)`` per non-empty instance; consecutive items holding the same image
    object share one image. An item is ``(image, masks)`` or ``(image, masks, void)``."""
    total = len(items) if hasattr(items, "__len__") else None
    count, last = 0, None
    bar = tqdm(items, total=total, desc=desc, unit="image", leave=False, disable=not progress)
    for index, item in enumerate(bar):
        image, masks, void = item if len(item) == 3 else (*item, None)
        masks = np.asarray(masks).astype(bool)
        masks = masks[None] if masks.ndim == 2 else masks
        shape = np.shape(image)[:2]
        if masks.ndim != 3 or masks.shape[1:] != shape:
            raise ValueError(
                f"item {index}: expected masks of shape (N, {shape[0]}, {shape[1]}), got {masks.shape}"
            )
        if void is not None:
            void = np.asarray(void).astype(bool)
            if void.shape != shape:
                raise ValueError(f"item {index}: expected a void mask of shape {shape}, got {void.shape}")
        new_image, last = image is not last, image
        for gt in masks:
            if max_instances is not None and count >= max_instances:
                return
            if gt.any():
                yield image, gt, void, new_image, count
                new_image, count = False, count + 1


def _window(shape: tuple[int, int], pad: int, *masks: np.ndarray | None, box=None) -> tuple[slice, slice]:
    """Row and column slices around the union of ``masks`` (and ``box``), padded, clipped."""
    h, w = shape
    x0, y0, x1, y1 = w, h, 0, 0
    for m in masks:
        if m is None or not m.any():
            continue
        rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
        x0, y0 = min(x0, cols[0]), min(y0, rows[0])
        x1, y1 = max(x1, cols[-1] + 1), max(y1, rows[-1] + 1)
    if box is not None:
        x0, y0 = min(x0, int(math.floor(box[0]))), min(y0, int(math.floor(box[1])))
        x1, y1 = max(x1, int(math.ceil(box[2]))), max(y1, int(math.ceil(box[3])))
    return slice(max(y0 - pad, 0), min(y1 + pad, h)), slice(max(x0 - pad, 0), min(x1 + pad, w))


def _scores(
    pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None, tolerance: float
) -> tuple[float, float]:
    """IoU (void pixels left out, as RITM scores GrabCut's unlabelled band) and boundary F
    (void pixels taken as the prediction has them)."""
    rows, cols = _window(gt.shape, int(math.ceil(tolerance)) + 2, gt, pred)
    p, g = pred[rows, cols], gt[rows, cols]
    v = None if void is None else void[rows, cols]
    return mask_iou(p, g, v), boundary_f(p, _resolved(g, p, v), tolerance).f


def _resolved(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None) -> np.ndarray:
    """``gt`` with its void pixels set as ``pred`` has them: no error, and no click, there."""
    return gt if void is None else np.where(void, pred, gt)


def _clicks(
    gt: np.ndarray, pred: np.ndarray, box: np.ndarray, rng: np.random.Generator, cfg: RoundsConfig
) -> Clicks:
    """One round of corrective clicks in image coordinates (noise added after the window)."""
    rows, cols = _window(gt.shape, 2, gt, pred, box=box)
    min_region = max(cfg.min_region_px, math.ceil(cfg.min_region_fraction * int(gt.sum())))
    clicks = corrective_clicks(
        gt[rows, cols], pred[rows, cols], cfg.clicks_per_round, rng, cfg.strategy, 0.0, min_region
    )
    if len(clicks) == 0:
        return clicks
    xy = clicks.xy + np.array([cols.start, rows.start], np.float32)
    if cfg.click_noise > 0:
        xy = xy + rng.normal(0.0, cfg.click_noise, size=xy.shape)
    xy = np.clip(xy, 0, [gt.shape[1] - 1, gt.shape[0] - 1])
    return Clicks(xy, clicks.labels, clicks.positive)


def _start_box(gt: np.ndarray, rng: np.random.Generator, noise: float, min_iou: float) -> np.ndarray:
    box = tight_box(gt)
    if noise <= 0:
        return box
    sigma = noise * math.sqrt(float((box[2] - box[0]) * (box[3] - box[1])))
    return noisy_box(box, rng, sigma=sigma, min_iou=min_iou, image_size=(gt.shape[1], gt.shape[0]))


def _instance_rngs(seed: int, index: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Separate streams for the box and the clicks of instance ``index``, so every predictor
    gets the same boxes and one instance's clicks do not shift the next one's draws."""
    return np.random.default_rng([seed, index, 0]), np.random.default_rng([seed, index, 1])


def _session(predictor: SegmentPredictor, gt: np.ndarray, void, index: int, cfg: RoundsConfig):
    """One instance's rounds: (ious, boundary Fs, clicks per round, features, final score)."""
    box_rng, rng = _instance_rngs(cfg.seed, index)
    box = _start_box(gt, box_rng, cfg.box_noise, cfg.box_min_iou)
    prediction, shown = _tabbed(predictor.predict(box), gt, void)
    mask = _mask_of(prediction, gt.shape)
    scores, counts = [_scores(mask, gt, void, cfg.boundary_tolerance)], [len(shown) - 1]
    all_clicks, features = Clicks.empty(), interaction_features(0, None, None, mask)
    for r in range(1, cfg.rounds + 1):
        new = (
            _clicks(_resolved(gt, mask, void), mask, box, rng, cfg)
            if counts[-1] or r == 1
            else Clicks.empty()
        )
        if len(new):  # else the annotator has stopped: the mask stays
            all_clicks = all_clicks + new
            previous = mask
            prediction, shown = _tabbed(predictor.predict(box, all_clicks, prediction.state), gt, void)
            mask = _mask_of(prediction, gt.shape)
            features = interaction_features(r, new, previous, mask)
            scores.append(_scores(mask, gt, void, cfg.boundary_tolerance))
        else:
            shown = [None]
            scores.append(scores[-1])
        counts.append(len(new) + len(shown) - 1)
    ious, bfs = zip(*scores)
    return list(ious), list(bfs), counts, features, float(prediction.score), mask


def _tabbed(prediction, gt: np.ndarray, void: np.ndarray | None) -> tuple[object, list[float]]:
    """The candidate the annotator settles on (module docstring), and the IoU of the mask
    served and of each candidate a ``Tab`` press showed on the way (one more than the
    presses)."""
    candidates = getattr(prediction, "candidates", None) or [prediction]
    ious = [mask_iou(_mask_of(c, gt.shape), gt, void) for c in candidates]
    best = tab_to(ious)
    return candidates[best], ious[: best + 1]


def tab_to(ious: list[float]) -> int:
    """The candidate an annotator Tabs to, given each candidate's IoU with the object (the
    mask served first): the closest, when it is more than :data:`TAB_GAIN` better than the
    one served; else 0."""
    best = int(np.argmax(ious))
    return best if ious[best] > ious[0] + TAB_GAIN else 0


def _mask_of(prediction, shape: tuple[int, int]) -> np.ndarray:
    mask = np.asarray(prediction.mask).astype(bool)
    if mask.shape != shape:
        raise ValueError(f"expected the predictor to return a mask of shape {shape}, got {mask.shape}")
    return mask


def run_rounds(
    predictor: SegmentPredictor,
    items: Iterable,
    config: RoundsConfig | None = None,
    progress: bool = True,
    finish=None,
) -> RoundsResult:
    """Run the rounds x clicks protocol (module docstring) over ``items``; see
    :class:`RoundsResult` for what is recorded. Seeded by ``config.seed``: the same items and
    predictor give the same result. ``finish(mask, gt, void) -> (iou, seconds)``, when
    given, finishes each final mask another way (outline edits,
    :func:`fewclick.protocols.segment_edit.outline_finish`); its results are ``finished``."""
    cfg = RoundsConfig() if config is None else config
    rows: list[tuple] = []
    finished: list[tuple[float, float]] = []
    for image, gt, void, new_image, index in _instances(items, cfg.max_instances, "segment rounds", progress):
        if new_image:
            predictor.set_image(image)
        ious, bfs, counts, feats, score, mask = _session(predictor, gt, void, index, cfg)
        rows.append((ious, bfs, counts, math.sqrt(int(gt.sum())), feats, score))
        if finish is not None:
            finished.append(finish(mask, gt, void))
    n_cols = cfg.rounds + 1
    return RoundsResult(
        config=cfg,
        ious=np.array([r[0] for r in rows], np.float64).reshape(-1, n_cols),
        boundary_f=np.array([r[1] for r in rows], np.float64).reshape(-1, n_cols),
        clicks=np.array([r[2] for r in rows], np.int64).reshape(-1, n_cols),
        sizes=np.array([r[3] for r in rows], np.float64),
        features=np.array([r[4] for r in rows], np.float32).reshape(-1, 5),
        scores=np.array([r[5] for r in rows], np.float64),
        finished=np.array(finished, np.float64).reshape(-1, 2) if finish is not None else None,
    )


def _ritm_click(gt: np.ndarray, pred: np.ndarray, clicked: Clicks) -> Clicks:
    """RITM's next click (in image coordinates) on a window around the errors; empty if none."""
    rows, cols = _window(gt.shape, 2, gt, pred)
    offset = np.array([cols.start, rows.start], np.float32)
    local = Clicks(clicked.xy - offset, clicked.labels, clicked.positive)
    click = ritm_next_click(gt[rows, cols], pred[rows, cols], clicked=local)
    if click is None:
        return Clicks.empty()
    return Clicks(np.array([[click.x, click.y]], np.float32) + offset, [0], [click.positive])


def _noc_session(
    predictor: SegmentPredictor,
    gt: np.ndarray,
    void: np.ndarray | None,
    box: np.ndarray | None,
    max_clicks: int,
) -> list[float]:
    """IoU after the box (column 0; 0 for an empty start without a box) and each click."""
    # the box's mask served first, then the IoU after each interaction: a Tab press takes a
    # click's place
    if box is None:
        prediction, ious = None, [0.0]
    else:
        prediction, ious = _tabbed(predictor.predict(box), gt, void)
    mask = np.zeros(gt.shape, bool) if prediction is None else _mask_of(prediction, gt.shape)
    clicks = Clicks.empty()
    while len(ious) <= max_clicks:
        new = _ritm_click(_resolved(gt, mask, void), mask, clicks)
        if len(new):  # else no error is left: the mask stays
            clicks = clicks + new
            previous = None if prediction is None else prediction.state
            prediction, shown = _tabbed(predictor.predict(box, clicks, previous), gt, void)
            mask = _mask_of(prediction, gt.shape)
            ious += shown
        else:
            ious.append(ious[-1])
    return ious[: max_clicks + 1]


def run_noc(
    predictor: SegmentPredictor,
    items: Iterable,
    max_clicks: int = 20,
    thresholds: tuple[float, ...] = (0.85, 0.90),
    box_noise: float = 0.0,
    box_min_iou: float = 0.7,
    seed: int = 0,
    max_instances: int | None = None,
    progress: bool = True,
    start: Literal["box", "click"] = "box",
) -> NocResult:
    """RITM's per-click protocol. With ``start="box"`` (fewclick's default), per instance
    the predictor first segments the box alone (tight by default; ``box_noise`` as in
    :class:`RoundsConfig`), then gets one click at a time at :func:`ritm_next_click` of its
    current mask (no noise), up to ``max_clicks``; the box is free. With ``start="click"``
    (the protocol RITM and SAM publish) there is no box: the first click goes to the
    object's interior point farthest from its boundary (RITM's click on an empty mask), and
    only predictors that segment from clicks alone can run it. NoC counts clicks, so its
    minimum is 1 (:func:`~fewclick.metrics.segmentation.noc`), and is ``max_clicks`` when
    the threshold is never reached. Returns :class:`NocResult` with ``NoC@85`` etc."""
    if max_clicks < 1:
        raise ValueError(f"expected max_clicks >= 1, got {max_clicks}")
    if start not in ("box", "click"):
        raise ValueError(f"expected start 'box' or 'click', got {start!r}")
    sessions = []
    for image, gt, void, new_image, index in _instances(items, max_instances, "segment NoC", progress):
        if new_image:
            predictor.set_image(image)
        box = (
            None
            if start == "click"
            else _start_box(gt, _instance_rngs(seed, index)[0], box_noise, box_min_iou)
        )
        sessions.append(_noc_session(predictor, gt, void, box, max_clicks))
    ious = np.array(sessions, np.float64).reshape(-1, max_clicks + 1)
    noc = {f"NoC@{round(t * 100)}": mean_noc(ious[:, 1:], t, max_clicks) for t in thresholds}
    return NocResult(max_clicks, ious, noc)


def plot_miou_vs_clicks(
    curves: dict[str, tuple], path: str | Path, title: str = "mIoU vs clicks", ylabel: str = "mIoU"
) -> None:
    """One line per predictor: ``curves[name] = (clicks float[K], mIoU float[K])``, e.g.
    :meth:`RoundsResult.clicks_curve` or ``(range(len(m)), NocResult.miou_per_click)``.
    Writes PNG/SVG/PDF (by the suffix of ``path``) without touching pyplot's global state."""
    from matplotlib.figure import Figure

    if not curves:
        raise ValueError("expected at least one curve, got none")
    fig = Figure(figsize=(5, 3.6), dpi=120)
    ax = fig.add_subplot()
    for name, (x, y) in curves.items():
        if len(x) != len(y):
            raise ValueError(
                f"curve {name!r}: expected as many click counts as mIoUs, got {len(x)} and {len(y)}"
            )
        ax.plot(x, y, marker="o", label=name)
    ax.set_xlabel("clicks per instance")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
