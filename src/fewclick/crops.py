"""The crop a box-to-mask network sees, and the click and box channels drawn in it.

Training (:mod:`fewclick.train.segment`) and the predictor (:mod:`fewclick.predict.segment`)
both build their network inputs here, so the two cannot drift apart.

A :class:`CropFrame` is the similarity transform of one (noisy) box: the box is scaled,
keeping its aspect ratio, to fit inside ``inner`` px and centred in a ``size`` x ``size``
crop, so the crop holds the box plus context from the image (zero outside the image).
The paper uses 193 in 385; our default 64 in 128 keeps a click well under 100 ms on a CPU.

Two coordinate conventions meet here, both (x, y):

- *pixel indices* (clicks, masks): ``(x, y)`` aims at ``mask[y, x]``, the pixel's centre;
- *continuous* coordinates (boxes): pixel ``i`` covers ``[i, i + 1)``.

Index coordinates are continuous ones minus 0.5, in the image and in the crop alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

ENCODINGS = ("disks", "gaussians", "distance")


@dataclass(frozen=True)
class CropFrame:
    """``crop = scale * (image - centre) + size / 2`` in continuous coordinates.

    ``centre`` (cx, cy) is the box centre in image pixels; ``scale`` crop px per image px."""

    cx: float
    cy: float
    scale: float
    size: int

    @property
    def matrix(self) -> np.ndarray:
        """``float64[2, 3]``: image pixel indices -> crop pixel indices (for cv2.warpAffine)."""
        s, half = self.scale, self.size / 2
        return np.array(
            [[s, 0.0, s * (0.5 - self.cx) + half - 0.5], [0.0, s, s * (0.5 - self.cy) + half - 0.5]]
        )

    def to_crop(self, xy: np.ndarray) -> np.ndarray:
        """Pixel indices ``float[N, 2]`` (x, y) in the image -> ``float32[N, 2]`` in the crop."""
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        return (xy * self.scale + self.matrix[:, 2]).astype(np.float32)

    def box_to_crop(self, box: np.ndarray) -> np.ndarray:
        """An XYXY box ``float[4]`` (continuous image coordinates) -> ``float32[4]`` in the crop."""
        b = np.asarray(box, np.float64).reshape(2, 2)
        return ((b - [self.cx, self.cy]) * self.scale + self.size / 2).reshape(4).astype(np.float32)

    def footprint(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The image pixels the crop covers, ``(x0, y0, x1, y1)`` integer XYXY clipped to the
        ``width`` x ``height`` image (may be empty)."""
        half = self.size / 2 / self.scale
        x0, y0 = int(np.floor(self.cx - half)), int(np.floor(self.cy - half))
        x1, y1 = int(np.ceil(self.cx + half)), int(np.ceil(self.cy + half))
        return max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)


def crop_frame(box: np.ndarray, inner: int = 64, size: int = 128) -> CropFrame:
    """The frame of an XYXY ``box`` (``float[4]``, image pixels): its longer side becomes
    ``inner`` crop px, its centre the crop's centre."""
    x0, y0, x1, y1 = np.asarray(box, np.float64).reshape(4)
    if not (x1 > x0 and y1 > y0) or not np.isfinite([x0, y0, x1, y1]).all():
        raise ValueError(f"expected a box with x1 > x0 and y1 > y0, got {[x0, y0, x1, y1]}")
    if not 0 < inner <= size:
        raise ValueError(f"expected 0 < inner <= size, got inner {inner}, size {size}")
    return CropFrame((x0 + x1) / 2, (y0 + y1) / 2, inner / max(x1 - x0, y1 - y0), int(size))


