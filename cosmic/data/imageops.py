"""Image decoding and the crop + resize shared by preprocess, predict and score."""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from cosmic.data.kaggle_format import IMAGE_SIZE
from cosmic.utils import StageError

if TYPE_CHECKING:
    from cosmic.params import Base


class ImageError(StageError, ValueError):
    """An image file cannot be used: missing, truncated, not decodable or not RGB."""


class NotRGBError(ImageError):
    """The image decodes but is not 8-bit RGB (and conversion was not allowed)."""


class ImageTooLargeError(ImageError):
    """The image declares more pixels than Pillow's decompression-bomb guard allows."""


def crop_fraction(crop_size: int, original_size: int = IMAGE_SIZE) -> float:
    """Fraction of the frame side kept by a centre crop of `crop_size` original pixels.

    Raises:
        ValueError: naming `base.crop_size` when the crop is larger than the frame.
    """
    if not 0 < crop_size <= original_size:
        raise ValueError(f"base.crop_size is {crop_size}; expected 1..{original_size}, the side of the "
                         f"{original_size}x{original_size}-px images it is cut from")
    return crop_size / original_size


def open_rgb(path: Path | str, allow_convert: bool = False) -> Image.Image:
    """Open and fully decode an image as RGB.

    Args:
        path: image file.
        allow_convert: convert grayscale/RGBA/palette/CMYK/16-bit images to 8-bit RGB instead of
            rejecting them (`open_converted` also says what was converted).

    Raises:
        ImageError: naming the file, if it is missing or cannot be decoded; NotRGBError if it
            is not RGB and allow_convert is False; ImageTooLargeError for a decompression bomb.
    """
    return _open(path, allow_convert)[0]


def open_converted(path: Path | str) -> tuple[Image.Image, str]:
    """Open and decode an image as 8-bit RGB, converting other modes.

    Returns:
        (image, note): note is "" for an RGB file, else says which mode was converted.

    Raises:
        ImageError: as `open_rgb`.
    """
    return _open(path, True)


# Integer modes wider than 8 bits: Pillow's convert("RGB") clips them at 255 instead of scaling.
_WIDE_INT_MAX = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 65535}


def _open(path: Path | str, allow_convert: bool) -> tuple[Image.Image, str]:
    path = Path(path)
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x its pixel limit; decoding such a file costs GBs.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()
                if img.mode == "RGB":
                    return img, ""
                if not allow_convert:
                    raise NotRGBError(f"{path}: image mode is {img.mode}, expected RGB (3-channel colour)")
                if img.mode in _WIDE_INT_MAX:
                    return _scale_to_rgb(img, path), f"{path}: converted {img.mode} (16-bit grayscale) to 8-bit RGB"
                return img.convert("RGB"), f"{path}: converted image mode {img.mode} to RGB"
    except FileNotFoundError:
        raise ImageError(f"{path}: image file not found") from None
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageTooLargeError(f"{path}: too many pixels for an image, refused as a possible decompression "
                                 f"bomb ({e})") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{path}: cannot decode image ({e})") from None


