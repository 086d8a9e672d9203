"""Safe image loading: every file becomes ``uint8[H, W, 3]`` RGB, or fails naming itself.

Pillow decodes; we check the pixel count from the header before decoding (against
decompression bombs) and turn Pillow's and numpy's errors into :class:`ImageError`
that names the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

#: Default pixel limit: 400 megapixels (a 20,000 x 20,000 aerial scene). Override per call
#: or with the environment variable FEWCLICK_MAX_PIXELS.
DEFAULT_MAX_PIXELS = 400_000_000

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class ImageError(ValueError):
    """An image file that cannot be read: corrupt, truncated, unsupported or too large."""


def max_pixels_default() -> int:
    value = os.environ.get("FEWCLICK_MAX_PIXELS")
    if value is None:
        return DEFAULT_MAX_PIXELS
    try:
        return int(value)
    except ValueError:
        raise ImageError(f"FEWCLICK_MAX_PIXELS must be an integer, got {value!r}") from None


def _pillow_limit() -> int:
    try:
        return max(DEFAULT_MAX_PIXELS, max_pixels_default())
    except ImageError:  # said where the limit is used
        return DEFAULT_MAX_PIXELS


# We enforce our own limit, with a message naming the file, before any decoding; Pillow's
# own decompression-bomb check stays on for every other reader in the process (it warns
# over this many pixels and refuses over twice as many).
Image.MAX_IMAGE_PIXELS = _pillow_limit()


def image_size(path: str | Path, max_pixels: int | None = None) -> tuple[int, int]:
    """``(width, height)`` from the file header, without decoding the pixels."""
    with _open(path, max_pixels) as img:
        return img.size


def load_array(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """The pixels as stored: ``uint8``/``uint16``/``int32``/``float32`` of shape (H, W) or
    (H, W, C). Palette images give their palette indices (label maps stay labels)."""
    path = Path(path)
    with _open(path, max_pixels) as img:
        try:
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
                return np.asarray(img, dtype=np.uint16).copy()
            return np.array(img)
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageError(f"{path}: cannot decode image ({exc})") from None


def load_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """Load any supported image as ``uint8[H, W, 3]`` RGB.

    Grayscale is repeated to three channels, palette images are expanded through their
    palette, alpha is dropped, and 16-bit or float images are stretched linearly from
    their own min..max to 0..255 (microscopy rarely uses the full 16-bit range).
    """
    path = Path(path)
    with _open(path, max_pixels) as img:
        try:
            img.load()
            if img.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "1"):
                img = img.convert("RGBA" if "transparency" in img.info else "RGB")
            arr = np.asarray(img)
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageError(f"{path}: cannot decode image ({exc})") from None
    return to_rgb8(arr, name=str(path))


def to_rgb8(arr: np.ndarray, name: str = "image") -> np.ndarray:
    """Any decoded pixel array -> ``uint8[H, W, 3]``."""
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] in (2, 4):  # LA / RGBA: drop alpha
        arr = arr[..., : arr.shape[2] - 1]
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ImageError(f"{name}: expected a grayscale or RGB image, got pixels of shape {arr.shape}")
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    values = arr.astype(np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(arr.shape, np.uint8)
    lo, hi = values[finite].min(), values[finite].max()
    scaled = np.zeros_like(values) if hi <= lo else (values - lo) / (hi - lo) * 255.0
    scaled[~finite] = 0
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


def save_image(path: str | Path, image: np.ndarray) -> None:
    """Write ``uint8[H, W, 3]`` (or ``[H, W]``) to a file whose suffix names the format."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(image)).save(path)


def _open(path: str | Path, max_pixels: int | None) -> Image.Image:
    path = Path(path)
    limit = max_pixels_default() if max_pixels is None else max_pixels
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    try:
        img = Image.open(path)
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not a readable image (unknown or corrupt format)") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path}: {exc}") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot open image ({exc})") from None
    w, h = img.size
    if w <= 0 or h <= 0:
        img.close()
        raise ImageError(f"{path}: image has no pixels ({w} x {h})")
    if w * h > limit:
        img.close()
        raise ImageError(
            f"{path}: {w} x {h} = {w * h:,} pixels exceeds the limit of {limit:,} "
            "(raise max_pixels or FEWCLICK_MAX_PIXELS if the image is trusted)"
        )
    return img
