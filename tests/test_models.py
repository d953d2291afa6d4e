"""Builders: shapes, parameter counts from arguments, the KerasTuner mapping, fine-tune freezing."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import keras_tuner as kt
import numpy as np
import pytest

from cosmic import params
from cosmic.learning.models import (build_baseline, build_transfer, galaxy_scaled, resolve_scaling, tuned_baseline,
                                   unfreeze_top)
from cosmic.learning.tuning import HyperModel
from cosmic.learning.errors import TrainingError
from tests.test_params import RAW


def test_baseline_output_and_params_follow_arguments():
    small = build_baseline(32, filters=(4, 8, 8), dense_units=8)
    assert small.output_shape == (None, 1)
    assert small.input_shape == (None, 32, 32, 3)
    wider = build_baseline(32, filters=(4, 8, 16), dense_units=8)
    deeper = build_baseline(32, filters=(4, 8, 8, 8), dense_units=8)
    assert wider.count_params() > small.count_params()
    assert deeper.count_params() != small.count_params()
    assert len([la for la in deeper.layers if isinstance(la, keras.layers.Conv2D)]) == 4
    p = small.predict(np.full((2, 32, 32, 3), 255.0, np.float32), verbose=0)
    assert p.shape == (2, 1) and ((p >= 0) & (p <= 1)).all()


def test_transfer_resizes_and_scales_inside_the_model():
    model, base = build_transfer(32, input_size=48, alpha=0.35, dropout=0.1)
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 1)
    names = [la.name for la in model.layers]
    assert "resize" in names and "mobilenet_preprocess" in names
    scale = model.get_layer("mobilenet_preprocess")
    out = scale(np.array([[[[0.0, 127.5, 255.0]]]], np.float32))
    assert np.allclose(np.asarray(out), [-1, 0, 1])
    assert not base.trainable and not any(w.trainable for w in base.weights)


def test_per_image_scaling_ignores_the_brightness_and_contrast_of_a_rendering():
    # A survey's sky level, exposure and linear stretch change every pixel as a * v + b.
    model, _ = build_transfer(32, input_size=32, alpha=0.35, freeze_base=False, scaling="per_image")
    images = np.random.default_rng(0).uniform(60, 200, (4, 32, 32, 3)).astype(np.float32)
    seen = keras.Model(model.input, model.get_layer("standardize").output)  # what MobileNetV2 sees
    standardized = np.asarray(seen(images))
    assert np.allclose(standardized.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    assert np.allclose(standardized.std(axis=(1, 2, 3)), 1, atol=1e-3)
    # Equal but for the floor of one grey level under the standard deviation (0.2 % here).
    assert np.allclose(np.asarray(seen(0.4 * images + 30)), standardized, rtol=0.01, atol=0.01)
    assert not np.allclose(standardized[0], standardized[1], atol=0.1)  # it still tells images apart
    imagenet, _ = build_transfer(32, input_size=32, alpha=0.35, freeze_base=False)
    assert "standardize" not in [la.name for la in imagenet.layers]


def _blob(side: int, sigma: float, sky: float = 20.0, peak: float = 150.0) -> np.ndarray:
    """A round galaxy of width `sigma` pixels at the centre of a flat sky, as [0, 255] RGB."""
    r = np.hypot(*np.indices((side, side)) - (side - 1) / 2)
    grey = sky + peak * np.exp(-0.5 * (r / sigma) ** 2)
    return np.repeat(grey[None, :, :, None], 3, axis=-1).astype(np.float32)


def test_galaxy_scaling_keeps_a_galaxys_values_whatever_its_share_of_the_frame():
    inputs = keras.Input((32, 32, 3))
    seen = keras.Model(inputs, galaxy_scaled(inputs))
    small, large = _blob(32, 2.0), _blob(32, 5.0)  # the same galaxy at two pixel scales
    for image in (small, large):
        scaled = np.asarray(seen(image))[0]
        assert abs(scaled[15:17, 15:17].mean() - 1) < 1e-5  # its centre
        assert abs(scaled[0, :].mean()) < 0.01  # the sky
        # A survey's sky level, exposure and linear stretch (a * v + b) change nothing.
        assert np.allclose(np.asarray(seen(0.4 * image + 30))[0], scaled, atol=1e-4)
    # Standardising over all pixels instead gives the galaxy other values at the other scale.
    standardized = [(b - b.mean()) / b.std() for b in (small, large)]
    assert abs(standardized[0][0, 15, 15, 0] - standardized[1][0, 15, 15, 0]) > 1
    model, _ = build_transfer(32, input_size=32, alpha=0.35, freeze_base=False, scaling="galaxy")
    assert {"galaxy_centre", "galaxy_inner"} <= {la.name for la in model.layers}


def test_the_cnn_scales_by_its_galaxy_when_asked():
    images = np.stack([_blob(32, 2.0)[0], _blob(32, 5.0)[0]])
    unit = build_baseline(32, filters=(4, 8), dense_units=8)
    galaxy = build_baseline(32, filters=(4, 8), dense_units=8, scaling="galaxy")
    assert unit.count_params() == galaxy.count_params()
    assert "galaxy_centre" in {la.name for la in galaxy.layers} and "scale_0_1" in {la.name for la in unit.layers}
    # What the first convolution sees: a galaxy's centre at 1 over a sky at 0, whatever the stretch a * v + b.
    seen = keras.Model(galaxy.input, galaxy.get_layer("conv1").input)
    scaled = np.asarray(seen(images))
    assert np.allclose(scaled[:, 15:17, 15:17].mean(axis=(1, 2, 3)), 1, atol=1e-5)
    assert np.allclose(np.asarray(seen(0.4 * images + 30)), scaled, atol=1e-4)
    assert np.allclose(galaxy.predict(0.4 * images + 30, verbose=0), galaxy.predict(images, verbose=0), atol=1e-5)
    assert not np.allclose(unit.predict(0.4 * images + 30, verbose=0), unit.predict(images, verbose=0), atol=1e-5)


def test_an_unknown_input_scaling_is_named():
    with pytest.raises(ValueError, match=r"scaling is 'zscore'; expected one of imagenet, per_image, galaxy"):
        build_transfer(32, input_size=32, alpha=0.35, scaling="zscore")
    with pytest.raises(ValueError, match=r"scaling is 'imagenet'; expected one of unit, galaxy"):
        build_baseline(32, scaling="imagenet")


def test_auto_scaling_follows_the_weights_and_an_explicit_one_is_kept():
    assert resolve_scaling("auto", pretrained=True) == "imagenet"
    assert resolve_scaling("auto", pretrained=False) == "galaxy"
    assert resolve_scaling("imagenet", pretrained=False) == "imagenet"
    assert resolve_scaling("per_image", pretrained=True) == "per_image"


def test_unfreeze_top_keeps_batchnorm_frozen():
    _, base = build_transfer(32, input_size=32, alpha=0.35)
    n = unfreeze_top(base, 20)
    top = base.layers[-20:]
    assert n == sum(not isinstance(la, keras.layers.BatchNormalization) for la in top)
    assert all(not la.trainable for la in base.layers[:-20])
    assert all(not la.trainable for la in base.layers if isinstance(la, keras.layers.BatchNormalization))
    assert any(la.trainable for la in top)


def test_hypermodel_maps_hp_to_the_baseline_builder_and_round_trips():
    p = params.tune(RAW)
    hm = HyperModel(32, p.space, p.kernel_size, p.input_scaling)
    hp = kt.HyperParameters()
    model = hm(hp)
    assert set(hp.values) == {"filters_block1", "filters_block2", "filters_block3", "dense_units", "dropout",
                              "learning_rate"}
    assert hp.values["learning_rate"] == pytest.approx(p.space.learning_rate[0])
    restored = kt.HyperParameters.from_config(hp.get_config())
    assert restored.values == hp.values
    kwargs, lr = hm.builder_args(restored)
    record = json.loads(json.dumps({"model": kwargs, "learning_rate": lr}))  # as best_hparams.json stores it
    again, lr_again = tuned_baseline(32, record, Path("best_hparams.json"))
    assert again.count_params() == model.count_params()
    assert lr == lr_again == hp.values["learning_rate"]
    conv1 = again.get_layer("conv1")
    assert conv1.filters == hp.values["filters_block1"] and conv1.kernel_size == (p.kernel_size,) * 2
    # The scaling is the stage's, not searched: every trial and the rebuilt model use it.
    assert "scaling" not in hp.values and record["model"]["scaling"] == p.input_scaling
    assert ("galaxy_centre" in {la.name for la in again.layers}) == (p.input_scaling == "galaxy")


def test_transfer_schedule_depends_on_pretraining():
    from cosmic.learning.models import SCRATCH_BN_MOMENTUM
    from cosmic.learning.training import transfer_schedule

    _, base = build_transfer(32, input_size=32, alpha=0.35)
    head, fine = transfer_schedule(base, True, 3, 1e-3, 5, 1e-5, 10)
    assert (head.name, head.epochs, head.learning_rate, head.before) == ("head", 3, 1e-3, None)
    assert (fine.name, fine.epochs, fine.learning_rate) == ("fine_tune", 5, 1e-5)
    fine.before()
    assert sum(la.trainable for la in base.layers) > 0 and not base.layers[0].trainable

    (scratch,) = transfer_schedule(base, False, 3, 1e-3, 5, 1e-5, 10)
    assert (scratch.name, scratch.epochs, scratch.learning_rate, scratch.before) == ("scratch", 8, 1e-3, None)
    _, free = build_transfer(32, input_size=32, alpha=0.35, freeze_base=False)
    bns = [la for la in free.layers if isinstance(la, keras.layers.BatchNormalization)]
    assert free.trainable and all(la.trainable and la.momentum == SCRATCH_BN_MOMENTUM for la in bns)


def test_oracle_file_is_made_reproducible(tmp_path):
    import json

    from cosmic.learning.tuning import make_oracle_file_reproducible

    state = {"tried_so_far": ["b", "a"], "display": {"search_start": "2026-01-01T00:00:00",
                                                     "trial_start": {"0": "x"}, "trial_number": {"0": 1}},
             "end_order": ["0"]}
    (tmp_path / "oracle.json").write_text(json.dumps(state))
    make_oracle_file_reproducible(tmp_path)
    out = json.loads((tmp_path / "oracle.json").read_text())
    assert out == {"tried_so_far": ["a", "b"], "display": {"trial_number": {"0": 1}}, "end_order": ["0"]}


def test_tuned_baseline_names_a_record_from_an_older_tune():
    old = {"hyperparameters": {"dense_units": 16}, "kernel_size": 3}
    with pytest.raises(TrainingError, match=r"best_hparams.json has no 'model' builder arguments.*re-run it"):
        tuned_baseline(32, old, Path("models/tune/best_hparams.json"))
    # Written before tune.input_scaling: the model would be fed differently from how it was tuned.
    no_scaling = {"model": {"filters": [4, 8], "kernel_size": 3, "dense_units": 8, "dropout": 0.5},
                  "learning_rate": 1e-3}
    with pytest.raises(TrainingError, match=r"no 'model' builder arguments \(with its 'scaling'\).*dvc repro tune"):
        tuned_baseline(32, no_scaling, Path("models/tune/best_hparams.json"))
