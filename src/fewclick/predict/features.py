"""The pretrained encoder's maps of a whole image, tile by tile, for the detectors on them.

An image larger than ``tile`` pixels is cut into the same overlapping 1024 px tiles as the
from-scratch detector's (:func:`fewclick.io.tiling.tile_grid`); each tile (or the whole
image when it is smaller) is encoded at SAM's input size, so a tile smaller than 1024 px
is enlarged by ``scale = 1024 / its longest side``. A :class:`TileFeatures` holds one
tile's maps, finest first (strides 4, 8, 16 of the encoder's input and SAM's embedding at
16, :data:`fewclick.models.backbone.PRETRAINED_MAPS`), then the tile's colour at stride 4
(:data:`~fewclick.models.backbone.COLOUR_MAP`), and its SAM embedding for masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from fewclick.io.images import to_rgb8
from fewclick.io.tiling import Tile, crop_objects, tile_grid
from fewclick.predict.encoder import INPUT_SIZE, Embedding, ImageEncoder, pixel_key
from fewclick.types import Objects, geometry_only


@dataclass(frozen=True)
class TileFeatures:
    """One tile's encoding: ``tile`` (its window of the image), ``scale`` (encoder input
    pixels per image pixel) and the :class:`Embedding` with its feature maps."""

    tile: Tile
    scale: float
    embedding: Embedding
    colour: np.ndarray  # float32[1, 3, 256, 256]: colour_map of the tile's pixels

    def maps(self, dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
        """The maps the pretrained detector reads, finest first, ``[1, C, h, w]`` each: the
        encoder's, then the colour map."""
        e = self.embedding
        arrays = [e.features[4], e.features[8], e.features[16], e.embedding, self.colour]
        return [torch.from_numpy(np.asarray(a)).to(dtype) for a in arrays]

    def valid_cells(self, stride: int = 4) -> tuple[int, int]:
        """(rows, cols) of stride-``stride`` cells that cover the tile (the rest is padding)."""
        h, w = self.embedding.input_size
        return -(-h // stride), -(-w // stride)


def image_features(
    encoder: ImageEncoder,
    image: np.ndarray,
    key: str | None = None,
    tile: int = 1024,
    overlap: int = 200,
) -> list[TileFeatures]:
    """Every tile's :class:`TileFeatures` (encoded, or from the encoder's cache under
    ``key``, or ``key``-``x0``-``y0`` for each tile of a large image; default a digest of
    the tile's pixels). An image of one tile has SAM's key: its masks and its boxes share
    one encoding."""
    image = to_rgb8(np.asarray(image), name="image")
    h, w = image.shape[:2]
    out = []
    grid = tile_grid(w, h, tile, overlap)
    for t in grid:
        pixels = image[t.y0 : t.y1, t.x0 : t.x1]
        if key is None:
            tile_key = pixel_key(pixels)
        else:
            tile_key = key if len(grid) == 1 else f"{key}-{t.x0}-{t.y0}"
        embedding = encoder.encode(pixels, key=tile_key, features=True)
        out.append(TileFeatures(t, embedding.scale, embedding, colour_map(pixels, embedding.input_size)))
    return out


def colour_map(pixels: np.ndarray, input_size: tuple[int, int], stride: int = 4) -> np.ndarray:
    """``float32[1, 3, 1024 / stride, 1024 / stride]``: RGB ``pixels`` resized as the encoder
    resizes them (to ``input_size``, padded to 1024 at the bottom and right), averaged over
    ``stride`` x ``stride`` cells, each channel standardised over the image (zero padding)."""
    h, w = input_size
    x = cv2.resize(pixels, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    x = (x - x.mean((0, 1))) / (x.std((0, 1)) + 1e-3)
    padded = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), np.float32)
    padded[:h, :w] = x
    side = INPUT_SIZE // stride
    small = cv2.resize(padded, (side, side), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(small.transpose(2, 0, 1)[None])


def training_tiles(
    encoder: ImageEncoder, image: np.ndarray, objects: Objects, key: str | None = None
) -> list[tuple[list[np.ndarray], Objects, tuple[int, int]]]:
    """Per tile of ``image``: its maps (``float16[C, h, w]``, finest first), its objects
    (cropped as the from-scratch detector's tiles are, geometry only) in encoder-input
    pixels, and the (height, width) of the input it fills: what
    :class:`fewclick.train.detect_pretrained.FeatureTile` holds."""
    out = []
    for t in image_features(encoder, image, key):
        inside = crop_objects(geometry_only(objects), t.tile, min_visible=0.7, cut_as_difficult=True)
        maps = [m[0].numpy().astype(np.float16) for m in t.maps()]
        out.append((maps, _scaled(inside, t.scale), t.embedding.input_size))
    return out


def _scaled(objects: Objects, scale: float) -> Objects:
    """``objects`` (geometry only) with every coordinate multiplied by ``scale``."""
    rboxes = None
    if objects.rboxes is not None:
        rboxes = objects.rboxes.copy()
        rboxes[:, :4] *= scale
    return Objects(
        objects.labels,
        objects.boxes * scale,
        rboxes=rboxes,
        points=None if objects.points is None else objects.points * scale,
        ignore=objects.ignore,
        difficult=objects.difficult,
    )
