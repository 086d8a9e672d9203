"""Where SAM is asked for proposals (issue 52): the size of an image's objects, the windows
that make them large enough in SAM's input, and the prompt points in a window.
:mod:`fewclick.predict.proposals` says why each is as it is.
"""

from __future__ import annotations

import cv2
import numpy as np

from fewclick.io.images import to_rgb8
from fewclick.predict.encoder import INPUT_SIZE

LOW_RES = 256  # SAM's mask logits cover the padded 1024 px input at 4 px a cell
CELL = INPUT_SIZE // LOW_RES
MAX_POINTS = 320  # prompts asked a window (covered points are not): ~25 s on one loaded core
GRID = 8  # the coarse grid's points a side
SIGMAS = (2.0, 3.0, 4.5, 7.0, 10.0, 15.0, 22.0, 32.0, 40.0)  # SAM-input pixels; a blob's side is ~2.8 sigma
MIN_BLOB = 0.01  # the scale-normalised LoG response a blob needs (grey levels in [0, 1])
PYRAMID_SIGMA = 3.5  # from twice this sigma, the LoG is read on a shrunk image (_extrema)
NEAR_SCALE = 2.0  # a blob scale within this factor of the objects' side is asked first
TARGET_SIDE = 64.0  # SAM-input pixels an object should span (proposals' "Windows")
MIN_WINDOW = 256  # the smallest automatic window, image pixels (4x SAM's input at most)
SIZE_SIGMAS = (2.0, 2.8, 4.0, 5.6, 8.0, 11.0, 16.0, 22.0, 32.0, 45.0)  # object_size's scales, image px
SIZE_PEAKS = 10  # the strongest blobs of a scale whose mean response rates it
SIZE_BLUR = 3.0  # pixels: the grain (JPEG, sensor noise) smoothed away before sizes are read


def prompt_points(
    pixels: np.ndarray, limit: int | None = MAX_POINTS, side: float | None = None
) -> np.ndarray:
    """``float32[K, 2]`` points (x, y) of ``pixels`` (an image already at SAM's input scale,
    ``uint8[h, w, 3]``), strongest blob first, then the grid's (module docstring). With the
    objects' ``side`` (SAM-input pixels) known, the blobs of the scales within
    :data:`NEAR_SCALE` of it go first: the limit is spent on the objects, not on the finest
    scales' grain. ``limit`` None: every point."""
    grey = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    found = []
    for sigma in SIGMAS:
        for xs, ys, strength in _extrema(grey, sigma):
            order = np.argsort(-strength, kind="stable")
            # ranked within its scale and polarity: a step's edge answers the finest scales
            # more strongly than a blob's centre answers its own, so scales take turns
            found.append(
                np.stack(
                    [
                        xs[order],
                        ys[order],
                        np.arange(len(order)),
                        np.full(len(order), len(found)),
                        -strength[order],
                    ],
                    1,
                )
            )
    blobs = np.concatenate(found)
    rank = blobs[:, 2]
    far = np.zeros(len(blobs))
    if side is not None:  # near the objects' side, the strongest blobs first whatever their scale
        sides = 2.83 * np.repeat(np.asarray(SIGMAS, np.float64), 2)[blobs[:, 3].astype(np.int64)]
        far = (np.abs(np.log(sides / max(side, 1.0))) > np.log(NEAR_SCALE)).astype(np.float64)
        rank = np.where(far == 0, blobs[:, 4], rank)
    blobs = blobs[np.lexsort((blobs[:, 3], rank, far))]
    h, w = grey.shape
    step = max(h, w) / GRID
    gx, gy = np.meshgrid(np.arange(step / 2, w, step), np.arange(step / 2, h, step))
    points = np.concatenate([blobs[:, :2], np.stack([gx.ravel(), gy.ravel()], 1)]).astype(np.float32)
    # one point per 4 px cell of SAM's logits: nearer points ask the same
    _, first = np.unique(np.floor(points / CELL).astype(np.int64), axis=0, return_index=True)
    return points[np.sort(first)][:limit]


