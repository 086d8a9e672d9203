"""Full-image segmentation predictors: every region of an image from its 4 extreme points
and its corrective scribbles, all regions at once, every pixel to exactly one region.

A predictor has ``set_image(image)`` and ``predict(prompts) -> int32[H, W]`` (region ids,
the index of each prompt). Two live here:

- :class:`BoxFill`, the floor every learned model must beat: each region is the box of its
  extreme points, larger boxes painted first, so a small region inside a large one stays
  on top; scribbles paint their own pixels last. Pixels outside every box go to the
  nearest box (by distance to the box).
- :class:`SamCompete`, training-free: per region SAM's logits from its box, its extreme
  points and its scribbles' points as positive clicks, and as negative clicks the scribble
  points of other regions inside its box (the region they take pixels from). Regions
  compete by the argmax of their logits at every pixel.

A region marked ``background`` stands for the pixels no object claims. ``SamCompete``
gives it SAM's mask threshold (logit 0) in its box instead of SAM's logits, so a pixel
goes to an object only where that object's logit says "inside"; ``BoxFill`` and the
trained model take it as any region (its box is usually the whole image, painted first).
Without one, every pixel goes to some object: a few objects of one class split the whole
image between them.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from fewclick.models.fullimage import RegionPrompt, feature_inputs, region_prior
from fewclick.types import Clicks, Scribble

SCRIBBLE_CLICKS = 5  # points taken along each scribble as SAM clicks
OUTSIDE_BOX = -1e4  # a region's logit outside its box: any region whose box holds the pixel wins


def scribble_points(scribble: Scribble, count: int = SCRIBBLE_CLICKS) -> np.ndarray:
    """``count`` points spread along the scribble (its first and last included)."""
    points = scribble.points
    if len(points) <= count:
        return points
    return points[np.linspace(0, len(points) - 1, count).round().astype(int)]


def paint_scribbles(labels: np.ndarray, prompts: list[RegionPrompt], width: int = 3) -> None:
    """Give every scribble's own pixels to its region, in place."""
    from fewclick.simulate.scribbles import rasterize_scribble

    for index, prompt in enumerate(prompts):
        for s in prompt.scribbles:
            labels[rasterize_scribble(s, labels.shape, width)] = index


class BoxFill:
    """Each region is its box (see the module)."""

    def set_image(self, image: np.ndarray) -> None:
        self.shape = image.shape[:2]

    def predict(self, prompts: list[RegionPrompt]) -> np.ndarray:
        h, w = self.shape
        labels = np.full((h, w), -1, np.int32)
        boxes = [p.box for p in prompts]
        for index in sorted(range(len(prompts)), key=lambda i: -_area(boxes[i])):
            x0, y0, x1, y1 = (int(round(v)) for v in boxes[index])
            labels[max(y0, 0) : y1, max(x0, 0) : x1] = index
        paint_scribbles(labels, prompts)
        return _fill_nearest(labels)


class SamCompete:
    """SAM's logits per region, argmax across regions (see the module)."""

    def __init__(self, sam) -> None:
        self.sam = sam

    def set_image(self, image: np.ndarray, key: str | None = None) -> None:
        self.sam.set_image(image) if key is None else self.sam.set_image(image, key)
        self.shape = image.shape[:2]

    def predict(self, prompts: list[RegionPrompt]) -> np.ndarray:
        if not prompts:
            raise ValueError("expected at least one region, got none")
        h, w = self.shape
        best = np.full((h, w), -np.inf, np.float32)
        labels = np.zeros((h, w), np.int32)
        for index, prompt in enumerate(prompts):
            if prompt.background:  # SAM's threshold: an object's pixel is where its logit is above it
                logits = np.zeros((h, w), np.float32)
            else:
                logits = self.sam.logits(box=prompt.box, clicks=self._clicks(index, prompts))
            x0, y0, x1, y1 = (int(round(v)) for v in prompt.box)
            outside = np.ones((h, w), bool)
            outside[max(y0, 0) : y1, max(x0, 0) : x1] = False
            logits[outside] = OUTSIDE_BOX  # a region lives in its box, as the paper's RoI crop
            better = logits > best
            best[better], labels[better] = logits[better], index
        labels[best <= OUTSIDE_BOX] = -1  # in no region's box: the nearest box's region
        labels = _fill_nearest(labels)
        paint_scribbles(labels, prompts)
        return labels

    def _clicks(self, index: int, prompts: list[RegionPrompt]) -> Clicks:
        own = prompts[index]
        positive = [own.extreme.points] + [scribble_points(s) for s in own.scribbles]
        x0, y0, x1, y1 = own.box
        negative = [
            p
            for other, prompt in enumerate(prompts)
            if other != index
            for s in prompt.scribbles
            for p in scribble_points(s)
            if x0 <= p[0] < x1 and y0 <= p[1] < y1
        ]
        xy = np.concatenate(positive + [np.reshape(negative, (-1, 2))]).astype(np.float32)
        h, w = self.shape  # a scribble may graze the border by half a pixel: SAM refuses that
        xy = np.clip(xy, 0, np.array([w, h], np.float32) - 1e-3)
        sign = np.r_[np.ones(sum(len(p) for p in positive), bool), np.zeros(len(negative), bool)]
        return Clicks(xy, np.zeros(len(xy), np.int64), sign)


