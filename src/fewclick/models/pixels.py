"""The pixel scaling every fewclick network is trained with (detector, MaskNet, CPRNet).

Each model module re-exports :func:`normalise` as the input its network expects, so a
predictor or a training loop takes it from the model it feeds.
"""

from __future__ import annotations

import numpy as np

MEAN, STD = 127.5, 64.0


def normalise(image: np.ndarray) -> np.ndarray:
    """``uint8[H, W, 3]`` -> ``float32[3, H, W]`` as the network sees it."""
    return ((image.astype(np.float32) - MEAN) / STD).transpose(2, 0, 1)


def resized(image: np.ndarray, scale: float) -> np.ndarray:
    """``image`` (``uint8[H, W, C]``) resized by ``scale``, bilinear (OpenCV), to
    round(H x scale) x round(W x scale) pixels, at least 1; the same array at scale 1. How a
    detector with an input scale sees an image, in training and in prediction alike."""
    if scale == 1:
        return image
    import cv2

    h, w = image.shape[:2]
    size = (max(round(w * scale), 1), max(round(h * scale), 1))
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
