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
