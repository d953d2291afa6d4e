"""Recall balancing: the equal-recall threshold and moving it into a model's output bias."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cosmic.learning.training import equal_recall_threshold
from cosmic.learning.models import build_baseline
from cosmic.data.packing import Arrays
from cosmic.learning.training import balance_recall


def _recalls(p: np.ndarray, y: np.ndarray, t: float) -> tuple[float, float]:
    return float((p[y == 0] <= t).mean()), float((p[y == 1] > t).mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_threshold_equalises_recall_as_closely_as_the_data_allow(seed):
    rng = np.random.default_rng(seed)
    y = np.r_[np.zeros(70, int), np.ones(45, int)]
    # Ellipticals scored high too: at 0.5 far fewer of them are recalled than spirals.
    p = np.where(y == 1, rng.beta(6, 2, y.size), rng.beta(2, 2.5, y.size))
    t = equal_recall_threshold(p, y)
    elliptical, spiral = _recalls(p, y, t)
    assert t > 0.5
    assert abs(elliptical - spiral) <= 1 / 45 + 1e-12
    gaps = [abs(e - s) for e, s in (_recalls(p, y, c) for c in np.linspace(0, 1, 2001))]
    assert abs(elliptical - spiral) <= min(gaps) + 1e-12


def test_threshold_lies_between_predictions_and_is_clipped():
    y = np.array([0, 0, 1, 1])
    t = equal_recall_threshold(np.array([0.2, 0.3, 0.6, 0.9]), y)
    assert 0.3 < t < 0.6 and t not in (0.3, 0.6)
    assert equal_recall_threshold(np.array([0.98, 0.985, 0.99, 0.999]), y) == pytest.approx(0.95)
    assert equal_recall_threshold(np.array([0.001, 0.002, 0.003, 0.004]), y, clip=0.1) == pytest.approx(0.1)


def test_threshold_needs_both_classes():
    with pytest.raises(ValueError, match="both classes.*0 spiral and 3 elliptical"):
        equal_recall_threshold(np.array([0.1, 0.2, 0.7]), np.array([0, 0, 0]))


def test_balance_recall_moves_the_threshold_into_the_output_bias():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)
    labels = np.r_[np.zeros(25, np.uint8), np.ones(15, np.uint8)]
    val = Arrays(images, labels, np.arange(40))
    model = build_baseline(16, filters=(4,), dense_units=4)
    before = model.predict(images.astype(np.float32), verbose=0).ravel()
    shift = balance_recall(model, val, batch_size=8)
    after = model.predict(images.astype(np.float32), verbose=0).ravel()
    t = shift["val_threshold"]
    assert shift["bias_shift"] == pytest.approx(-np.log(t / (1 - t)), abs=1e-5)
    # The ranking is unchanged and p > 0.5 now decides exactly as p > t did.
    assert np.array_equal(np.argsort(before, kind="stable"), np.argsort(after, kind="stable"))
    assert np.array_equal(after > 0.5, before > t)
    elliptical, spiral = _recalls(after, labels, 0.5)
    assert abs(elliptical - spiral) <= 1 / 15 + 1e-12
