"""``SamPredictor``: box and / or clicks -> a mask, from a pretrained SAM-format decoder.

``set_image(image)`` gets the image's embedding from the shared :class:`ImageEncoder`
(cached); ``predict(box, clicks, previous)`` runs only the ONNX prompt encoder and mask
decoder (tens of ms). ``previous`` is the ``state`` of the last prediction on the same
object: SAM's 256 x 256 low-resolution logits, fed back as ``mask_input`` as SAM's own
iterative evaluation does.

SAM's decoder computes four masks per prompt with their predicted IoUs and returns one:
for an ambiguous prompt (one click, or a box alone) the best predicted of its three
"multimask" outputs, else its single-mask output. ``predict(..., multimask=True)`` also
returns the three of an ambiguous prompt as ``candidates``: the graph's intermediate
tensors (:data:`CANDIDATE_TENSORS`) are added as outputs when the decoder loads, as the
encoder's maps are. A decoder tuned to a project carries offsets in its ONNX metadata that
choose among all four masks for an ambiguous prompt (:mod:`fewclick.models.sam_pick`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fewclick.models.sam_pick import OFFSETS_KEY, parse_offsets, prompt_kind, ranked
from fewclick.predict.encoder import INPUT_SIZE, Embedding, ImageEncoder, onnx_session
from fewclick.predict.segment_api import MaskPrediction, check_box, check_mask_clicks
from fewclick.types import Clicks

LOW_RES = 256
DECODER_INPUTS = ("image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input")
#: the default decoder's (SAM's ONNX export) tensors before it picks one mask: the four
#: masks' low-resolution logits ``[1, 4, 256, 256]`` and their predicted IoUs ``[1, 4]``
CANDIDATE_TENSORS = {"low_res": "/Reshape_9_output_0", "iou": "/iou_prediction_head/layers.2/Gemm_output_0"}


class SamPredictor:
    """The pretrained promptable segmenter (the :class:`SegmentPredictor` protocol).

    ``encoder`` is the shared :class:`ImageEncoder` (None: the default pair's encoder);
    ``decoder`` the ONNX decoder's path (None: the default pair's, checked by sha256).
    ``predict`` takes an XYXY box in image pixels (clipped to the image; optional) and
    :class:`Clicks` in image pixels (``positive`` True: belongs to the object; outside the
    image a ValueError); at least one of the two. It returns :class:`MaskPrediction` with
    ``mask bool[H, W]``, ``score`` SAM's own IoU estimate clipped to [0, 1] and ``state``
    ``float32[1, 1, 256, 256]`` logits to pass back as ``previous``. With ``multimask``
    (here or per call) it also holds ``candidates`` for an ambiguous prompt: the mask served
    first, then SAM's two other masks best predicted IoU first, each with its own score and
    state; for any other prompt, or from a decoder without :data:`CANDIDATE_TENSORS`, only
    the mask served."""

    name = "sam"

    def __init__(
        self,
        encoder: ImageEncoder | None = None,
        decoder: str | Path | None = None,
        threads: int | None = None,
        multimask: bool = False,
    ) -> None:

        if decoder is None:
            from fewclick.predict.pretrained import default_model_files

            decoder = default_model_files()[1]
        self.encoder = ImageEncoder(threads=threads) if encoder is None else encoder
        self.decoder_path = Path(decoder)
        self.multimask = multimask
        if not self.decoder_path.is_file():
            raise FileNotFoundError(f"{self.decoder_path}: no such decoder file")
        self.session, self._candidate_outputs = onnx_session(
            self.decoder_path, CANDIDATE_TENSORS, "decoder", threads
        )
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        missing = [n for n in (*DECODER_INPUTS, "orig_im_size") if n not in inputs]
        if missing:
            raise ValueError(f"{self.decoder_path}: expected a SAM-format decoder, it lacks inputs {missing}")
        self._embedding_shape = inputs["image_embeddings"]
        metadata = self.session.get_modelmeta().custom_metadata_map
        #: a tuned decoder's offsets for the mask served (fewclick.models.sam_pick); empty: none
        self.offsets = parse_offsets(metadata.get(OFFSETS_KEY), str(self.decoder_path)) or {}
        self._embedding: Embedding | None = None

    def set_image(self, image: np.ndarray, key: str | None = None) -> None:
        """Encode ``image`` (or take its embedding from the encoder's cache under ``key``)."""
        self.set_embedding(self.encoder.encode(image, key=key))

    def set_embedding(self, embedding: Embedding) -> None:
        """Use an embedding computed elsewhere; ValueError if it does not fit the decoder."""
        expected = self._embedding_shape
        found = embedding.embedding.shape
        fits = len(found) == len(expected) and all(
            not isinstance(e, int) or e == f for e, f in zip(expected, found)
        )
        if not fits:
            raise ValueError(
                f"embedding of shape {list(found)} (from {self.encoder.path}) does not fit the decoder "
                f"{self.decoder_path}, which expects {expected}: "
                "the encoder and decoder are from different models"
            )
        self._embedding = embedding

    def predict(
        self,
        box: Any = None,
        clicks: Clicks | None = None,
        previous: Any = None,
        multimask: bool | None = None,
        offsets: dict | None = None,
    ) -> MaskPrediction:
        """The mask for ``box`` and all ``clicks`` so far, with ``candidates`` when
        ``multimask`` (None: the predictor's own setting; see the class). ``offsets``: a
        project's offsets for the mask served (:mod:`fewclick.models.sam_pick`) instead of
        the decoder's own (a pretrained decoder has none)."""
        multimask = self.multimask if multimask is None else multimask
        offsets = self.offsets if offsets is None else offsets
        points = self._points(box, clicks)
        kind = prompt_kind(points, box is not None)
        picking = bool(offsets) and kind in offsets and bool(self._candidate_outputs)
        logits, iou, low_res, *every = self._decode(box, clicks, previous, candidates=multimask or picking)
        order = ranked(every[1], points, kind, offsets) if every else [None]
        if picking:  # the tuned decoder's choice, from the four masks
            served = self._candidate(*every, order[0])
        else:  # the graph's own choice
            served = MaskPrediction(
                upscale_mask(logits, self._embedding.image_size), _score(iou), state=low_res[:, :1]
            )
        if multimask:  # a decoder without the candidate tensors offers the mask served alone
            served.candidates = [served, *(self._candidate(*every, i) for i in order[1:])]
        return served

    def first_prompt_records(self, masks: list[np.ndarray]) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """For each object ``masks`` (``bool[H, W]`` of the image held) what
        :func:`~fewclick.models.sam_pick.fit_offsets` takes: its tight box alone and one
        click at its inmost point, each ``(kind, predicted IoUs [4], actual IoUs [4])``; none
        from a decoder without the four masks' outputs."""
        if not self._candidate_outputs:
            return []
        rows, cols = (-(-s // 4) for s in self._embedding.input_size)  # the low-res logits' frame
        records = []
        for truth in masks:
            ys, xs = np.nonzero(truth)
            if not len(xs):
                continue
            box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
            # compared at the logits' resolution: the choice among four masks, not their edges
            small = cv2.resize(truth.astype(np.float32), (cols, rows), interpolation=cv2.INTER_AREA) >= 0.5
            for kind, prompt in (("box", (box, None)), ("click", (None, inmost_click(truth)))):
                _, _, _, low, iou = self._decode(*prompt, None, candidates=True)
                inside = low[0, :, :rows, :cols] > 0
                union = (inside | small).sum((1, 2))
                actual = np.where(union > 0, (inside & small).sum((1, 2)) / np.maximum(union, 1), 0.0)
                records.append((kind, iou.reshape(-1).copy(), actual.astype(np.float64)))
        return records

    def _candidate(self, low_res: np.ndarray, iou: np.ndarray, index: int) -> MaskPrediction:
        """SAM's mask ``index`` of the four, with its own predicted IoU and state. For an
        ambiguous prompt a person may switch to the masks other than the one served; for any
        other prompt there are none (measured: switching after corrective clicks cost more
        presses than it saved, docs/benchmarks/segment.md)."""
        e = self._embedding
        return MaskPrediction(
            upscale_mask(low_res_to_input(low_res[0, index], e.input_size), e.image_size),
            _score(iou.reshape(-1)[index]),
            state=low_res[:, index : index + 1].copy(),
        )

    @staticmethod
    def _points(box: Any, clicks: Clicks | None) -> int:
        """How many points SAM's prompt holds (:meth:`_prompt`)."""
        return (0 if clicks is None else len(clicks)) + (1 if box is None else 2)

    def logits(self, box: Any = None, clicks: Clicks | None = None) -> np.ndarray:
        """SAM's mask logits for ``box`` and ``clicks`` at every image pixel (``float32[H, W]``,
        > 0 inside the mask): what regions compete with in full-image segmentation."""
        from fewclick.predict.fullimage import resize_logits

        logits, *_ = self._decode(box, clicks, None)
        return resize_logits(logits, self._embedding.image_size)

    def low_res_logits(self, box: Any = None, clicks: Clicks | None = None) -> np.ndarray:
        """SAM's ``float32[256, 256]`` low-resolution logits over its padded 1024 px input
        (stride 4): the full-image model's prior for a region."""
        _, _, low_res, *_ = self._decode(box, clicks, None)
        return low_res[0, 0]

    def _decode(
        self, box: Any, clicks: Clicks | None, previous: Any, candidates: bool = False
    ) -> tuple[np.ndarray, ...]:
        """The decoder's logits in the resized frame, its IoU estimate and low-res logits;
        with ``candidates`` (and a decoder that has them) also all four masks' low-res
        logits and predicted IoUs."""
        e = self._embedding
        if e is None:
            raise RuntimeError("no image set: call set_image(image) before predict(box, clicks)")
        h, w = e.image_size
        clicks = check_mask_clicks(clicks, w, h)
        if box is None and len(clicks) == 0:
            raise ValueError("expected a box or at least one click, got neither")
        coords, labels = self._prompt(None if box is None else check_box(box, w, h), clicks)
        mask_input = np.zeros((1, 1, LOW_RES, LOW_RES), np.float32)
        if previous is not None:
            previous = np.asarray(previous, np.float32)
            if previous.shape != mask_input.shape:
                raise ValueError(
                    f"expected previous SAM logits of shape {mask_input.shape}, got {previous.shape}"
                )
            mask_input = previous
        feeds = {
            "image_embeddings": e.embedding,
            "point_coords": coords,
            "point_labels": labels,
            "mask_input": mask_input,
            "has_mask_input": np.array([0.0 if previous is None else 1.0], np.float32),
            "orig_im_size": np.array(e.input_size, np.float32),
        }
        names = ["masks", "iou_predictions", "low_res_masks"]
        extra = (
            [self._candidate_outputs[k] for k in ("low_res", "iou")]
            if candidates and self._candidate_outputs
            else []
        )
        logits, iou, low_res, *every = self.session.run(names + extra, feeds)
        return (logits[0, 0], iou, low_res, *every)

    def _prompt(self, box: np.ndarray | None, clicks: Clicks) -> tuple[np.ndarray, np.ndarray]:
        """SAM's point prompt in the 1024 px input frame: clicks (label 1 / 0), then the
        box corners (2, 3), or a padding point (-1) when there is no box."""
        e = self._embedding
        sy, sx = e.input_size[0] / e.image_size[0], e.input_size[1] / e.image_size[1]
        xy = [np.asarray(clicks.xy, np.float32).reshape(-1, 2)]
        labels = [np.asarray(clicks.positive, np.float32).reshape(-1)]
        if box is None:
            xy.append(np.zeros((1, 2), np.float32))
            labels.append(np.array([-1.0], np.float32))
        else:
            xy.append(np.asarray(box, np.float32).reshape(2, 2))
            labels.append(np.array([2.0, 3.0], np.float32))
        coords = np.concatenate(xy) * np.array([sx, sy], np.float32)
        return coords[None].astype(np.float32), np.concatenate(labels)[None].astype(np.float32)


def inmost_click(mask: np.ndarray) -> Clicks:
    """One positive click at the mask's point farthest from its boundary."""
    distance = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return Clicks(np.array([[x + 0.5, y + 0.5]], np.float32), np.zeros(1, np.int64), np.ones(1, bool))


def _score(iou: Any) -> float:
    """SAM's IoU estimate as a score in [0, 1]."""
    return float(np.clip(np.asarray(iou).reshape(-1)[0], 0.0, 1.0))


def low_res_to_input(low_res: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """SAM's ``float32[256, 256]`` logits -> logits in the resized frame ``input_size``:
    upsampled bilinearly to the padded 1024 px input, the padding cut off (SAM's own
    postprocessing, which the decoder graph does for the mask it serves)."""
    full = cv2.resize(
        np.asarray(low_res, np.float32), (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR
    )
    return full[: input_size[0], : input_size[1]]


def upscale_mask(logits: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``float32[H', W']`` logits in the resized frame -> ``bool[H, W]`` in image pixels,
    resampling (bilinearly, as SAM's postprocessing does) only a window around the positive
    logits, so a click on a 10,000 px image does not resize 100 megapixels."""
    h, w = size
    hi, wi = logits.shape
    mask = np.zeros((h, w), bool)
    rows, cols = np.flatnonzero((logits > 0).any(axis=1)), np.flatnonzero((logits > 0).any(axis=0))
    if len(rows) == 0:
        return mask
    fy, fx = h / hi, w / wi
    # the window in the resized frame (+2 px for the interpolation), then in image pixels
    r0, r1 = max(rows[0] - 2, 0), min(rows[-1] + 3, hi)
    c0, c1 = max(cols[0] - 2, 0), min(cols[-1] + 3, wi)
    y0, y1 = int(np.floor(r0 * fy)), min(int(np.ceil(r1 * fy)), h)
    x0, x1 = int(np.floor(c0 * fx)), min(int(np.ceil(c1 * fx)), w)
    # sample the logits at the image pixels' centres, mapped into the resized frame
    ys = ((np.arange(y0, y1) + 0.5) / fy - 0.5).astype(np.float32)
    xs = ((np.arange(x0, x1) + 0.5) / fx - 0.5).astype(np.float32)
    map_x, map_y = np.meshgrid(xs, ys)
    window = cv2.remap(
        logits.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    mask[y0:y1, x0:x1] = window > 0
    return mask


def click_centre(sam: SamPredictor, x: float, y: float) -> tuple[float, float, np.ndarray]:
    """The "sam-centre" point localizer: one positive click at (x, y) on the image set in
    ``sam`` -> ``(cx, cy, mask bool[H, W])``, the centre of the tight box of SAM's mask for
    that click (what point mAP measures against), or the click itself when the mask is
    empty or does not contain the click."""
    mask = sam.predict(clicks=Clicks(np.array([[x, y]], np.float32), [0], [True])).mask
    h, w = mask.shape
    inside = mask[min(int(y), h - 1), min(int(x), w - 1)]
    if not inside:
        return float(x), float(y), mask
    ys, xs = np.nonzero(mask)
    return (xs.min() + xs.max() + 1) / 2.0, (ys.min() + ys.max() + 1) / 2.0, mask
