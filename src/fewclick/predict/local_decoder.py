"""SAM's decoder asked many single-point prompts on one embedding at once, each attending
only to the embedding near its point: what :mod:`fewclick.predict.proposals` spends most of
its seconds in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fewclick.models.sam_decoder import GRID as GRID_CELLS
from fewclick.predict.encoder import INPUT_SIZE
from fewclick.predict.prompts import LOW_RES

BATCH = 16  # prompts a decoder call answers at once
MIN_CROP = 16  # embedding cells a side of a click's crop at least (LocalDecoder)
OUTSIDE = 20.0  # the logit outside a click's crop: far below SAM's threshold 0


class LocalDecoder:
    """SAM's decoder (:class:`~fewclick.models.sam_decoder.SamDecoder`, the weights of the
    ONNX decoder at ``path``; None: the default pair's) for many single-click prompts on one
    embedding at once, each attending only to the embedding near its click
    (:meth:`~fewclick.models.sam_decoder.SamDecoder.forward_near`): a square of
    :func:`crop_cells` cells, three times the objects' side. On the first 3 dsb2018 train
    images (130 nuclei, windows sized to them) that was 6.5x faster than the whole
    embedding (21 s against 137 s of one core) and its proposals boxed as many nuclei at
    IoU 0.7 (90 against 87). A candidate that reaches an edge of its crop inside the grid
    was cut by it: its predicted IoU is set to 0 so that it is not kept (asking it again on
    the whole embedding did not pay: 42 s for nothing kept on a textured field)."""

    def __init__(self, path: str | Path | None = None) -> None:
        from fewclick.models.sam_decoder import SamDecoder

        if path is None:
            from fewclick.predict.pretrained import default_model_files

            path = default_model_files()[1]
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such decoder file")
        self.model = SamDecoder.from_onnx(self.path).eval()

    @torch.no_grad()
    def __call__(
        self, embedding: np.ndarray, points: np.ndarray, side: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(logits float32[N, 3, 256, 256], iou float32[N, 3])``: SAM's three candidates
        for a single positive click at each of ``points`` ``[N, 2]`` (SAM-input pixels), the
        logits -:data:`OUTSIDE` outside each click's crop; ``side`` the objects' side in
        SAM-input pixels (None: the whole embedding is attended)."""
        points = np.asarray(points, np.float32).reshape(-1, 2)
        logits = np.full((len(points), 3, LOW_RES, LOW_RES), -OUTSIDE, np.float32)
        ious = np.zeros((len(points), 3), np.float32)
        image = torch.from_numpy(np.asarray(embedding, np.float32))
        crop = crop_cells(side)
        for start in range(0, len(points), BATCH):
            self._near(image, points, np.arange(start, min(start + BATCH, len(points))), crop, logits, ious)
        return logits, ious

    @torch.no_grad()
    def _near(self, image, points, some, crop, logits, ious) -> None:
        """Answer the clicks ``points[some]`` on their crops of ``crop`` cells into ``logits``
        and ``ious``."""
        masks, iou, origins = self.model.forward_near(image, torch.from_numpy(points[some]), crop)
        masks, iou = masks[:, 1:].numpy(), iou[:, 1:].numpy()
        per_cell = LOW_RES // GRID_CELLS
        for i, (x, y) in enumerate(origins.tolist()):
            here = masks[i] > 0
            cut = np.zeros(3, bool)
            for inner, edge in (
                (y > 0, here[:, 0]), (y + crop < GRID_CELLS, here[:, -1]),
                (x > 0, here[:, :, 0]), (x + crop < GRID_CELLS, here[:, :, -1]),
            ):  # fmt: skip
                cut |= inner & edge.any(-1)
            r0, c0 = y * per_cell, x * per_cell
            logits[some[i], :, r0 : r0 + crop * per_cell, c0 : c0 + crop * per_cell] = masks[i]
            ious[some[i]] = np.where(cut, 0.0, iou[i])


def crop_cells(side: float | None) -> int:
    """The embedding cells a side of a click's crop (:class:`LocalDecoder`): three times
    ``side`` (SAM-input pixels), even, at least :data:`MIN_CROP`; all of them for None."""
    if side is None:
        return GRID_CELLS
    cells = int(np.ceil(3 * side / (INPUT_SIZE / GRID_CELLS) / 2)) * 2
    return int(np.clip(cells, MIN_CROP, GRID_CELLS))
