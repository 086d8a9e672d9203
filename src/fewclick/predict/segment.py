"""``MaskPredictor``: a box (+ corrective clicks) -> an instance mask, with M_b and M_b+c.

``predict(box)`` without clicks runs M_b on the box's crop; with clicks, M_b+c on the same
crop plus the click channels. The crop of the last box is cached, so a new round of clicks
on the same box only draws the clicks and runs the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fewclick import crops as sc
from fewclick.io.images import to_rgb8
from fewclick.models.masknet import MaskNet, load_masknet, normalise
from fewclick.predict.segment_api import MaskPrediction, check_box, check_mask_clicks, require_box
from fewclick.types import Clicks


@dataclass
class _Crop:
    """The cached crop of one box: its frame and network input ``float32[1, 4, S, S]``."""

    key: tuple[float, ...]
    frame: sc.CropFrame
    input: torch.Tensor


class MaskPredictor:
    """The learned box-to-mask predictor (the :class:`SegmentPredictor` protocol).

    ``set_image(image)`` takes ``uint8[H, W, 3]``, grayscale ``[H, W]`` or 16-bit pixels;
    ``predict(box, clicks)`` takes an XYXY box in image pixels (clipped to the image) and
    :class:`Clicks` (x, y) in image pixels (``positive`` True: belongs to the object; clicks
    outside the box are fine, outside the image a ValueError; a later click on the same pixel
    overrides an earlier one) and returns :class:`MaskPrediction` with ``mask bool[H, W]``
    and ``score`` the mean foreground probability inside the mask (0 for an empty mask).
    The models see the box and all clicks so far, so ``previous`` (the last ``state``, the
    mask) is only checked for its shape.
    ``bf16`` runs the networks under bfloat16 autocast (faster where the CPU has native bf16;
    check that it keeps the masks for your model)."""

    def __init__(self, m_b: MaskNet, m_bc: MaskNet | None = None, bf16: bool = False) -> None:
        if m_bc is not None and m_bc.config.clicks is None:
            raise ValueError("expected m_bc to be a model with click channels, got one without")
        if m_b.config.clicks is not None:
            raise ValueError(f"expected m_b to be a model without clicks, got one with {m_b.config.clicks!r}")
        if m_bc is not None and (m_bc.config.crop, m_bc.config.inner) != (m_b.config.crop, m_b.config.inner):
            raise ValueError("expected m_b and m_bc trained on the same crop size and inner box size")
        self.m_b = m_b.eval().to(memory_format=torch.channels_last)
        self.m_bc = None if m_bc is None else m_bc.eval().to(memory_format=torch.channels_last)
        self.config = m_b.config
        self.bf16 = bf16
        self._image: np.ndarray | None = None
        self._crop: _Crop | None = None

    @classmethod
    def load(cls, folder: str | Path, bf16: bool = False) -> MaskPredictor:
        """The models of a training folder: ``m_b.pt`` (required) and ``m_bc.pt`` (optional)."""
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such model folder (expected m_b.pt and m_bc.pt in it)")
        m_b, _ = load_masknet(folder / "m_b.pt")
        bc_path = folder / "m_bc.pt"
        m_bc = load_masknet(bc_path)[0] if bc_path.exists() else None
        return cls(m_b, m_bc, bf16=bf16)

    def set_image(self, image: np.ndarray) -> None:
        """Keep ``image`` (as ``uint8[H, W, 3]``) for the boxes to come."""
        self._image = to_rgb8(np.asarray(image), name="image")
        self._crop = None

    def predict(self, box: Any = None, clicks: Clicks | None = None, previous: Any = None) -> MaskPrediction:
        """The mask of the object in ``box`` given all ``clicks`` so far (see the class)."""
        if self._image is None:
            raise RuntimeError("no image set: call set_image(image) before predict(box)")
        h, w = self._image.shape[:2]
        box = check_box(require_box(box, "model"), w, h)
        clicks = check_mask_clicks(clicks, w, h)
        if previous is not None and np.shape(previous) != (h, w):
            raise ValueError(f"expected previous (the last mask) of shape {(h, w)}, got {np.shape(previous)}")
        crop = self._crop_of(box)
        prob = self._prob(crop, clicks)
        mask = sc.paste_probability(prob, crop.frame, h, w)
        inside = prob > 0.5
        score = float(prob[inside].mean()) if inside.any() else 0.0
        return MaskPrediction(mask, score, state=mask)

    def predict_prob(self, box: Any, clicks: Clicks | None = None) -> tuple[np.ndarray, sc.CropFrame]:
        """The crop's foreground probability ``float32[S, S]`` and its frame (for evaluation)."""
        if self._image is None:
            raise RuntimeError("no image set: call set_image(image) before predict_prob(box)")
        h, w = self._image.shape[:2]
        crop = self._crop_of(check_box(box, w, h))
        return self._prob(crop, check_mask_clicks(clicks, w, h)), crop.frame

    def _crop_of(self, box: np.ndarray) -> _Crop:
        key = tuple(float(v) for v in box)
        if self._crop is None or self._crop.key != key:
            cfg = self.config
            frame = sc.crop_frame(box, cfg.inner, cfg.crop)
            pixels = normalise(sc.crop_image(self._image, frame))
            boxc = sc.box_channel(frame.box_to_crop(box), cfg.crop)
            self._crop = _Crop(key, frame, torch.from_numpy(np.concatenate([pixels, boxc[None]])[None]))
        return self._crop

    def _prob(self, crop: _Crop, clicks: Clicks) -> np.ndarray:
        if len(clicks) == 0:
            return self._run(self.m_b, crop.input)
        if self.m_bc is None:
            raise ValueError("this predictor has no M_b+c model (m_bc.pt), so it cannot use clicks")
        cfg = self.m_bc.config
        xy, positive = sc.latest_clicks(clicks.xy, clicks.positive)  # in image pixels
        channels = sc.encode_clicks(crop.frame.to_crop(xy), positive, cfg.crop, cfg.clicks, cfg.click_radius)
        return self._run(self.m_bc, torch.cat([crop.input, torch.from_numpy(channels)[None]], dim=1))

    def _run(self, net: MaskNet, x: torch.Tensor) -> np.ndarray:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            logits = net(x.contiguous(memory_format=torch.channels_last))
        return torch.sigmoid(logits.float())[0, 0].numpy()
