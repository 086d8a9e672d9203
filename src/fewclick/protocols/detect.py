"""C3Det's evaluation protocol, run against any click-detector predictor.

An evaluation *session* draws, per image patch (1024 px, 200 px overlap; an object
belongs to a patch when >= 70% of it lies inside), a uniform random order of its objects
without replacement; after k clicks the annotator has clicked the centres (with the true
classes) of the first k objects of every patch. Detections of the whole image are
scored by VOC07 AP@0.5 (polygon IoU for oriented boxes; the CPR point rule for
points-only models). Five sessions give a mean and a std per k.

A predictor is anything with ``set_image(image)`` and ``predict(clicks) -> Detections``;
:class:`GroundTruthPredictor` is the oracle that tests the loop without a model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from tqdm import tqdm

from fewclick.io.tiling import crop_objects, tile_grid
from fewclick.metrics import evaluate_detections, evaluate_points
from fewclick.metrics.thresholds import best_f1_threshold
from fewclick.simulate.clicks import click_order, object_centres
from fewclick.types import Clicks, Detections, Objects

Item = tuple[np.ndarray, Objects]  # an image uint8[H, W, 3] and its ground truth


class Predictor(Protocol):
    def set_image(self, image: np.ndarray) -> None: ...

    def predict(self, clicks: Clicks) -> Detections: ...


@dataclass(frozen=True)
class ProtocolConfig:
    # the sessions: up to max_clicks clicks each, on objects drawn at random from seed
    max_clicks: int = 20
    sessions: int = 5
    seed: int = 0
    # C3Det's tiling: patches of this side with this overlap; an object cut below
    # min_visible of its area in a patch is an ignore region there
    patch: int = 1024
    overlap: int = 200
    min_visible: float = 0.7
    # matching: a box at IoU >= iou_threshold; on points-only data a GT point is a pseudo-box
    # of side point_box, and a predicted point matches within point_tau of a box's centre
    # (distance in box widths and heights, metrics.points.point_box_distance)
    iou_threshold: float = 0.5
    point_box: float = 16.0
    point_tau: float = 1.0
    ks: tuple[int, ...] | None = None  # evaluate only these k (default 0..max_clicks)
    # also find the score threshold of the best F1 (ProtocolResult.f1_threshold): one more
    # matching pass over every prediction, which only the app's detector pick needs
    f1_threshold: bool = False


@dataclass
class ProtocolResult:
    """mAP per k (mean and std over sessions) and the clicked-object recall per k;
    ``f1_threshold``: the score threshold of the best F1 over every prediction made with
    clicks (k >= 1), what the app suggests for showing proposals (None: not asked for by
    :attr:`ProtocolConfig.f1_threshold`, no such k, or no true detection)."""

    k: list[int]
    map_mean: list[float]
    map_std: list[float]
    clicked_recall: list[float]
    per_session: list[list[float]] = field(default_factory=list)
    f1_threshold: float | None = None

    def to_dict(self) -> dict:
        return {
            "k": self.k,
            "mAP_mean": self.map_mean,
            "mAP_std": self.map_std,
            "clicked_recall": self.clicked_recall,
            "mAP_per_session": self.per_session,
            "f1_threshold": self.f1_threshold,
        }


def session_clicks(
    objects: Objects, width: int, height: int, rng: np.random.Generator, config: ProtocolConfig
) -> list[tuple[np.ndarray, np.ndarray]]:
    """One session's click order per patch: a list of (centres ``float32[M, 2]`` in image
    pixels, labels ``int64[M]``), one entry per patch, each in click order."""
    out = []
    for tile in tile_grid(width, height, config.patch, config.overlap):
        inside = crop_objects(objects, tile, min_visible=config.min_visible)
        order = click_order(inside, rng)
        centres = object_centres(inside)[order] + np.array(tile.offset, np.float32)
        out.append((centres.astype(np.float32), inside.labels[order]))
    return out


def clicks_after(per_patch: list[tuple[np.ndarray, np.ndarray]], k: int) -> Clicks:
    """The clicks of a session after k steps: the first k of every patch."""
    xy = [c[:k] for c, _ in per_patch]
    labels = [lab[:k] for _, lab in per_patch]
    n = sum(len(x) for x in xy)
    if n == 0:
        return Clicks.empty()
    return Clicks(np.concatenate(xy), np.concatenate(labels), np.ones(n, bool))


def run_protocol(
    predictor: Predictor,
    items: Sequence[Item],
    num_classes: int,
    config: ProtocolConfig | None = None,
    oriented: bool = False,
    points_only: bool = False,
    progress: bool = True,
) -> ProtocolResult:
    """C3Det's protocol over ``items``; ``config.sessions`` independent sessions."""
    config = config or ProtocolConfig()
    ks = list(config.ks if config.ks is not None else range(config.max_clicks + 1))
    rng = np.random.default_rng(config.seed)
    sessions = [
        [session_clicks(obj, img.shape[1], img.shape[0], rng, config) for img, obj in items]
        for _ in range(config.sessions)
    ]
    preds = [[[None] * len(items) for _ in ks] for _ in sessions]  # [session][k][image]
    bar = tqdm(
        total=len(items) * len(ks) * len(sessions), desc="protocol", unit="predict", disable=not progress
    )
    for i, (image, _) in enumerate(items):
        predictor.set_image(image)
        for s, session in enumerate(sessions):
            for j, k in enumerate(ks):
                preds[s][j][i] = predictor.predict(clicks_after(session[i], k))
                bar.update(1)
    bar.close()
    gts = [_gt_for_scoring(obj, points_only, config) for _, obj in items]
    score = _scorer(gts, num_classes, oriented, points_only, config)
    per_session = [[score(preds[s][j]) for j in range(len(ks))] for s in range(len(sessions))]
    table = np.asarray(per_session)
    recall = [
        _clicked_recall(
            items,
            [sessions[s] for s in range(len(sessions))],
            [preds[s][j] for s in range(len(sessions))],
            k,
            oriented,
            points_only,
            config,
        )
        for j, k in enumerate(ks)
    ]
    threshold = None
    clicked = [j for j, k in enumerate(ks) if k >= 1]
    if config.f1_threshold and clicked and not points_only:
        threshold, _ = best_f1_threshold(
            [g for _ in sessions for _ in clicked for g in gts],
            [p for s in range(len(sessions)) for j in clicked for p in preds[s][j]],
            num_classes,
            config.iou_threshold,
            oriented,
        )
    return ProtocolResult(ks, table.mean(0).tolist(), table.std(0).tolist(), recall, per_session, threshold)


