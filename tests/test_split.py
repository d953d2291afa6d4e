"""split: disjoint, complete, stratified, seeded; clear error when too small."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cosmic.data.splitting import SplitError, stratified_split

FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}


def _catalog(n: int, spiral_share: float, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = rng.choice(np.arange(100008, 999968), n, replace=False)
    labels = (rng.random(n) < spiral_share).astype(int)
    return pd.DataFrame({"GalaxyID": ids, "label": labels})


@pytest.mark.parametrize("n, share", [(60, 0.4), (500, 0.25), (2001, 0.6)])
def test_split_is_disjoint_complete_and_stratified(n, share):
    cat = _catalog(n, share)
    parts = stratified_split(cat, FRACTIONS, seed=1)
    ids = [set(p["GalaxyID"]) for p in parts.values()]
    assert sum(len(s) for s in ids) == n and set.union(*ids) == set(cat["GalaxyID"])
    assert all(not (a & b) for i, a in enumerate(ids) for b in ids[i + 1:])
    whole = cat["label"].mean()
    for name, part in parts.items():
        assert abs(len(part) / n - FRACTIONS[name]) < 0.02
        if n >= 500:
            assert abs(part["label"].mean() - whole) <= 0.01, name


def test_split_is_seeded():
    cat = _catalog(300, 0.4)
    a, b = stratified_split(cat, FRACTIONS, 3), stratified_split(cat, FRACTIONS, 3)
    c = stratified_split(cat, FRACTIONS, 4)
    assert all(a[k].equals(b[k]) for k in a)
    assert not a["test"].equals(c["test"])


def test_too_small_to_split_is_explained():
    with pytest.raises(SplitError, match="cannot split 6 galaxies"):
        stratified_split(_catalog(6, 0.5), FRACTIONS, 0)
