"""Exploratory plots of the filtered data: vote fractions, class balance, sample images."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from cosmic.data.imageops import open_rgb
from cosmic.utils import save_figure


def plot_vote_fractions(valid: pd.DataFrame, threshold: float, path: Path) -> None:
    """Histograms of the three Q1 vote fractions with the selection threshold marked."""
    cols = [c for c in ("Class1.1", "Class1.2", "Class1.3") if c in valid]
    titles = {"Class1.1": "smooth (Class1.1)", "Class1.2": "features or disk (Class1.2)",
              "Class1.3": "star or artifact (Class1.3)"}
    fig, axes = plt.subplots(1, len(cols), figsize=(4 * len(cols), 3.2), squeeze=False)
    for ax, col in zip(axes[0], cols):
        ax.hist(valid[col], bins=np.linspace(0, 1, 41), color="steelblue")
        ax.axvline(threshold, color="crimson", ls="--", label=f"threshold {threshold:g}")
        ax.set(title=titles[col], xlabel="vote fraction", yscale="log")
    axes[0][0].set_ylabel("galaxies")
    axes[0][0].legend()
    save_figure(fig, path)


def plot_class_balance(counts: dict, path: Path) -> None:
    """Bar chart of kept galaxies per class beside the ambiguous and artifact rows left out."""
    names = [*counts["per_class"], "ambiguous", "star/artifact", "invalid"]
    values = [*counts["per_class"].values(), counts["n_ambiguous"], counts["n_artifact"], counts["n_dropped"]]
    colours = ["firebrick", "royalblue", "grey", "darkgrey", "black"]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    bars = ax.bar(names, values, color=colours[: len(names)])
    ax.bar_label(bars)
    ax.set(ylabel="galaxies", title=f"kept {counts['n_kept']} of {counts['n_rows']} "
                                    f"(threshold {counts['threshold']:g})")
    save_figure(fig, path)


def plot_samples(catalog: pd.DataFrame, class_names: tuple[str, str], n_per_class: int, seed: int,
                 path: Path) -> None:
    """A grid of randomly chosen images, one row per class."""
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(2, n_per_class, figsize=(1.6 * n_per_class, 3.6), squeeze=False)
    for row, name in enumerate(class_names):
        subset = catalog[catalog["label"] == row]
        picks = subset.iloc[rng.permutation(len(subset))[:n_per_class]]
        for col in range(n_per_class):
            ax = axes[row][col]
            ax.axis("off")
            if col < len(picks):
                rec = picks.iloc[col]
                ax.imshow(open_rgb(rec["image_path"]))
                ax.set_title(f"{rec['GalaxyID']}", fontsize=7)
        axes[row][0].text(-0.1, 0.5, name, transform=axes[row][0].transAxes, rotation=90,
                          va="center", ha="right", fontsize=10)
    save_figure(fig, path)
