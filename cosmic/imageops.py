"""Image decoding and the centre crop + resize shared by preprocess and predict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from cosmic.kaggle_format import IMAGE_SIZE


class ImageError(ValueError):
    """An image file cannot be used: missing, truncated, not decodable or not RGB."""


def crop_fraction(crop_size: int, original_size: int = IMAGE_SIZE) -> float:
    """Fraction of the frame side kept by a centre crop of `crop_size` original pixels."""
    return crop_size / original_size


def open_rgb(path: Path | str, allow_convert: bool = False) -> Image.Image:
    """Open and fully decode an image as RGB.

    Args:
        path: image file.
        allow_convert: convert grayscale/RGBA/palette images to RGB instead of rejecting them.

    Raises:
        ImageError: naming the file, if it is missing, cannot be decoded or is not RGB.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode != "RGB":
                if not allow_convert:
                    raise ImageError(f"{path}: image mode is {img.mode}, expected RGB (3-channel colour)")
                img = img.convert("RGB")
            return img
    except FileNotFoundError:
        raise ImageError(f"{path}: image file not found") from None
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{path}: cannot decode image ({e})") from None


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
