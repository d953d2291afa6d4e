"""Stratified, seeded train/val/test split of the filtered catalogue."""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import train_test_split

from cosmic.utils import StageError


class SplitError(StageError, ValueError):
    """The catalogue is too small or too unbalanced to split as asked."""


def stratified_split(catalog: pd.DataFrame, fractions: dict[str, float], seed: int) -> dict[str, pd.DataFrame]:
    """Split the catalogue into disjoint, label-stratified parts.

    Args:
        catalog: rows with a `label` column.
        fractions: {"train": f, "val": f, "test": f} summing to 1.
        seed: random_state of both underlying splits.

    Returns:
        {"train", "val", "test"} -> DataFrame, each sorted by GalaxyID.

    Raises:
        SplitError: if a part would be empty or could not hold both classes.
    """
    n = len(catalog)
    counts = catalog["label"].value_counts()
    n_test, n_val = round(n * fractions["test"]), round(n * fractions["val"])
    if min(n_test, n_val, n - n_test - n_val) < counts.size or counts.min() < 3:
        raise SplitError(
            f"cannot split {n} galaxies (per class {counts.to_dict()}) into train/val/test = "
            f"{fractions['train']}/{fractions['val']}/{fractions['test']} with both classes in every part; "
            "use more images or other split fractions"
        )
    rest, test = train_test_split(catalog, test_size=n_test, stratify=catalog["label"], random_state=seed)
    train, val = train_test_split(rest, test_size=n_val, stratify=rest["label"], random_state=seed + 1)
    return {name: part.sort_values("GalaxyID").reset_index(drop=True)
            for name, part in (("train", train), ("val", val), ("test", test))}


def split_summary(parts: dict[str, pd.DataFrame], class_names: tuple[str, str]) -> dict:
    """Counts and class shares per split, for metrics/split.json."""
    out = {}
    for name, part in parts.items():
        per_class = {c: int((part["label"] == i).sum()) for i, c in enumerate(class_names)}
        out[name] = {"n": int(len(part)), "per_class": per_class,
                     "spiral_fraction": round(per_class[class_names[1]] / max(len(part), 1), 6)}
    return out
