"""Image decoding and the centre crop + resize shared by preprocess and predict."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from cosmic.kaggle_format import IMAGE_SIZE


class ImageError(ValueError):
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


def crop_resize(img: Image.Image, fraction: float, size: int) -> np.ndarray:
    """Centre-crop `fraction` of the frame and resize it to size x size.

    Resampling is antialiased bilinear, so downscaling averages pixels rather than aliasing.

    Returns:
        uint8 array of shape (size, size, 3).
    """
    w, h = img.size
    side = max(1, round(fraction * min(w, h)))
    left, top = (w - side) // 2, (h - side) // 2
    # Crop first so the resampling filter never reaches pixels outside the crop.
    out = img.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(out, dtype=np.uint8)


def load_crop_resize(path: Path | str, fraction: float, size: int, allow_convert: bool = False) -> np.ndarray:
    """Decode an image file and return its centre crop resized to size x size x 3 (uint8)."""
    return crop_resize(open_rgb(path, allow_convert), fraction, size)