def evaluate_at_clicks(
    predictor: Predictor, items: Sequence[Item], ks: Sequence[int], seed: int = 0
) -> list[float]:
    """VOC07 mAP@0.5 for one session at each k (a quick check while training)."""
    cfg = ProtocolConfig(sessions=1, seed=seed, ks=tuple(ks))
    net_cfg = getattr(predictor, "config", None)
    result = run_protocol(
        predictor,
        items,
        len(predictor.classes),
        cfg,
        oriented=bool(getattr(net_cfg, "oriented", False)),
        points_only=bool(getattr(net_cfg, "points_only", False)),
        progress=False,
    )
    return result.map_mean


def validation(val, classes: Sequence[str], uses_clicks: bool) -> Callable[[object, float], str] | None:
    """What :func:`fewclick.train.detect.train_detector` calls at its checkpoints: VOC07
    mAP@0.5 of the network being trained on the dataset ``val``, with 0 clicks and, for a
    model that ``uses_clicks``, 5 (one fixed session). None for an empty ``val``."""
    from fewclick.predict.detect import ClickDetector, DecodeConfig
    from fewclick.train.detect import load_images

    if val is None or not len(val):
        return None
    images = [(im.image, im.objects) for im in load_images(val)]
    ks = (0, 5) if uses_clicks else (0,)

    def validate(net, input_scale: float) -> str:
        predictor = ClickDetector(net, classes, DecodeConfig(), input_scale=input_scale)
        scores = evaluate_at_clicks(predictor, images, ks, seed=0)
        return ", ".join(f"val mAP@{k} clicks {v:.3f}" for k, v in zip(ks, scores))

    return validate


