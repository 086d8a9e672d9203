"""``ClickDetector``: clicks (x, y, class) in, boxes of every object of every class out.

``set_image`` encodes the image once (per 1024 px tile for large images) and caches the
features; ``predict`` runs only the click-dependent part and merges the tiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from fewclick.io.images import to_rgb8
from fewclick.io.tiling import Tile, merge_detections, tile_grid
from fewclick.metrics.detection import box_iou, rbox_iou
from fewclick.models.clicks import ClickTensors
from fewclick.models.detector import ClickDetectorNet, load_detector, normalise
from fewclick.models.pixels import resized
from fewclick.types import Click, Clicks, Detections, box_centers


@dataclass(frozen=True)
class DecodeConfig:
    """How head outputs become detections.

    ``enforce_clicks``: every click yields a detection of its class at the strongest
    response of that class within ``click_radius`` cells (score 1); other detections
    centred there, or overlapping a clicked detection at IoU >= ``duplicate_iou``, are
    dropped (the inference half of user-input enforcement: a clicked object is one object).
    ``passthrough``: the baseline that relabels the predicted box under each click with
    the click's class (C3Det's Passthrough; meant for the plain detector).
    """

    score_threshold: float = 0.05
    max_detections: int = 1500
    enforce_clicks: bool = True
    passthrough: bool = False
    click_radius: int = 2
    duplicate_iou: float = 0.5
    point_radius: float = 6.0  # box half-size given to point detections (points-only models)
    # A proposal whose box side is over size_factor times the largest side its class showed in
    # training, or under 1 / size_factor of the smallest, is dropped (None: keep all); a
    # clicked object always stays.
    size_factor: float | None = 2.0
    # A detector on pretrained features hands the clicks of a class it never saw in training
    # to the training-free start (:class:`fewclick.predict.similar.SimilarityDetector`, on
    # the same encoder), and offers no proposals of such a class itself: its heads for that
    # class never saw a positive.
    unseen_to_training_free: bool = True


class ClickDetector:
    """The stateful predictor (SAM's two-step API).

    ``set_image(image uint8[H, W, 3] | [H, W] | uint16)``; ``predict(clicks)`` with clicks
    (x, y, class id) in image pixels returns :class:`Detections` in image pixels
    (``rboxes`` for oriented models, ``points`` for points-only ones).

    A network on the pretrained backbone needs the ``encoder``
    (:class:`fewclick.predict.encoder.ImageEncoder`): each tile is encoded at the
    encoder's input size, so its clicks and boxes are scaled by the tile's own factor.
    ``sizes`` (class id -> [smallest, largest] side in the network's input pixels, from
    training) drives :attr:`DecodeConfig.size_factor`; its keys are the classes the
    detector saw, and a detector on pretrained features serves the others from the
    training-free start (:attr:`DecodeConfig.unseen_to_training_free`). ``input_scale``: a
    network on its own backbone (scratch, ImageNet) sees the image resized by this factor,
    as it trained (:func:`fewclick.train.detect.auto_input_scale`: small objects enlarged).
    """

    def __init__(
        self,
        net: ClickDetectorNet,
        classes: list[str],
        decode: DecodeConfig | None = None,
        tile_size: int = 1024,
        overlap: int = 200,
        encoder=None,
        sizes: dict | None = None,
        input_scale: float = 1.0,
    ) -> None:
        if net.config.backbone == "pretrained" and encoder is None:
            raise ValueError("a detector on pretrained features needs the pretrained image encoder")
        if not (np.isfinite(input_scale) and input_scale > 0):
            raise ValueError(f"expected a positive input scale, got {input_scale}")
        if net.config.backbone == "pretrained" and input_scale != 1:
            raise ValueError("a detector on pretrained features takes the encoder's input size, not a scale")
        # NHWC: oneDNN runs the 1 x 1 convolutions of a click about a third faster on a CPU.
        self.net = net.eval().to(memory_format=torch.channels_last)
        self.config = net.config
        self.classes = list(classes)
        self.decode = decode or DecodeConfig()
        self.tile_size, self.overlap = tile_size, overlap
        self.input_scale = float(input_scale)
        self.encoder = encoder
        self.sizes = {int(k): (float(v[0]), float(v[1])) for k, v in (sizes or {}).items()}
        self._tiles: list[tuple[Tile, float, object]] | None = None
        self._shape: tuple[int, int] | None = None
        self._clicks = Clicks.empty()
        self._image: tuple[np.ndarray, str | None] | None = None  # for the training-free start
        # the training-free start for unseen classes: made on the first click of one (it
        # opens SAM's decoder, ~0.1 s), kept across images, given an image on its first use
        self._similar = None
        self._similar_has_image = False

    @classmethod
    def load(
        cls,
        path: str | Path,
        decode: DecodeConfig | None = None,
        encoder=None,
        encoder_threads: int | None = None,
    ) -> ClickDetector:
        """The detector saved at ``path``; ``encoder`` for one on pretrained features (the
        default pretrained encoder when None, with ``encoder_threads`` intra-op threads)."""
        net, ckpt = load_detector(path)
        if net.config.backbone == "pretrained" and encoder is None:
            from fewclick.predict.encoder import ImageEncoder

            encoder = ImageEncoder(threads=encoder_threads)
        return cls(
            net,
            ckpt["classes"],
            decode,
            encoder=encoder,
            sizes=ckpt.get("sizes"),
            **ckpt.get("predictor", {}),
        )

    @property
    def method(self) -> str:
        """ "pretrained" (on the encoder's maps) or "scratch" (its own backbone)."""
        return self.config.backbone

    # ------------------------------------------------------------------ image
    def set_image(self, image: np.ndarray, key: str | None = None) -> None:
        """Encode ``image`` once; tiles of ``tile_size`` px with ``overlap`` for large images.
        ``key`` names the image in the pretrained encoder's cache (default: its pixels)."""
        image = to_rgb8(np.asarray(image), name="image")
        h, w = image.shape[:2]
        cached = []
        if self.config.backbone == "pretrained":
            from fewclick.predict.features import image_features

            with torch.inference_mode():
                for f in image_features(self.encoder, image, key, self.tile_size, self.overlap):
                    cached.append((f.tile, f.scale, self.net.encode(f.maps())))
            self._tiles, self._shape, self._clicks = cached, (h, w), Clicks.empty()
            self._image, self._similar_has_image = (image, key), False
            return
        scale = self.input_scale  # tiles of tile_size network pixels
        tiles = tile_grid(w, h, round(self.tile_size / scale), round(self.overlap / scale))
        with torch.inference_mode():
            for tile in tiles:
                pixels = _pad16(normalise(resized(image[tile.y0 : tile.y1, tile.x0 : tile.x1], scale)))
                if self.config.method == "early-fusion":
                    cached.append((tile, scale, pixels))  # clicks enter with the image: nothing to cache
                else:
                    cached.append((tile, scale, self.net.encode(pixels)))
        self._tiles, self._shape, self._clicks = cached, (h, w), Clicks.empty()

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height) of the current image."""
        self._require_image()
        return self._shape[1], self._shape[0]

    # ------------------------------------------------------------------ clicks
    @property
    def unseen_classes(self) -> list[int]:
        """Class ids the detector never saw in training that the training-free start serves
        (empty unless :attr:`DecodeConfig.unseen_to_training_free` applies: a detector on
        pretrained features that knows which classes it saw)."""
        if not (self.decode.unseen_to_training_free and self.config.backbone == "pretrained" and self.sizes):
            return []
        return [c for c in range(len(self.classes)) if c not in self.sizes]

    def predict(self, clicks: Clicks | list[Click] | None = None) -> Detections:
        """Detections for the current image given all clicks so far (not incremental)."""
        self._require_image()
        clicks = self._check_clicks(clicks)
        self._clicks = clicks
        unseen = self.unseen_classes
        if not unseen:
            return self._detect(clicks)
        new = np.isin(clicks.labels, unseen)
        found = self._detect(clicks[~new])
        found = found[~np.isin(found.labels, unseen)]
        if not new.any():
            return found
        extra = self._like(self._training_free(clicks[new]))
        return Detections.concatenate([found, extra] if len(found) else [extra])

    def _detect(self, clicks: Clicks) -> Detections:
        per_tile = []
        with torch.inference_mode():
            for tile, scale, cached in self._tiles:
                inside = _clicks_in(clicks, tile)
                local = Clicks(inside.xy - np.array(tile.offset, np.float32), inside.labels, inside.positive)
                tensors = _click_tensors(local, scale)
                if self.config.method == "early-fusion":
                    cached = self.net.encode(cached, tensors)
                outputs = self.net.decode(cached, tensors)
                per_tile.append((tile, self._decode(outputs, local, tile, scale)))
        return merge_detections(
            per_tile,
            oriented=self.config.oriented,
            score_threshold=self.decode.score_threshold,
            iou_threshold=0.1 if self.config.oriented else 0.5,
        )

    def _training_free(self, clicks: Clicks) -> Detections:
        """The training-free start's detections for ``clicks`` (of classes never trained on)."""
        if self._similar is None:
            from fewclick.predict.similar import SimilarityDetector

            self._similar = SimilarityDetector(len(self.classes), self.encoder)
        if not self._similar_has_image:
            self._similar.set_image(*self._image)
            self._similar_has_image = True
        return self._similar.predict(clicks)

    def _like(self, det: Detections) -> Detections:
        """``det`` (axis-aligned boxes) with the fields the detector's own detections carry:
        box centres as ``points``, and angle-0 ``rboxes`` for an oriented model."""
        centres = box_centers(det.boxes)
        rboxes = None
        if self.config.oriented:
            sides = det.boxes[:, 2:] - det.boxes[:, :2]
            rboxes = np.concatenate([centres, sides, np.zeros((len(det), 1), np.float32)], 1)
        return Detections(det.boxes, det.scores, det.labels, rboxes=rboxes, points=centres)

    def get_state(self) -> dict:
        """A snapshot for undo: the clicks given so far (the image features stay cached)."""
        return {"clicks": self._clicks}

    def set_state(self, state: dict) -> None:
        self._clicks = state["clicks"]

    # ------------------------------------------------------------------ internals
    def _require_image(self) -> None:
        if self._tiles is None:
            raise RuntimeError("no image set: call set_image(image) before predict(clicks)")

    def _check_clicks(self, clicks) -> Clicks:
        if clicks is None:
            return Clicks.empty()
        if isinstance(clicks, list):
            clicks = Clicks.from_list(clicks)
        h, w = self._shape
        for i, ((x, y), label) in enumerate(zip(clicks.xy, clicks.labels)):
            if not (0 <= x < w and 0 <= y < h):
                raise ValueError(f"click {i} at ({x:g}, {y:g}) is outside the {w} x {h} image")
            if not 0 <= label < len(self.classes):
                raise ValueError(
                    f"click {i} has class id {label}; expected 0..{len(self.classes) - 1} "
                    f"({', '.join(self.classes)})"
                )
        return clicks

    def _decode(
        self, outputs: dict[str, torch.Tensor], clicks: Clicks, tile: Tile, scale: float
    ) -> Detections:
        det = decode_outputs(
            outputs,
            clicks,
            self.net.stride / scale,
            self.decode,
            tile.height,
            tile.width,
            oriented=self.config.oriented,
            points_only=self.config.points_only,
        )
        clicked = len(clicks) if self.decode.enforce_clicks and not self.decode.passthrough else 0
        return self._plausible(det, clicked, scale)

    def _plausible(self, det: Detections, clicked: int, scale: float) -> Detections:
        """Drop proposals far outside the sizes their class showed in training (the last
        ``clicked`` detections are the clicked objects and stay)."""
        factor = self.decode.size_factor
        if factor is None or not self.sizes or self.config.points_only or not len(det):
            return det
        if det.rboxes is not None:
            sides = det.rboxes[:, 2:4] * scale
        else:
            sides = (
                np.stack([det.boxes[:, 2] - det.boxes[:, 0], det.boxes[:, 3] - det.boxes[:, 1]], 1) * scale
            )
        low = np.array([self.sizes.get(int(c), (0.0, np.inf))[0] for c in det.labels]) / factor
        high = np.array([self.sizes.get(int(c), (0.0, np.inf))[1] for c in det.labels]) * factor
        keep = (sides.max(1) <= high) & (sides.min(1) >= low)
        keep[len(det) - clicked :] = True
        return det if keep.all() else det[keep]


def detect_feature_maps(
    net: ClickDetectorNet,
    maps: list[torch.Tensor],
    valid: list[tuple[int, int]],
    decode: DecodeConfig | None = None,
) -> list[Detections]:
    """Detections without clicks of a network on the pretrained backbone for a batch of
    tiles, in the encoder's input pixels: ``maps`` are the encoder's maps (``[B, C, h, w]``
    each, finest first), ``valid`` the (height, width) of the input each tile fills.
    What evaluation and active-learning loops run over many cached tiles at once."""
    if net.config.backbone != "pretrained":
        raise ValueError(f"expected a network on the pretrained backbone, got {net.config.backbone!r}")
    if len(valid) != maps[0].shape[0]:
        raise ValueError(f"expected one valid size per tile ({maps[0].shape[0]}), got {len(valid)}")
    decode = decode or DecodeConfig()
    net.eval()
    with torch.inference_mode():
        outputs = net(maps)
    out = []
    for b, (height, width) in enumerate(valid):
        one = {k: v[b : b + 1] for k, v in outputs.items()}
        config = net.config
        det = decode_outputs(
            one, Clicks.empty(), net.stride, decode, height, width, config.oriented, config.points_only
        )
        inside = (det.points[:, 0] < width) & (det.points[:, 1] < height)  # not on the padding
        out.append(det if inside.all() else det[inside])
    return out


def decode_outputs(
    outputs: dict[str, torch.Tensor],
    clicks: Clicks,
    stride: int,
    config: DecodeConfig,
    height: int,
    width: int,
    oriented: bool,
    points_only: bool,
) -> Detections:
    """Head outputs of one image -> :class:`Detections` in that image's pixels."""
    heat = torch.sigmoid(outputs["heatmap"][0])
    num_classes, h, w = heat.shape
    peaks = heat * (F.max_pool2d(heat[None], 3, 1, 1)[0] == heat)
    flat = peaks.flatten()
    k = min(config.max_detections, flat.numel())
    scores, order = torch.topk(flat, k)
    keep = scores >= config.score_threshold
    scores, order = scores[keep], order[keep]
    labels, cells = order // (h * w), order % (h * w)
    scores, labels, cells = scores.numpy().copy(), labels.numpy(), cells.numpy()
    enforced = 0
    if len(clicks) and (config.enforce_clicks or config.passthrough):
        scores, labels, cells = _apply_clicks(heat, clicks, stride, config, scores, labels, cells)
        enforced = len(clicks) if config.enforce_clicks and not config.passthrough else 0
    detections = _cells_to_detections(
        outputs, scores, labels, cells, stride, config, height, width, oriented, points_only
    )
    return _drop_duplicates_of_clicked(detections, enforced, config.duplicate_iou, oriented)


def _drop_duplicates_of_clicked(
    detections: Detections, enforced: int, threshold: float, oriented: bool
) -> Detections:
    """Drop detections (any class) that duplicate one of the last ``enforced`` detections
    (the clicked ones): IoU >= ``threshold``, or a centre inside the clicked box's central
    half. Peaks elsewhere on a clicked object would otherwise come back as extra objects."""
    n = len(detections)
    if enforced == 0 or n == enforced:
        return detections
    others, clicked = np.arange(n - enforced), np.arange(n - enforced, n)
    if oriented:
        iou = rbox_iou(detections.rboxes[others], detections.rboxes[clicked])
    else:
        iou = box_iou(detections.boxes[others], detections.boxes[clicked])
    box = detections.boxes[clicked]
    centre, half = (box[:, :2] + box[:, 2:]) / 2, (box[:, 2:] - box[:, :2]) / 4
    c = (detections.boxes[others, :2] + detections.boxes[others, 2:]) / 2
    inside = (np.abs(c[:, None, :] - centre[None]) <= half[None]).all(-1)
    duplicate = (iou >= threshold) | inside
    keep = np.concatenate([others[~duplicate.any(1)], clicked])
    return detections[keep]


def _apply_clicks(heat, clicks, stride, config, scores, labels, cells):
    """Click enforcement (a detection of the clicked class at each click) or Passthrough."""
    num_classes, h, w = heat.shape
    cy_all, cx_all = cells // w, cells % w
    r = config.click_radius
    add_scores, add_labels, add_cells = [], [], []
    drop = np.zeros(len(cells), bool)
    for (x, y), label in zip(clicks.xy, clicks.labels):
        gx, gy = min(int(x // stride), w - 1), min(int(y // stride), h - 1)
        near = (np.abs(cx_all - gx) <= r) & (np.abs(cy_all - gy) <= r) & ~drop
        if config.passthrough:
            if near.any():
                j = np.flatnonzero(near)[np.argmax(scores[near])]
                labels[j], scores[j] = label, 1.0
            continue
        y0, y1, x0, x1 = max(gy - r, 0), min(gy + r + 1, h), max(gx - r, 0), min(gx + r + 1, w)
        window = heat[label, y0:y1, x0:x1]
        wy, wx = divmod(int(torch.argmax(window)), window.shape[1])
        cell = (y0 + wy) * w + (x0 + wx)
        drop |= near
        add_scores.append(1.0)
        add_labels.append(int(label))
        add_cells.append(cell)
    if add_cells:
        scores = np.concatenate([scores[~drop], add_scores]).astype(np.float32)
        labels = np.concatenate([labels[~drop], add_labels]).astype(np.int64)
        cells = np.concatenate([cells[~drop], add_cells]).astype(np.int64)
    return scores, labels, cells


def _cells_to_detections(
    outputs, scores, labels, cells, stride, config, height, width, oriented, points_only
):
    if len(cells) == 0:
        return Detections.empty(oriented=oriented)
    _, _, h, w = outputs["heatmap"].shape
    cy, cx = cells // w, cells % w
    offset = outputs["offset"][0].flatten(1)[:, cells].numpy()
    px = (cx + offset[0]) * stride
    py = (cy + offset[1]) * stride
    points = np.stack([px, py], 1).astype(np.float32)
    if points_only:
        sw = sh = np.full(len(cells), 2 * config.point_radius)
    else:
        size = np.exp(np.clip(outputs["size"][0].flatten(1)[:, cells].numpy(), -4, 8)) * stride
        sw, sh = size[0], size[1]
    rboxes = None
    if oriented:
        ang = outputs["angle"][0].flatten(1)[:, cells].numpy()
        a = np.mod(np.arctan2(ang[1], ang[0]) / 2, np.pi)
        rboxes = np.stack([px, py, sw, sh, a], 1).astype(np.float32)
        from fewclick.types import rboxes_to_boxes

        boxes = rboxes_to_boxes(rboxes)
    else:
        boxes = np.stack([px - sw / 2, py - sh / 2, px + sw / 2, py + sh / 2], 1)
    boxes = np.clip(boxes, 0, [width, height, width, height]).astype(np.float32)
    return Detections(boxes, scores, labels, rboxes=rboxes, points=points)


def _pad16(pixels: np.ndarray) -> torch.Tensor:
    """``[3, H, W]`` -> ``[1, 3, H', W']`` zero-padded to multiples of 16 (bottom/right)."""
    _, h, w = pixels.shape
    ph, pw = -h % 16, -w % 16
    tensor = torch.from_numpy(np.ascontiguousarray(pixels))[None]
    tensor = F.pad(tensor, (0, pw, 0, ph)) if ph or pw else tensor
    return tensor.contiguous(memory_format=torch.channels_last)


def _clicks_in(clicks: Clicks, tile: Tile) -> Clicks:
    if not len(clicks):
        return clicks
    x, y = clicks.xy[:, 0], clicks.xy[:, 1]
    inside = (x >= tile.x0) & (x < tile.x1) & (y >= tile.y0) & (y < tile.y1)
    return clicks[inside]


def _click_tensors(clicks: Clicks, scale: float = 1.0) -> ClickTensors:
    """Clicks in the network's input pixels (image pixels times ``scale``)."""
    return ClickTensors(
        torch.from_numpy(clicks.xy * np.float32(scale)),
        torch.from_numpy(clicks.labels.copy()),
        torch.zeros(len(clicks), dtype=torch.long),
    )
