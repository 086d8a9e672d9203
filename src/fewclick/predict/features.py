"""The pretrained encoder's maps of a whole image, tile by tile, for the detectors on them.

An image larger than ``tile`` pixels is cut into the same overlapping 1024 px tiles as the
from-scratch detector's (:func:`fewclick.io.tiling.tile_grid`); each tile (or the whole
image when it is smaller) is encoded at SAM's input size, so a tile smaller than 1024 px
is enlarged by ``scale = 1024 / its longest side``. A :class:`TileFeatures` holds one
tile's maps, finest first (strides 4, 8, 16 of the encoder's input and SAM's embedding at
16, :data:`fewclick.models.backbone.PRETRAINED_MAPS`), and its SAM embedding for masks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from fewclick.io.images import to_rgb8
from fewclick.io.tiling import Tile, crop_objects, tile_grid
from fewclick.predict.encoder import Embedding, ImageEncoder, pixel_key
from fewclick.types import Objects, geometry_only, scaled_geometry


@dataclass(frozen=True)
class TileFeatures:
    """One tile's encoding: ``tile`` (its window of the image), ``scale`` (encoder input
    pixels per image pixel) and the :class:`Embedding` with its feature maps."""

    tile: Tile
    scale: float
    embedding: Embedding

    def maps(self, dtype: torch.dtype = torch.float32, skip: int = 0) -> list[torch.Tensor]:
        """The maps the pretrained detector reads, finest first, ``[1, C, h, w]`` each; the
        ``skip`` finest left out (never converted)."""
        e = self.embedding
        arrays = [e.features[4], e.features[8], e.features[16], e.embedding][skip:]
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
    return list(each_tile_features(encoder, image, key, tile, overlap))


def each_tile_features(
    encoder: ImageEncoder,
    image: np.ndarray,
    key: str | None = None,
    tile: int = 1024,
    overlap: int = 200,
) -> Iterator[TileFeatures]:
    """:func:`image_features` one tile at a time, each encoded as it is asked for: a caller
    that works tile by tile can say how far it has got."""
    image = to_rgb8(np.asarray(image), name="image")
    h, w = image.shape[:2]
    grid = tile_grid(w, h, tile, overlap)
    for t in grid:
        yield _encoded(encoder, image, key, t, len(grid))


def nearest_tile_features(
    encoder: ImageEncoder,
    image: np.ndarray,
    x: float,
    y: float,
    key: str | None = None,
    tile: int = 1024,
    overlap: int = 200,
) -> TileFeatures | None:
    """The :class:`TileFeatures` of the one tile (as :func:`image_features` cuts and keys
    them) that holds (``x``, ``y``) with its centre nearest, encoded alone; None when no
    tile holds it."""
    image = to_rgb8(np.asarray(image), name="image")
    h, w = image.shape[:2]
    grid = tile_grid(w, h, tile, overlap)
    inside = [t for t in grid if t.x0 <= x < t.x1 and t.y0 <= y < t.y1]
    if not inside:
        return None
    best = min(inside, key=lambda t: abs(x - (t.x0 + t.x1) / 2) + abs(y - (t.y0 + t.y1) / 2))
    return _encoded(encoder, image, key, best, len(grid))


def _encoded(encoder: ImageEncoder, image: np.ndarray, key: str | None, t: Tile, tiles: int) -> TileFeatures:
    """Tile ``t`` of ``image`` (one of ``tiles``) encoded, under its key."""
    pixels = image[t.y0 : t.y1, t.x0 : t.x1]
    if key is None:
        tile_key = pixel_key(pixels)
    else:
        tile_key = key if tiles == 1 else f"{key}-{t.x0}-{t.y0}"
    embedding = encoder.encode(pixels, key=tile_key, features=True)
    return TileFeatures(t, embedding.scale, embedding)


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
        out.append((maps, scaled_geometry(inside, t.scale), t.embedding.input_size))
    return out
