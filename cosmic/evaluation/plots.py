"""Matplotlib figures for people reading the repository (DVC renders its own from the JSON/CSV)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cosmic.registry import MODELS, THRESHOLD  # noqa: E402
from cosmic.utils import save_figure  # noqa: E402

# One colour per model in every chart, in the order the pipeline trains them (Vega's tableau10
# blue, orange, green). The templates in .dvc/plots/ list the same models and colours in the
# same order (tests/test_plots_offline.py checks that they agree).
MODEL_COLOURS = {m.name: m.colour for m in MODELS}


def plot_trials(table: pd.DataFrame, objective: str, path: Path) -> None:
    """Objective per tuner trial as points (trials are independent), the best one highlighted."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    scores = table["score"].astype(float)
    trials = table["trial"].astype(str)
    ax.plot(trials, scores, "o", color="steelblue", label="trial")
    title = "KerasTuner trials"
    if scores.notna().any():
        best = scores.idxmax() if not objective.endswith("loss") else scores.idxmin()
        ax.plot([trials[best]], [scores[best]], "o", ms=9, color="darkorange", label="best")
        title += f" (best: trial {trials[best]}, {objective} {scores[best]:.4f})"
        # The spread between trials is what matters, so the axis is fitted to the scores, not to 0.
        low, high = scores.min(), scores.max()
        pad = max((high - low) * 0.15, 1e-3)
        ax.set_ylim(low - pad, high + pad)
    ax.set(xlabel="trial", ylabel=objective)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="best", framealpha=0.6)
    ax.tick_params(axis="x", rotation=90)
    save_figure(fig, path)


def read_live_history(live_dir: Path) -> pd.DataFrame:
    """Per-epoch metrics of a training stage from its DVCLive logs, one column per metric."""
    series = []
    for tsv in sorted(Path(live_dir, "plots", "metrics").rglob("*.tsv")):
        frame = pd.read_csv(tsv, sep="\t")
        name = f"{tsv.parent.name}/{tsv.stem}"
        series.append(frame.set_index("step")[frame.columns[-1]].rename(name))
    return pd.concat(series, axis=1) if series else pd.DataFrame()


def plot_histories(histories: dict[str, pd.DataFrame], path: Path,
                   kept_epochs: dict[str, int] | None = None) -> None:
    """Loss and accuracy per epoch of every model, train solid and validation dashed.

    Args:
        histories: model name -> `read_live_history` frame.
        path: PNG to write.
        kept_epochs: model name -> 1-based epoch whose weights the saved model has (early
            stopping restores the best validation loss), marked with a ring on the val curves.
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    kept_epochs = kept_epochs or {}
    for name, hist in histories.items():
        colour = MODEL_COLOURS[name]
        for ax, metric in zip(axes, ("loss", "accuracy")):
            for split, style in (("train", "-"), ("eval", "--")):
                col = f"{split}/{metric}"
                if col in hist:
                    ax.plot(hist.index + 1, hist[col], style, color=colour,
                            label=f"{name} {'val' if split == 'eval' else 'train'}")
            kept, col = kept_epochs.get(name), f"eval/{metric}"
            if kept is not None and col in hist and kept - 1 in hist.index:
                ax.plot([kept], [hist[col][kept - 1]], "o", ms=8, mfc="none", mec=colour,
                        label=f"{name} kept (epoch {kept})")
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.set(xlabel="epoch", ylabel=metric, title=f"training {metric}")
    axes[1].legend(fontsize=7)
    save_figure(fig, path)


def plot_confusions(matrices: dict[str, dict], class_names: tuple[str, str], path: Path) -> None:
    """Confusion matrix per model (rows actual, columns predicted)."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(3.4 * len(matrices), 3.2), squeeze=False)
    for ax, (name, cm) in zip(axes[0], matrices.items()):
        m = np.array([[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]])
        ax.imshow(m, cmap="Blues")
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, str(v), ha="center", va="center", color="white" if v > m.max() / 2 else "black")
        ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=class_names, yticklabels=class_names,
               xlabel="predicted", ylabel="actual", title=name)
    save_figure(fig, path)


def plot_roc(curves: dict[str, list[dict]], aucs: dict[str, float | None], path: Path) -> None:
    """ROC curves of every model on one plot."""
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    for name, pts in curves.items():
        if pts:
            auc = aucs.get(name)
            ax.plot([q["fpr"] for q in pts], [q["tpr"] for q in pts], color=MODEL_COLOURS[name],
                    label=f"{name} (AUC {auc:.3f})" if auc is not None else name)
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test)")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def plot_calibration(curves: dict[str, dict], path: Path) -> None:
    """Reliability diagram with 95 % Wilson intervals per bin, and the number of images per bin below."""
    fig, (ax, ax_n) = plt.subplots(2, 1, figsize=(4.8, 5.6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfect")
    width = 0.8 / max(len(curves), 1)
    for k, (name, c) in enumerate(curves.items()):
        n = np.asarray(c["count"], float)
        frac = np.asarray(c["fraction_positive"], float)
        low, high = _wilson(frac, n)
        ax.errorbar(c["mean_predicted"], frac, yerr=[frac - low, high - frac], fmt="o-", ms=3, capsize=2,
                    lw=1, color=MODEL_COLOURS[name], label=name)
        centres = np.asarray(c["bin_centre"], float)
        bin_width = np.asarray(c["bin_upper"], float) - np.asarray(c["bin_lower"], float)
        ax_n.bar(centres + (k - (len(curves) - 1) / 2) * width * bin_width, n, width=width * bin_width,
                 color=MODEL_COLOURS[name])
    ax.set(ylabel="fraction spiral (95 % CI)", title="calibration (test)", xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=8)
    ax_n.set(xlabel="mean predicted p(spiral)", ylabel="images", yscale="log")
    save_figure(fig, path)


def _wilson(fraction: np.ndarray, n: np.ndarray, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of binomial fractions (stays inside [0, 1], sensible for small n)."""
    centre = (fraction + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(fraction * (1 - fraction) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def plot_examples(images: np.ndarray, labels: np.ndarray, p: np.ndarray, ids: np.ndarray,
                  class_names: tuple[str, str], n: int, title: str, path: Path) -> None:
    """Most confident right and most confident wrong test predictions, with true/predicted/p."""
    pred = (p > THRESHOLD).astype(int)
    confidence = np.abs(p - THRESHOLD)
    right, wrong = np.flatnonzero(pred == labels), np.flatnonzero(pred != labels)
    rows = {"most confident right": right[np.argsort(-confidence[right], kind="stable")][:n],
            "most confident wrong": wrong[np.argsort(-confidence[wrong], kind="stable")][:n]}
    # tight_layout only moves axes inside the figure: each row needs the height of a square image as
    # wide as its column (2 in) plus its four-line caption, or captions slide over the row above.
    fig, axes = plt.subplots(2, n, figsize=(2.0 * n, 2 * (2.0 + 0.8) + 0.5), squeeze=False)
    for r, (row_name, idx) in enumerate(rows.items()):
        for c in range(n):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(idx):
                i = idx[c]
                ax.imshow(images[i])
                ax.set_title(f"{ids[i]}\ntrue {class_names[labels[i]]}\ncalled {class_names[pred[i]]}\n"
                             f"p({class_names[1]}) = {p[i]:.2f}", fontsize=8, color="green" if r == 0 else "crimson")
        axes[r][0].text(-0.15, 0.5, row_name, transform=axes[r][0].transAxes, rotation=90, va="center",
                        ha="right", fontsize=9)
    fig.suptitle(title, fontsize=9)
    save_figure(fig, path)