def _gt_for_scoring(objects: Objects, points_only: bool, config: ProtocolConfig) -> Objects:
    """Points-only ground truth gets a square pseudo-box of ``point_box`` px per point."""
    if not points_only or not len(objects):
        return objects
    boxes = objects.boxes.copy()
    missing = ~np.isfinite(boxes).all(1)
    half = config.point_box / 2
    p = objects.points[missing]
    boxes[missing] = np.concatenate([p - half, p + half], 1)
    return Objects(
        objects.labels, boxes, points=objects.points, ignore=objects.ignore, difficult=objects.difficult
    )


def _scorer(
    gts: list[Objects], num_classes: int, oriented: bool, points_only: bool, config: ProtocolConfig
) -> Callable[[list[Detections]], float]:
    def score(preds: list[Detections]) -> float:
        if points_only:
            return float(
                evaluate_points(gts, preds, num_classes, tau=config.point_tau, ap_method="voc07").map
            )
        result = evaluate_detections(
            gts, preds, num_classes, iou_threshold=config.iou_threshold, ap_method="voc07", oriented=oriented
        )
        return float(result.map)

    return score


def _clicked_recall(items, sessions, preds_at_k, k, oriented, points_only, config) -> float:
    """Share of clicked objects that come back as a detection of the clicked class
    (IoU >= 0.5, or within the point rule for points-only data), over all sessions."""
    from fewclick.metrics import box_iou, point_box_distance, rbox_iou

    if k == 0:
        return float("nan")
    hit = total = 0
    for session, preds in zip(sessions, preds_at_k):
        for (_, objects), per_patch, det in zip(items, session, preds):
            clicks = clicks_after(per_patch, k)
            centres = object_centres(objects)
            gts = _gt_for_scoring(objects, points_only, config)
            for (x, y), label in zip(clicks.xy, clicks.labels):
                obj = int(np.argmin(np.hypot(*(centres - [x, y]).T)))  # the clicked object
                same = det[det.labels == label]
                total += 1
                if not len(same):
                    continue
                if points_only:
                    ok = point_box_distance(same.points, gts.boxes[obj : obj + 1]).min() <= config.point_tau
                elif oriented:
                    ok = rbox_iou(same.rboxes, objects.rboxes[obj : obj + 1]).max() >= config.iou_threshold
                else:
                    ok = box_iou(same.boxes, objects.boxes[obj : obj + 1]).max() >= config.iou_threshold
                hit += bool(ok)
    return hit / total if total else float("nan")


class GroundTruthPredictor:
    """An oracle that returns the ground truth: ``predict`` gives every object with score 1,
    or only the clicked ones with ``only_clicked``. For testing the protocol loop."""

    def __init__(self, items: Sequence[Item], only_clicked: bool = False) -> None:
        self._by_id = {id(img): obj for img, obj in items}
        self.only_clicked = only_clicked
        self._objects: Objects | None = None

    def set_image(self, image: np.ndarray) -> None:
        self._objects = self._by_id[id(image)]

    def predict(self, clicks: Clicks) -> Detections:
        objs = self._objects
        keep = np.flatnonzero(~objs.ignore)
        if self.only_clicked:
            centres = object_centres(objs)
            keep = np.array([int(np.argmin(np.hypot(*(centres - xy).T))) for xy in clicks.xy], np.int64)
        o = objs[keep]
        return Detections(
            np.nan_to_num(o.boxes), np.ones(len(o)), o.labels, rboxes=o.rboxes, points=o.centers
        )
