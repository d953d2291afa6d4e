"""Test-time augmentation over the eight symmetries of the square (dihedral group D4)."""

from __future__ import annotations

import numpy as np


def dihedral_views(images: np.ndarray) -> list[np.ndarray]:
    """The eight rotations/reflections of a (n, h, w, c) batch of square images.

    Views 0-3 are rotations by 0/90/180/270 degrees; views 4-7 are the same after a
    left-right flip. View 0 is the batch itself.
    """
    views = [np.rot90(images, k, axes=(1, 2)) for k in range(4)]
    flipped = images[:, :, ::-1]
    return views + [np.rot90(flipped, k, axes=(1, 2)) for k in range(4)]


def predict_proba(model, images: np.ndarray, tta: int = 1, batch_size: int = 256) -> np.ndarray:
    """p(spiral) for a batch of [0, 255] images, averaged over `tta` dihedral views (1 or 8).

    Reads `images` (which may be a memory map) in chunks of `batch_size`.

    Raises:
        ValueError: if tta is not 1 or 8.
    """
    if tta not in (1, 8):
        raise ValueError(f"tta is {tta!r}; expected 1 (off) or 8 (all rotations/flips)")
    out = np.empty(len(images), np.float64)
    for start in range(0, len(images), batch_size):
        chunk = np.asarray(images[start:start + batch_size], dtype=np.float32)
        views = dihedral_views(chunk)[:tta]
        stacked = np.concatenate([np.ascontiguousarray(v) for v in views])
        p = model.predict_on_batch(stacked).reshape(tta, len(chunk))
        out[start:start + len(chunk)] = p.mean(axis=0)
    return out
