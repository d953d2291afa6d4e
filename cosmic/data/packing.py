"""Pack the images of a split into memory-mappable .npy arrays after crop + resize."""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from cosmic.data.imageops import Crop, cut_resize, open_rgb
from cosmic.utils import StageError, atomic_path, follow_parent, progress, reserve

IMAGES, LABELS, IDS = "images.npy", "labels.npy", "ids.npy"
META = "meta.json"


class StaleArraysError(StageError, ValueError):
    """The packed arrays were made with other preprocessing settings than the stage expects."""


class Arrays(NamedTuple):
    """One split: images (n, s, s, 3) uint8 (memory-mapped), labels (n,) uint8, GalaxyIDs (n,) int64."""

    images: np.ndarray
    labels: np.ndarray
    ids: np.ndarray


def _load(path: str, crop: Crop, size: int) -> tuple[np.ndarray, bool]:
    """Decode, crop and resize one image; also whether the crop was measured on it (see `Crop.side`)."""
    img = open_rgb(path)
    side, measured = crop.side(img)
    return cut_resize(img, side, size), measured


def pack_split(manifest: pd.DataFrame, out_dir: Path, crop: Crop, image_size: int,
               chunk_size: int = 256, workers: int = 2) -> tuple[int, int]:
    """Decode, crop and resize a split's images into out_dir/{images,labels,ids}.npy.

    Images are written chunk by chunk into a memory-mapped file, so memory stays bounded
    by `chunk_size` images whatever the split size; its space is reserved first. Files are
    written under a temporary name and renamed at the end, so an interrupted run leaves no
    complete-looking array.

    Returns:
        (images written, images an adaptive crop found no central source in and cut with the fixed crop).

    Raises:
        OutputError: naming the array and the space it needs when the disk is full or read-only.
    """
    out_dir = Path(out_dir)
    n = len(manifest)
    load = partial(_load, crop=crop, size=image_size)
    fallbacks = 0
    paths = manifest["image_path"].tolist()
    shape = (n, image_size, image_size, 3)
    with atomic_path(out_dir / IMAGES, int(np.prod(shape))) as tmp:
        images = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        reserve(tmp, images.offset + images.nbytes)
        pool = (ProcessPoolExecutor(workers, initializer=follow_parent, initargs=(os.getpid(),))
                if workers > 1 and n > chunk_size else None)
        try:
            for start in progress(range(0, n, chunk_size), desc=f"packing {out_dir.name}", unit="chunk"):
                batch = paths[start:start + chunk_size]
                decoded = list(pool.map(load, batch, chunksize=16) if pool else map(load, batch))
                images[start:start + len(batch)] = np.stack([pixels for pixels, _ in decoded])
                fallbacks += sum(not measured for _, measured in decoded) if crop.factor is not None else 0
        finally:
            if pool:
                pool.shutdown(cancel_futures=True)
        images.flush()
        del images
        _save(out_dir / LABELS, manifest["label"].to_numpy(np.uint8))
        _save(out_dir / IDS, manifest["GalaxyID"].to_numpy(np.int64))
    return n, fallbacks


def _save(path: Path, array: np.ndarray) -> None:
    # A file object: np.save would append .npy to a name.
    with atomic_path(path, array.nbytes) as tmp, tmp.open("wb") as f:
        np.save(f, array)


# The param each recorded setting comes from, for the stale-arrays message.
_PARAM_OF = {"crop_fraction": "base.crop_size"}


def crop_record(crop: Crop) -> dict:
    """How the arrays were cropped, as `write_meta` records it and `load_splits` checks it."""
    return {"crop": crop.mode, "crop_fraction": crop.fraction,
            "crop_factor": crop.factor}


def write_meta(out_dir: Path, crop: Crop, image_size: int, class_names: tuple[str, str],
               counts: dict[str, int], fallbacks: dict[str, int]) -> None:
    """Record the preprocessing the arrays were made with, and per split how often an adaptive crop fell back."""
    adaptive = {} if crop.factor is None else {"crop_fallbacks": fallbacks}
    meta = {**crop_record(crop), "image_size": image_size, "class_names": list(class_names),
            "counts": counts, **adaptive}
    text = json.dumps(meta, indent=2) + "\n"
    with atomic_path(Path(out_dir) / META) as tmp:
        tmp.write_text(text)


def read_meta(processed_dir: Path) -> dict:
    """Read the preprocessing record written by `write_meta`."""
    path = Path(processed_dir) / META
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the preprocess stage first (dvc repro preprocess)")
    return json.loads(path.read_text())


def load_split(processed_dir: Path, split: str) -> Arrays:
    """Open a packed split; images are memory-mapped, not read into memory.

    Raises:
        FileNotFoundError: naming the missing array file.
    """
    d = Path(processed_dir) / split
    for name in (IMAGES, LABELS, IDS):
        if not (d / name).is_file():
            raise FileNotFoundError(f"{d / name} not found: run the preprocess stage first")
    return Arrays(np.load(d / IMAGES, mmap_mode="r"), np.load(d / LABELS), np.load(d / IDS))


def load_splits(processed_dir: Path, splits: tuple[str, ...], *, crop: Crop, image_size: int,
                class_names: tuple[str, str]) -> tuple[Arrays, ...]:
    """Open packed splits after checking they were made with the settings the stage runs with.

    Every stage that reads data/processed goes through here, so a stale folder (params changed,
    preprocess not re-run) is one error with one hint wherever it is found.

    Raises:
        FileNotFoundError: if the folder or an array is missing.
        StaleArraysError: naming each setting that differs from the record of `write_meta`.
    """
    meta = read_meta(processed_dir)
    expected = {**crop_record(crop), "image_size": image_size, "class_names": list(class_names)}
    stale = [f"{key} {meta.get(key)!r} ({_PARAM_OF.get(key, 'base.' + key)} gives {value!r})"
             for key, value in expected.items()
             if meta.get(key) != value]
    if stale:
        raise StaleArraysError(f"{processed_dir} was packed with {', '.join(stale)}; re-run preprocess "
                               "(dvc repro preprocess)")
    return tuple(load_split(processed_dir, split) for split in splits)