def _scale_to_rgb(img: Image.Image, path: Path) -> Image.Image:
    """Scale a 16-bit grayscale image to 8 bits (65535 -> 255) and replicate it into RGB."""
    a = np.asarray(img).astype(np.int64)
    if a.size and (a.min() < 0 or a.max() > _WIDE_INT_MAX[img.mode]):
        raise NotRGBError(f"{path}: image mode {img.mode} has values in [{a.min()}, {a.max()}]; expected a "
                          "16-bit range [0, 65535]")
    gray = ((a * 255 + 32767) // 65535).astype(np.uint8)
    return Image.fromarray(gray).convert("RGB")


# The Petrosian radius is measured on a copy about this many pixels wide: a 424-px frame is
# reduced 4x, which keeps the radius to a few percent and costs ~1 ms.
_MEASURE_SIDE = 106
# Outer band of the frame taken as sky, as a fraction of its side.
_SKY_BAND = 0.08
# SDSS's Petrosian ratio: the radius where the surface brightness falls to 0.2 of the mean inside it.
_PETROSIAN_ETA = 0.2
# A central source must be this many sky standard deviations above the sky.
_DETECTION_SIGMA = 3.0


@dataclass(frozen=True)
class Crop:
    """How a frame is cut before it is resized: a fixed centre fraction, or a multiple of the galaxy's size.

    Attributes:
        fraction: side of the fixed centre crop as a fraction of the frame side; the adaptive crop
            falls back to it when no central source is found.
        factor: None for the fixed crop; else the adaptive crop's side in units of the central
            galaxy's Petrosian radius, so the galaxy fills the same share of the model's input
            whatever the cutout's pixel scale.
    """

    fraction: float
    factor: float | None = None

    @property
    def mode(self) -> str:
        """"adaptive" or "fixed", as `base.crop` and the records name it."""
        return "fixed" if self.factor is None else "adaptive"

    def side(self, img: Image.Image) -> tuple[int, bool]:
        """Side in pixels of the square cut from the frame centre, and whether it was measured.

        Returns:
            (side, measured): measured is False for the fixed crop and for an adaptive crop that
            fell back to the fixed one because no central source was found.
        """
        w, h = img.size
        fixed = max(1, round(self.fraction * min(w, h)))
        if self.factor is None:
            return fixed, False
        radius = petrosian_radius(img)
        if radius is None:
            return fixed, False
        return int(min(min(w, h), max(1, round(self.factor * radius)))), True


def crop_of(base: Base) -> Crop:
    """The `Crop` that `base.crop`, `base.crop_size` and `base.crop_factor` describe.

    Raises:
        ValueError: naming `base.crop_size` when the crop is larger than the frame.
    """
    return Crop(crop_fraction(base.crop_size), base.crop_factor if base.crop == "adaptive" else None)


@functools.lru_cache(maxsize=8)
def _rings(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per frame shape: pixel indices inside the inscribed circle, their ring, ring sizes and starts."""
    yy, xx = np.indices((h, w))
    ring = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2).astype(np.int64).ravel()
    inside = np.flatnonzero(ring < min(h, w) // 2)
    counts = np.bincount(ring[inside])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return inside, ring[inside], counts, starts


def petrosian_radius(img: Image.Image) -> float | None:
    """Petrosian radius of the source at the frame centre, in the image's pixels; None if there is none.

    The frame is reduced to grey at about `_MEASURE_SIDE` pixels and the sky (median of the outer
    band) subtracted. The profile is the median of each one-pixel ring about the centre, so stars and
    neighbours that cover less than half a ring do not count. The radius is where the ring's
    brightness falls to `_PETROSIAN_ETA` of the mean inside it (SDSS's definition): a ratio of two
    brightnesses, so it does not move with the sky depth or the exposure, only with the galaxy's size.
    Deterministic: no randomness, no fitted iteration.
    """
    w, h = img.size
    reduce = max(1, min(w, h) // _MEASURE_SIDE)
    # Reducing before the grey conversion converts 16 times fewer pixels.
    grey = np.asarray((img.reduce(reduce) if reduce > 1 else img).convert("L"), dtype=np.float64)
    gh, gw = grey.shape
    if min(gh, gw) < 8:
        return None
    b = max(1, round(_SKY_BAND * min(gh, gw)))
    band = np.concatenate([grey[:b].ravel(), grey[-b:].ravel(), grey[b:-b, :b].ravel(), grey[b:-b, -b:].ravel()])
    # Median and interquartile sigma from one partial sort.
    q1, sky, q3 = np.partition(band, [band.size // 4, band.size // 2, 3 * band.size // 4])[
        [band.size // 4, band.size // 2, 3 * band.size // 4]]
    sigma = max((q3 - q1) / 1.349, 0.5)
    inside, ring, counts, starts = _rings(gh, gw)
    # Sorting value + ring * offset orders by ring, then by value: one sort gives every ring's median.
    offset = 1024.0
    ordered = np.sort(grey.ravel()[inside] - sky + ring * offset)
    profile = ordered[starts + counts // 2] - np.arange(counts.size) * offset
    if profile[:3].mean() < _DETECTION_SIGMA * sigma:
        return None
    mean_inside = np.cumsum(profile * counts) / np.cumsum(counts)
    ratio = profile / np.maximum(mean_inside, 1e-9)
    below = np.flatnonzero(ratio[1:] < _PETROSIAN_ETA)
    if below.size == 0:
        return float(counts.size * reduce)
    j = int(below[0]) + 1
    # Linear interpolation of the ratio between the centres (k + 0.5) of rings j - 1 and j.
    step = (ratio[j - 1] - _PETROSIAN_ETA) / (ratio[j - 1] - ratio[j])
    return float((j - 0.5 + step) * reduce)


def cut_resize(img: Image.Image, side: int, size: int) -> np.ndarray:
    """Cut the centred square of `side` pixels and resize it to size x size.

    Resampling is antialiased bilinear, so downscaling averages pixels rather than aliasing.

    Returns:
        uint8 array of shape (size, size, 3).
    """
    w, h = img.size
    left, top = (w - side) // 2, (h - side) // 2
    # Crop first so the resampling filter never reaches pixels outside the crop.
    out = img.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(out, dtype=np.uint8)


def crop_resize(img: Image.Image, crop: Crop, size: int) -> np.ndarray:
    """Crop the frame as `crop` says and resize the square to size x size (uint8, (size, size, 3))."""
    return cut_resize(img, crop.side(img)[0], size)


def load_crop_resize(path: Path | str, crop: Crop, size: int, allow_convert: bool = False) -> np.ndarray:
    """Decode an image file and return its crop resized to size x size x 3 (uint8)."""
    return crop_resize(open_rgb(path, allow_convert), crop, size)
