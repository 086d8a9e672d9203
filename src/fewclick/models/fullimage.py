"""The full-image segmentation network (interactive full image segmentation, section 3):
Mask R-CNN's mask branch on boxes the annotator gave, with the annotations as two more
input channels, every region's logits pasted back onto one image canvas.

Per region ``i`` of an image:

1. its *RoI box* is the box of its extreme points, grown to hold its scribbles (a user may
   draw one past the box), enlarged by ``MARGIN`` of its side plus 2 px and clipped to the
   image;
2. ``ROI x ROI`` features are RoI-aligned from the image's stride-4 feature map: the
   pretrained encoder's maps through a trainable neck
   (:class:`fewclick.models.backbone.FeatureNeck`), or a backbone trained from scratch
   (:class:`fewclick.models.backbone.Backbone`), ``FullImageConfig.backbone``;
3. the two-channel annotation map: the paper's binary maps, extreme points as discs 6 px
   across and scribbles 3 px wide at image pixels; channel 0 holds region ``i``'s own,
   channel 1 everything of all other regions (``share``; zeros for the single-region
   model). Each is cropped to the RoI box and max-pooled to ``ROI x ROI`` (RoI pooling,
   where the paper RoI-aligns): a 3 px scribble stays a full-strength mark in a box of
   any size instead of fading to a tenth of it;
4. a head of four 3 x 3 convolutions, a 2x up-convolution and a 1 x 1 convolution gives
   ``MASK x MASK`` logits over the RoI box (:class:`RegionHead`);
5. the logits are pasted back at image pixels by bilinear sampling (:func:`paste`); a
   pixel outside a region's RoI box has logit ``OUTSIDE`` for it. Regions compete by a
   softmax (training) or argmax (prediction) across regions at every pixel.

Pixels outside every RoI box take the nearest box's region (the paper leaves this open;
the protocol's background is a region of its own with its own extreme points, so such
pixels are rare: extreme points bound their region, and the boxes are enlarged).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import cv2
import numpy as np
import torch
from pycocotools import mask as mask_utils
from torch import nn
from torch.nn import functional as F
from torchvision.ops import roi_align, roi_pool

from fewclick.models.backbone import Backbone, FeatureNeck, conv_bn
from fewclick.simulate.scribbles import rasterize_scribble
from fewclick.types import Clicks, ExtremePoints, Scribble

__all__ = [
    "ROI",
    "MASK",
    "OUTSIDE",
    "FullImageConfig",
    "FullImageNet",
    "RegionHead",
    "roi_boxes",
    "annotation_maps",
    "paste",
]

ROI = 28  # RoI features and annotation maps per side
MASK = 56  # predicted logits per side
MARGIN = 0.1  # RoI boxes grow by this share of their side (and 2 px) on each side
POINT_DIAMETER = 6  # the paper's extreme point discs, in image pixels
SCRIBBLE_WIDTH = 3  # the paper's scribble width, in image pixels
OUTSIDE = -30.0  # a region's logit outside its RoI box


@dataclass(frozen=True)
class FullImageConfig:
    """``backbone``: ``"pretrained"`` (the SAM encoder's frozen maps and a trained neck) or
    ``"scratch"`` (a backbone trained on images resized to ``scratch_side``); ``loss``:
    ``"pixelwise"`` (the full-image model) or ``"mask"`` (per-mask binary, the single-region
    model); ``share``: other regions' annotations as the second channel; ``sam_prior``:
    one more input channel, SAM's logits for the region from its box and extreme points
    (:func:`sam_prior`), so the head starts from SAM's mask and learns to correct it."""

    backbone: str = "pretrained"
    loss: str = "pixelwise"
    share: bool = True
    channels: int = 64
    head_width: int = 48
    scratch_side: int = 640
    sam_prior: bool = False

    def __post_init__(self) -> None:
        if self.backbone not in ("pretrained", "scratch"):
            raise ValueError(f"backbone must be 'pretrained' or 'scratch', got {self.backbone!r}")
        if self.loss not in ("pixelwise", "mask"):
            raise ValueError(f"loss must be 'pixelwise' or 'mask', got {self.loss!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class RegionHead(nn.Module):
    """``[N, C + 2, ROI, ROI]`` (RoI features and annotation map) -> ``[N, 1, MASK, MASK]``."""

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_bn(channels + 2, width), conv_bn(width, width), conv_bn(width, width), conv_bn(width, width)
        )
        self.up = nn.Sequential(nn.ConvTranspose2d(width, width, 2, 2), nn.ReLU(inplace=True))
        self.out = nn.Conv2d(width, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.up(self.body(x)))


class FullImageNet(nn.Module):
    """Image features (:meth:`features`) and per-region logits (:meth:`region_logits`)."""

    stride = 4

    def __init__(self, config: FullImageConfig) -> None:
        super().__init__()
        self.config = config
        if config.backbone == "pretrained":
            self.backbone = FeatureNeck(out_channels=config.channels)
        else:
            self.backbone = Backbone(out_channels=config.channels)
        self.head = RegionHead(config.channels + int(config.sam_prior), config.head_width)

    def features(self, x) -> torch.Tensor:
        """The stride-4 map: ``x`` is the encoder's maps (pretrained) or an image batch."""
        return self.backbone(x)

    def region_logits(
        self,
        features: torch.Tensor,
        boxes: torch.Tensor,
        scale: float,
        annotations: torch.Tensor,
        prior: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``[N, 1, MASK, MASK]`` logits of the regions whose RoI ``boxes`` (``[N, 4]`` XYXY at
        image pixels) and annotation maps (``[N, 2, ROI, ROI]``) are given; ``scale`` is the
        feature input's pixels per image pixel; ``prior`` the regions' SAM logits
        (``[N, LOW_RES, LOW_RES]`` in SAM's padded input frame at stride 4) when the model
        has ``sam_prior``."""
        if len(boxes) == 0:
            return features.new_zeros((0, 1, MASK, MASK))
        rois = torch.cat([boxes.new_zeros((len(boxes), 1)), boxes], 1)
        z = roi_align(features, rois, ROI, spatial_scale=scale / self.stride, sampling_ratio=2, aligned=True)
        parts = [z, annotations.to(z.dtype)]
        if self.config.sam_prior:
            if prior is None or len(prior) != len(boxes):
                raise ValueError("a model with sam_prior needs SAM's logits for every region")
            parts.append(sam_prior(prior.to(z.dtype), boxes, scale))
        return self.head(torch.cat(parts, 1))


def sam_prior(low_res: torch.Tensor, boxes: torch.Tensor, scale: float) -> torch.Tensor:
    """``[N, 1, ROI, ROI]``: each region's SAM logits (``low_res [N, 256, 256]``, SAM's
    low-resolution output over its padded 1024 px input) RoI-aligned to its box, clamped to
    +-10 and divided by 10."""
    rois = torch.cat([torch.arange(len(boxes), dtype=boxes.dtype)[:, None], boxes], 1)
    crops = roi_align(low_res[:, None], rois, ROI, spatial_scale=scale / 4, sampling_ratio=2, aligned=True)
    return crops.clamp(-10, 10) / 10


def roi_boxes(prompts, shape: tuple[int, int]) -> np.ndarray:
    """``float32[N, 4]`` RoI boxes (see the module) of ``prompts``
    (:class:`RegionPrompt`) in an image of ``shape = (H, W)``."""
    h, w = shape
    out = np.zeros((len(prompts), 4), np.float32)
    for i, prompt in enumerate(prompts):
        points = np.concatenate([prompt.extreme.points] + [s.points for s in prompt.scribbles])
        x0, y0 = points.min(0)
        x1, y1 = points.max(0) + 1
        mx, my = MARGIN * (x1 - x0) + 2, MARGIN * (y1 - y0) + 2
        out[i] = [max(x0 - mx, 0), max(y0 - my, 0), min(x1 + mx, w), min(y1 + my, h)]
    return out


def _window(box: np.ndarray) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return int(np.floor(x0)), int(np.floor(y0)), int(np.ceil(x1)), int(np.ceil(y1))


def render_marks(prompt, window: tuple[int, int, int, int]) -> np.ndarray:
    """``uint8[h, w]`` (0/1) of one region's marks inside ``window`` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = window
    canvas = np.zeros((y1 - y0, x1 - x0), np.uint8)
    offset = np.array([x0, y0], np.float32)
    for x, y in np.round(prompt.extreme.points - offset).astype(int):
        cv2.circle(canvas, (int(x), int(y)), POINT_DIAMETER // 2, 1, -1)
    for s in prompt.scribbles:
        pts = np.round(s.points - offset).astype(np.int32).reshape(-1, 1, 2)
        canvas |= rasterize_scribble(Scribble(pts.reshape(-1, 2)), canvas.shape, SCRIBBLE_WIDTH).astype(
            np.uint8
        )
    return canvas


def annotation_maps(
    prompts, boxes: np.ndarray, shape: tuple[int, int], share: bool = True, only: list[int] | None = None
) -> torch.Tensor:
    """``float32[len(only), 2, ROI, ROI]`` annotation maps (see the module) of the regions
    ``only`` (default all), cropped to their RoI ``boxes``."""
    h, w = shape
    only = list(range(len(prompts))) if only is None else list(only)
    windows = [_window(b) for b in boxes]
    own = {}
    total = np.zeros((h, w), np.float32) if share else None
    for i, prompt in enumerate(prompts):
        if not share and i not in only:
            continue
        marks = render_marks(prompt, windows[i])
        own[i] = marks
        if share:
            x0, y0, x1, y1 = windows[i]
            total[y0:y1, x0:x1] += marks
    out = torch.zeros((len(only), 2, ROI, ROI))
    for row, i in enumerate(only):
        x0, y0, x1, y1 = windows[i]
        mine = own[i].astype(np.float32)
        others = np.clip(total[y0:y1, x0:x1] - mine, 0, 1) if share else np.zeros_like(mine)
        pair = torch.from_numpy(np.stack([mine, others]))[None]
        bx0, by0, bx1, by1 = boxes[i]
        box = torch.tensor([[0.0, bx0 - x0, by0 - y0, bx1 - x0 - 1, by1 - y0 - 1]])
        out[row] = roi_pool(pair, box, ROI)[0]
    return out


def paste(
    logits: torch.Tensor, boxes: torch.Tensor, size: tuple[int, int], scale: float = 1.0
) -> torch.Tensor:
    """``[N, H', W']`` canvas logits of ``[N, 1, MASK, MASK]`` region ``logits`` over their
    RoI ``boxes`` (image pixels), on a canvas of ``size = (H', W')`` at ``scale`` canvas
    pixels per image pixel; ``OUTSIDE`` outside each box. Differentiable."""
    hc, wc = size
    n = len(logits)
    xs = (torch.arange(wc, dtype=torch.float32) + 0.5) / scale
    ys = (torch.arange(hc, dtype=torch.float32) + 0.5) / scale
    x0, y0, x1, y1 = (boxes[:, k : k + 1] for k in range(4))
    gx = 2 * (xs[None] - x0) / (x1 - x0).clamp(min=1e-3) - 1  # [N, W']
    gy = 2 * (ys[None] - y0) / (y1 - y0).clamp(min=1e-3) - 1  # [N, H']
    grid = torch.stack([gx[:, None, :].expand(n, hc, wc), gy[:, :, None].expand(n, hc, wc)], -1)
    out = F.grid_sample(logits, grid, mode="bilinear", padding_mode="border", align_corners=False)[:, 0]
    inside = (gx.abs() <= 1)[:, None, :] & (gy.abs() <= 1)[:, :, None]
    return torch.where(inside, out, torch.full_like(out, OUTSIDE))


# ------------------------------------------------- what prediction, training and the protocol share
KIND, VERSION = "fullimage", 1  # the checkpoint kind and version (fewclick.models.checkpoint)
VOID = -1
MIN_REGION = 0.005  # regions under this share of the image are void (bsds500's --min-region)


@dataclass
class RegionPrompt:
    """What the annotator gave for one region: its extreme points and its scribbles."""

    extreme: ExtremePoints
    scribbles: list[Scribble] = field(default_factory=list)
    background: bool = False  # the pixels no other region claims (see the module)

    @property
    def box(self) -> np.ndarray:
        """The half-open box ``[x0, y0, x1, y1]`` of the extreme points."""
        xy = self.extreme.points
        return np.array([xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max() + 1, xy[:, 1].max() + 1], np.float32)


def region_map(record, min_region: float = MIN_REGION) -> tuple[np.ndarray, float]:
    """``(int32[H, W] region ids with VOID, the void share of the image)`` of ``record``."""
    h, w = record.height, record.width
    masks = [mask_utils.decode(s).astype(bool) for s in record.objects.segmentations or []]
    if len(masks) != len(record.objects):
        raise ValueError(f"image {record.file_name!r}: every object needs a mask for the full-image protocol")
    labels = np.full((h, w), VOID, np.int32)
    cover = np.zeros((h, w), np.int32)
    for index, mask in enumerate(masks):
        labels[mask] = index
        cover += mask
    labels[cover > 1] = VOID  # pixels two objects claim
    if (cover == 0).any():
        labels[cover == 0] = len(masks)  # the background, one region of its own
    ids, sizes = np.unique(labels[labels >= 0], return_counts=True)
    small = ids[sizes < min_region * h * w]
    labels[np.isin(labels, small)] = VOID
    return _renumber(labels), float((labels == VOID).mean())


def _renumber(labels: np.ndarray) -> np.ndarray:
    """Region ids made consecutive 0..N-1 in their order; VOID kept."""
    ids = np.unique(labels[labels >= 0])
    lookup = np.full(int(labels.max()) + 2, VOID, np.int32)
    lookup[ids] = np.arange(len(ids), dtype=np.int32)
    return np.where(labels >= 0, lookup[np.maximum(labels, 0)], VOID).astype(np.int32)


def feature_inputs(config, image: np.ndarray, encoder=None, key: str | None = None) -> tuple[object, float]:
    """``(what FullImageNet.features takes, its pixels per image pixel)`` for ``image``:
    the pretrained encoder's maps (cropped to the cells the image covers; ``encoder`` an
    :class:`fewclick.predict.encoder.ImageEncoder`, its cache keyed by ``key``), or the
    image resized to ``config.scratch_side`` as a normalised ``[1, 3, H', W']`` tensor."""
    import torch

    from fewclick.io.images import to_rgb8

    image = to_rgb8(np.asarray(image), name="image")
    h, w = image.shape[:2]
    if config.backbone == "pretrained":
        if encoder is None:
            raise ValueError("a full-image model on pretrained features needs the image encoder, got None")
        e = encoder.encode(image, key=key, features=True)
        rows, cols = e.input_size
        maps = []
        for stride, a in ((4, e.features[4]), (8, e.features[8]), (16, e.features[16]), (16, e.embedding)):
            m = torch.from_numpy(np.asarray(a, np.float32))
            maps.append(m[..., : -(-rows // stride), : -(-cols // stride)])
        return maps, float(e.scale)
    scale = config.scratch_side / max(h, w)
    size = (max(int(round(w * scale)), 1), max(int(round(h * scale)), 1))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    x = torch.from_numpy(resized).permute(2, 0, 1)[None].float()
    return (x / 255.0 - 0.5) / 0.25, scale


def region_prior(sam, extreme: ExtremePoints) -> np.ndarray:
    """SAM's ``float32[256, 256]`` low-res logits for a region from its extreme points: their
    box and the four points as positive clicks."""
    xy = extreme.points
    box = np.array([xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max() + 1, xy[:, 1].max() + 1], np.float32)
    return sam.low_res_logits(box=box, clicks=Clicks(xy, np.zeros(4, np.int64), np.ones(4, bool)))
