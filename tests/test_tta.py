"""Test-time augmentation uses exactly the eight symmetries of the square."""

from __future__ import annotations

import numpy as np
import pytest

from cosmic.evaluation.tta import dihedral_views, predict_proba


def _asymmetric(n: int = 1, size: int = 5) -> np.ndarray:
    return np.arange(n * size * size * 3, dtype=np.float32).reshape(n, size, size, 3)


def test_views_are_the_dihedral_group():
    x = _asymmetric()
    views = dihedral_views(x)
    assert len(views) == 8 and np.array_equal(views[0], x)
    keys = [v.tobytes() for v in views]
    assert len(set(keys)) == 8, "views must be distinct for an image without symmetry"
    # Every rotation/reflection of the square, built independently, is among the views.
    expected = set()
    for img in (x, x[:, :, ::-1]):
        for k in range(4):
            expected.add(np.ascontiguousarray(np.rot90(img, k, axes=(1, 2))).tobytes())
    assert {np.ascontiguousarray(v).tobytes() for v in views} == expected
    # Closed under composition: transforming any view gives another view.
    for v in views:
        assert {np.ascontiguousarray(w).tobytes() for w in dihedral_views(np.ascontiguousarray(v))} == expected


class _MeanModel:
    """Stand-in model: p from the top-left pixel, so every view gives a different output."""

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray:
        return (x[:, 0, 0, 0] / 1000.0)[:, None]


def test_predict_proba_averages_the_views_in_chunks():
    x = _asymmetric(5)
    model = _MeanModel()
    plain = predict_proba(model, x, tta=1, batch_size=2)
    assert np.allclose(plain, model.predict_on_batch(x)[:, 0])
    tta = predict_proba(model, x, tta=8, batch_size=2)
    per_chunk = [np.mean([model.predict_on_batch(np.ascontiguousarray(v))[:, 0]
                          for v in dihedral_views(x[i:i + 2])], axis=0) for i in range(0, 5, 2)]
    assert np.allclose(tta, np.concatenate(per_chunk))
    with pytest.raises(ValueError, match="tta is 4"):
        predict_proba(model, x, tta=4)