def _extrema(grey: np.ndarray, sigma: float) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The local maxima of the scale-normalised Laplacian of Gaussian of ``grey`` at
    ``sigma`` (bright blobs), then of its negative (dark ones), each ``(xs, ys, strength)``
    in ``grey``'s pixels, above :data:`MIN_BLOB`. A maximum is the largest in the square of
    side ``2 sigma + 1`` around it. From :data:`PYRAMID_SIGMA`, the Laplacian is read on
    ``grey`` shrunk by a power of two that leaves ``sigma`` at least that many pixels there
    (the normalised response does not change with the image's scale), and the points are
    brought back to ``grey``'s pixels: on a 1024 px window that took 0.3 s of blur a scale
    at sigma 40, and the disc-shaped neighbourhood 0.7 s more, where the square is separable."""
    factor = 2 ** max(0, int(np.floor(np.log2(sigma / PYRAMID_SIGMA))))
    small = grey
    if factor > 1:
        h, w = grey.shape
        small = cv2.resize(grey, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA)
    s = sigma / factor
    response = -cv2.Laplacian(cv2.GaussianBlur(small, (0, 0), s), cv2.CV_32F) * s * s
    radius = max(1, int(round(s)))
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * radius + 1, 2 * radius + 1))
    out = []
    for signed in (response, -response):
        peaks = (signed >= cv2.dilate(signed, kernel)) & (signed > MIN_BLOB)
        ys, xs = np.nonzero(peaks)
        centre = (factor - 1) / 2  # a shrunk pixel's centre in grey's pixels
        out.append((xs * factor + centre, ys * factor + centre, signed[ys, xs]))
    return out


def object_size(image: np.ndarray) -> float:
    """The typical side, in pixels, of the blobs that make ``image`` (RGB): the scale of the
    Laplacian of Gaussian at which its strongest :data:`SIZE_PEAKS` extrema, bright or dark,
    answer most, as a blob's side (2.83 sigma). Read on the image brought to 1024 px at most
    and smoothed by :data:`SIZE_BLUR`. Chosen on the train parts of bccd, dsb2018 and
    hit_uav: within a factor of 2 of the median object side on 75 %, 97 % and 100 % of
    their first 12, 30 and 8 images (without the smoothing, bccd's grain read 8 px for its
    97 px cells)."""
    grey = cv2.cvtColor(to_rgb8(np.asarray(image), name="image"), cv2.COLOR_RGB2GRAY)
    grey = grey.astype(np.float32) / 255.0
    factor = min(1.0, INPUT_SIZE / max(grey.shape))
    if factor < 1.0:
        grey = cv2.resize(grey, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    grey = cv2.GaussianBlur(grey, (0, 0), SIZE_BLUR)
    rated = []
    for sigma in SIZE_SIGMAS:
        if 6 * sigma > max(grey.shape):  # a blob this large does not fit the image
            rated.append(0.0)
            continue
        response = cv2.Laplacian(cv2.GaussianBlur(grey, (0, 0), sigma), cv2.CV_32F) * sigma * sigma
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * int(sigma) + 1,) * 2)
        best = 0.0
        for signed in (response, -response):
            peaks = signed[(signed >= cv2.dilate(signed, kernel)) & (signed > MIN_BLOB)]
            if len(peaks):
                best = max(best, float(np.sort(peaks)[::-1][:SIZE_PEAKS].mean()))
        rated.append(best)
    return 2.83 * SIZE_SIGMAS[int(np.argmax(rated))] / factor


def auto_window(image: np.ndarray, side: float | None = None) -> int:
    """The window side, in image pixels, in which ``image``'s objects (``side``, else
    :func:`object_size`) span :data:`TARGET_SIDE` px of SAM's input; between
    :data:`MIN_WINDOW` and SAM's input."""
    side = object_size(image) if side is None else side
    return int(np.clip(round(INPUT_SIZE * side / TARGET_SIDE), MIN_WINDOW, INPUT_SIZE))
