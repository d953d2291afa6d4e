"""Offline-first MobileNetV2 weights: found in the repo or the Keras cache, else random or an error."""

from __future__ import annotations

import h5py
import keras
import numpy as np
import pytest
from keras.src.legacy.saving import legacy_h5_format

from cosmic.learning.models import build_transfer
from cosmic.learning.weights import WeightsError, mobilenet_weights_filename, resolve_mobilenet_weights


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))

    def refuse(*args, **kwargs):
        raise OSError("URL fetch failure: no network")

    monkeypatch.setattr(keras.utils, "get_file", refuse)


def test_missing_imagenet_weights_fall_back_to_random_with_a_record(no_network, tmp_path, caplog):
    choice = resolve_mobilenet_weights("imagenet", 1.0, 96, "random", repo_dir=tmp_path / "weights")
    assert choice.path is None and not choice.pretrained
    name = mobilenet_weights_filename(1.0, 96)
    assert name == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5"
    assert name in choice.reason and "download failed" in choice.reason
    assert choice.as_record()["pretrained"] is False
    assert "NO PRETRAINED WEIGHTS" in caplog.text


def test_missing_imagenet_weights_error_names_file_and_place(no_network, tmp_path):
    with pytest.raises(WeightsError) as err:
        resolve_mobilenet_weights("imagenet", 1.0, 96, "error", repo_dir=tmp_path / "weights")
    msg = str(err.value)
    assert str(tmp_path / "weights" / mobilenet_weights_filename(1.0, 96)) in msg
    assert "dvc add" in msg and "on_missing_weights=error" in msg


def test_missing_explicit_file_and_none(no_network, tmp_path):
    with pytest.raises(WeightsError, match="weights file .*nope.h5"):
        resolve_mobilenet_weights(str(tmp_path / "nope.h5"), 1.0, 96, "error")
    none = resolve_mobilenet_weights("none", 1.0, 96, "error")
    assert none.path is None and not none.pretrained


def _write_no_top_weights(path, alpha, size) -> list[np.ndarray]:
    """A stand-in for the Keras file: MobileNetV2 weights in the same legacy HDF5 layout."""
    base = keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=alpha, include_top=False,
                                          weights=None)
    for w in base.weights:
        w.assign(np.full(w.shape, 0.01, np.float32))
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, base)
    return [w.numpy() for w in base.weights]


@pytest.mark.parametrize("place", ["repo", "keras_cache"])
def test_weights_found_offline_are_loaded(no_network, tmp_path, place):
    name = mobilenet_weights_filename(0.35, 96)
    folder = tmp_path / "weights" if place == "repo" else tmp_path / "keras_home" / "models"
    expected = _write_no_top_weights(folder / name, 0.35, 96)
    choice = resolve_mobilenet_weights("imagenet", 0.35, 96, "error", repo_dir=tmp_path / "weights")
    assert choice.pretrained and choice.path == str(folder / name)
    _, base = build_transfer(32, input_size=96, alpha=0.35, weights=choice.path)
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(expected, base.weights))