def _area(box: np.ndarray) -> float:
    return float((box[2] - box[0]) * (box[3] - box[1]))


def _fill_nearest(labels: np.ndarray) -> np.ndarray:
    """Pixels still -1 take the label of the nearest labelled pixel."""
    unset = labels < 0
    if not unset.any() or unset.all():
        return np.where(unset, 0, labels).astype(np.int32)
    _, (iy, ix) = ndimage.distance_transform_edt(unset, return_indices=True)
    return labels[iy, ix].astype(np.int32)


def resize_logits(logits: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``float32[H', W']`` logits in SAM's resized frame -> ``float32[H, W]`` at image pixels."""
    h, w = size
    return cv2.resize(logits.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)


# --------------------------------------------------------------------------- the trained model
class FullImageModel:
    """A trained full-image (or single-region) model (:mod:`fewclick.models.fullimage`) as
    a predictor. ``set_image`` computes the image's feature map once; ``predict`` runs the
    region head only for the regions whose input changed since the last call (their RoI
    box, their own marks, or, with shared annotations, another region's marks inside
    their box) and repaints only the pixels those regions' boxes cover."""

    def __init__(self, net, encoder=None, sam=None) -> None:
        self.net = net.eval()
        self.config = net.config
        self.encoder = encoder
        if self.config.sam_prior and sam is None:
            raise ValueError(
                "this full-image model starts from SAM's masks: it needs the SAM predictor, got None"
            )
        self.sam = sam
        self.method = "full_image" if self.config.loss == "pixelwise" else "single_region"
        self.name = self.method  # what the app's answers call it

    @classmethod
    def load(cls, path, encoder=None, sam=None) -> FullImageModel:
        from fewclick.models.checkpoint import load_module
        from fewclick.models.fullimage import KIND, VERSION, FullImageConfig, FullImageNet

        net, _ = load_module(path, KIND, VERSION, lambda c: FullImageNet(FullImageConfig(**c)))
        return cls(net, encoder, sam)

    def set_image(self, image: np.ndarray, key: str | None = None) -> None:
        import torch

        inputs, self.scale = feature_inputs(self.config, image, self.encoder, key)
        with torch.inference_mode():
            self.features = self.net.features(inputs)
        self.shape = np.asarray(image).shape[:2]
        if self.config.sam_prior:
            self.sam.set_image(image) if key is None else self.sam.set_image(image, key)
        self._priors: dict[bytes, np.ndarray] = {}  # extreme points -> SAM's low-res logits
        self._logits: dict[bytes, object] = {}  # region signature -> its [1, MASK, MASK] logits
        self._painted: list[tuple[bytes, np.ndarray]] = []  # (signature, RoI box) per painted region
        self._labels = np.full(self.shape, -1, np.int32)

    def predict(self, prompts: list[RegionPrompt]) -> np.ndarray:
        import torch

        from fewclick.models.fullimage import annotation_maps, roi_boxes

        if not prompts:
            raise ValueError("expected at least one region, got none")
        boxes = roi_boxes(prompts, self.shape)
        signatures = _signatures(prompts, boxes, self.config.share)
        missing = [i for i, s in enumerate(signatures) if s not in self._logits]
        if missing:
            maps = annotation_maps(prompts, boxes, self.shape, self.config.share, only=missing)
            prior = self._prior([prompts[i] for i in missing]) if self.config.sam_prior else None
            with torch.inference_mode():
                logits = self.net.region_logits(
                    self.features, torch.from_numpy(boxes[missing]), self.scale, maps, prior
                )
            for row, i in enumerate(missing):
                self._logits[signatures[i]] = logits[row]
        painted = list(zip(signatures, boxes, strict=True))
        dirty = [
            box
            for k, (sig, box) in enumerate(painted)
            if k >= len(self._painted) or self._painted[k][0] != sig
        ] + [box for k, (sig, box) in enumerate(self._painted) if k >= len(painted) or painted[k][0] != sig]
        for rect in _merge_rects(dirty, self.shape):
            self._repaint(rect, painted)
        self._painted = painted
        self._logits = {sig: self._logits[sig] for sig in signatures}  # forget regions gone
        labels = _fill_nearest(self._labels.copy())
        paint_scribbles(labels, prompts)
        return labels

    def _prior(self, prompts: list[RegionPrompt]):
        """``[N, 256, 256]`` SAM low-res logits of each region from its box and extreme points."""
        import torch

        out = []
        for p in prompts:
            key = p.extreme.points.tobytes()
            if key not in self._priors:
                self._priors[key] = region_prior(self.sam, p.extreme)
            out.append(self._priors[key])
        return torch.from_numpy(np.stack(out))

    def _repaint(self, rect: tuple[int, int, int, int], painted) -> None:
        """Argmax over the regions whose box meets ``rect`` at the pixels of ``rect``."""
        import torch
        from torch.nn import functional as F

        rx0, ry0, rx1, ry1 = rect
        best = np.full((ry1 - ry0, rx1 - rx0), -np.inf, np.float32)
        labels = np.full(best.shape, -1, np.int32)
        for index, (sig, box) in enumerate(painted):
            x0, y0 = max(int(np.floor(box[0])), rx0), max(int(np.floor(box[1])), ry0)
            x1, y1 = min(int(np.ceil(box[2])), rx1), min(int(np.ceil(box[3])), ry1)
            if x0 >= x1 or y0 >= y1:
                continue
            gx = 2 * (np.arange(x0, x1) + 0.5 - box[0]) / max(box[2] - box[0], 1e-3) - 1
            gy = 2 * (np.arange(y0, y1) + 0.5 - box[1]) / max(box[3] - box[1], 1e-3) - 1
            grid = np.stack(np.broadcast_arrays(gx[None, :], gy[:, None]), -1).astype(np.float32)
            logits = F.grid_sample(
                self._logits[sig][None],
                torch.from_numpy(grid)[None],
                align_corners=False,
                padding_mode="border",
            )[0, 0].numpy()
            logits[np.abs(gy) > 1] = -np.inf
            logits[:, np.abs(gx) > 1] = -np.inf
            window = (slice(y0 - ry0, y1 - ry0), slice(x0 - rx0, x1 - rx0))
            better = logits > best[window]
            best[window][better] = logits[better]
            labels[window][better] = index
        self._labels[ry0:ry1, rx0:rx1] = labels


def _signatures(prompts: list[RegionPrompt], boxes: np.ndarray, share: bool) -> list[bytes]:
    """Per region, the bytes its head's input is made of: its RoI box, its own marks and,
    when annotations are shared, every other region's marks whose extent meets its box."""
    import hashlib

    marks = []  # (region, x0, y0, x1, y1, bytes) per extreme point set and per scribble
    for i, p in enumerate(prompts):
        for points in [p.extreme.points] + [s.points for s in p.scribbles]:
            lo, hi = points.min(0) - 4, points.max(0) + 4
            marks.append((i, lo[0], lo[1], hi[0], hi[1], np.ascontiguousarray(points).tobytes()))
    out = []
    for i, box in enumerate(boxes):
        digest = hashlib.blake2b(box.tobytes(), digest_size=16)
        for region, x0, y0, x1, y1, data in marks:
            if region == i:
                digest.update(b"own" + data)
            elif share and x0 < box[2] and x1 > box[0] and y0 < box[3] and y1 > box[1]:
                digest.update(b"other" + data)
        out.append(digest.digest())
    return out


def _merge_rects(boxes: list[np.ndarray], shape: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """Integer pixel rectangles covering ``boxes``: overlapping ones merged into one."""
    h, w = shape
    rects = [
        (
            max(int(np.floor(b[0])), 0),
            max(int(np.floor(b[1])), 0),
            min(int(np.ceil(b[2])), w),
            min(int(np.ceil(b[3])), h),
        )
        for b in boxes
    ]
    merged: list[tuple[int, int, int, int]] = []
    for r in sorted(rects):
        for k, m in enumerate(merged):
            if r[0] < m[2] and r[2] > m[0] and r[1] < m[3] and r[3] > m[1]:
                merged[k] = (min(r[0], m[0]), min(r[1], m[1]), max(r[2], m[2]), max(r[3], m[3]))
                break
        else:
            merged.append(r)
    return [r for r in merged if r[0] < r[2] and r[1] < r[3]]