def warp_to_crop(
    array: np.ndarray,
    frame: CropFrame,
    origin: tuple[int, int] = (0, 0),
    interpolation: int = cv2.INTER_LINEAR,
) -> np.ndarray:
    """Resample ``array`` (``[h, w]`` or ``[h, w, C]``, any cv2 dtype) into the crop,
    ``[size, size(, C)]`` of the same dtype, zero outside it. ``origin`` (x, y) is where
    ``array[0, 0]`` sits in the image, so a patch of a large image can be warped alone."""
    m = frame.matrix.copy()
    m[:, 2] += frame.scale * np.asarray(origin, np.float64)
    return cv2.warpAffine(
        array, m, (frame.size, frame.size), flags=interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def crop_image(image: np.ndarray, frame: CropFrame) -> np.ndarray:
    """``uint8[H, W, 3]`` image -> ``uint8[size, size, 3]`` crop (bilinear, black outside)."""
    return warp_to_crop(np.ascontiguousarray(image), frame)


def crop_mask(mask: np.ndarray, frame: CropFrame, origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """``bool[h, w]`` mask (at ``origin`` in the image) -> ``float32[size, size]`` soft mask in [0, 1]."""
    return warp_to_crop(np.asarray(mask, np.float32), frame, origin)


def paste_probability(prob: np.ndarray, frame: CropFrame, height: int, width: int) -> np.ndarray:
    """A crop's foreground probability ``float[size, size]`` -> ``bool[height, width]`` image
    mask: bilinear inverse warp over the crop's footprint only, thresholded at 0.5."""
    out = np.zeros((height, width), bool)
    x0, y0, x1, y1 = frame.footprint(width, height)
    if x1 <= x0 or y1 <= y0:
        return out
    m = frame.matrix.copy()
    m[:, 2] += frame.scale * np.array([x0, y0], np.float64)  # window pixel -> crop pixel
    window = cv2.warpAffine(
        np.asarray(prob, np.float32),
        m,
        (x1 - x0, y1 - y0),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    out[y0:y1, x0:x1] = window > 0.5
    return out


def box_channel(box_in_crop: np.ndarray, size: int) -> np.ndarray:
    """``float32[size, size]``: 1 on crop pixels whose centre lies inside the XYXY box
    (continuous crop coordinates), else 0."""
    x0, y0, x1, y1 = np.asarray(box_in_crop, np.float64).reshape(4)
    centres = np.arange(size) + 0.5
    inside_x = (centres >= x0) & (centres < x1)
    inside_y = (centres >= y0) & (centres < y1)
    return (inside_y[:, None] & inside_x[None, :]).astype(np.float32)


def encode_clicks(
    xy: np.ndarray, positive: np.ndarray, size: int, encoding: str = "disks", radius: float = 5.0
) -> np.ndarray:
    """Clicks at crop pixel indices ``xy float[N, 2]`` (x, y) -> ``float32[2, size, size]``:
    channel 0 the positive clicks, channel 1 the negative ones.

    ``"disks"``: 1 within ``radius`` px of a click (the paper's winner); ``"gaussians"``:
    ``exp(-d^2 / 2 radius^2)``, max over clicks; ``"distance"``: the distance to the nearest
    click truncated at ``size / 2`` and scaled to [0, 1] (1 everywhere without clicks).
    Clicks outside the crop still count where their disk or distance reaches in."""
    if encoding not in ENCODINGS:
        raise ValueError(f"expected a click encoding of {ENCODINGS}, got {encoding!r}")
    xy = np.asarray(xy, np.float32).reshape(-1, 2)
    positive = np.asarray(positive, bool).reshape(-1)
    grid = np.arange(size, dtype=np.float32)
    out = np.empty((2, size, size), np.float32)
    for channel, chosen in enumerate((positive, ~positive)):
        pts = xy[chosen]
        if len(pts) == 0:
            out[channel] = 1.0 if encoding == "distance" else 0.0
            continue
        d2 = (grid[None, None, :] - pts[:, 0, None, None]) ** 2 + (
            grid[None, :, None] - pts[:, 1, None, None]
        ) ** 2
        nearest = d2.min(axis=0)
        if encoding == "disks":
            out[channel] = nearest <= radius**2
        elif encoding == "gaussians":
            out[channel] = np.exp(-nearest / (2 * radius**2))
        else:
            out[channel] = np.minimum(np.sqrt(nearest), size / 2) / (size / 2)
    return out


def latest_clicks(xy: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Contradicting clicks on one pixel: the later click wins. Drops every click whose
    rounded (x, y) pixel is clicked again later; returns the kept ``(xy, positive)`` in order."""
    xy = np.asarray(xy, np.float32).reshape(-1, 2)
    positive = np.asarray(positive, bool).reshape(-1)
    pixels = np.round(xy).astype(np.int64)
    keep = np.ones(len(xy), bool)
    seen: set[tuple[int, int]] = set()
    for i in range(len(xy) - 1, -1, -1):
        key = (int(pixels[i, 0]), int(pixels[i, 1]))
        keep[i] = key not in seen
        seen.add(key)
    return xy[keep], positive[keep]
