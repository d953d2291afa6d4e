"""preprocess: centre crop + resize, and packed memory-mapped arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cosmic.data.imageops import Crop, crop_fraction, crop_resize, load_crop_resize
from cosmic.data.packing import StaleArraysError, load_split, load_splits, pack_split, read_meta, write_meta


def _quadrant_image(size: int = 424, inner: int = 212) -> Image.Image:
    """Black frame with a white centre square of side `inner`."""
    a = np.zeros((size, size, 3), np.uint8)
    lo = (size - inner) // 2
    a[lo:lo + inner, lo:lo + inner] = 255
    return Image.fromarray(a)


def test_crop_keeps_exactly_the_centre():
    img = _quadrant_image()
    out = crop_resize(img, Crop(crop_fraction(212)), 64)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert out.min() == 255  # the crop is the white centre only
    full = crop_resize(img, Crop(crop_fraction(424)), 64)
    assert full[0, 0, 0] == 0 and full[32, 32, 0] == 255


def test_crop_fraction_applies_to_any_size():
    small = crop_resize(_quadrant_image(212, 106), Crop(0.5), 16)
    assert small.min() == 255


def test_crop_larger_than_the_frame_names_the_param():
    with pytest.raises(ValueError, match=r"base.crop_size is 500; expected 1..424"):
        crop_fraction(500)


def test_reference_setting_full_frame_128(tmp_path):
    path = tmp_path / "g.jpg"
    _quadrant_image().save(path)
    assert load_crop_resize(path, Crop(crop_fraction(424)), 128).shape == (128, 128, 3)


def test_pack_split_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(37):
        path = tmp_path / f"{100000 + i}.png"
        Image.fromarray(rng.integers(0, 255, (424, 424, 3), dtype=np.uint8)).save(path)
        rows.append({"GalaxyID": 100000 + i, "label": i % 2, "image_path": str(path)})
    manifest = pd.DataFrame(rows)
    n, fallbacks = pack_split(manifest, tmp_path / "out" / "train", Crop(0.5), 24, chunk_size=8, workers=1)
    assert fallbacks == 0
    write_meta(tmp_path / "out", Crop(0.5), 24, ("e", "s"), {"train": n}, {})
    arrays = load_split(tmp_path / "out", "train")
    assert n == 37 and arrays.images.shape == (37, 24, 24, 3)
    assert isinstance(arrays.images, np.memmap)
    assert arrays.labels.tolist() == [i % 2 for i in range(37)]
    assert arrays.ids.tolist() == manifest["GalaxyID"].tolist()
    for i in (0, 17, 36):
        assert np.array_equal(arrays.images[i], load_crop_resize(rows[i]["image_path"], Crop(0.5), 24))
    assert read_meta(tmp_path / "out")["image_size"] == 24
    assert not list((tmp_path / "out" / "train").glob("*.partial"))


def test_load_splits_refuses_arrays_packed_with_other_settings(tmp_path):
    manifest = pd.DataFrame({"image_path": [], "label": [], "GalaxyID": []})
    for split in ("train", "val"):
        pack_split(manifest, tmp_path / split, crop=Crop(0.5), image_size=24)
    write_meta(tmp_path, Crop(0.5), 24, ("elliptical", "spiral"), {"train": 0, "val": 0}, {})
    train, val = load_splits(tmp_path, ("train", "val"), crop=Crop(0.5), image_size=24,
                             class_names=("elliptical", "spiral"))
    assert train.images.shape == (0, 24, 24, 3) and val.labels.shape == (0,)
    with pytest.raises(StaleArraysError, match=r"image_size 24 \(base.image_size gives 32\); re-run preprocess"):
        load_splits(tmp_path, ("train",), crop=Crop(0.5), image_size=32, class_names=("elliptical", "spiral"))
    with pytest.raises(StaleArraysError, match=r"crop_fraction 0.5 \(base.crop_size gives 1.0\), class_names"):
        load_splits(tmp_path, ("train",), crop=Crop(1.0), image_size=24, class_names=("smooth", "featured"))
