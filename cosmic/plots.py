"""Matplotlib figures for people reading the repository (DVC renders its own from the JSON/CSV)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

# Fixed metadata keeps PNG bytes identical across re-runs.
_PNG_META = {"Software": None}


def _save(fig: plt.Figure, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata=_PNG_META)
    plt.close(fig)


def plot_trials(table: pd.DataFrame, objective: str, path: Path) -> None:
    """Objective per tuner trial, best trial highlighted."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    scores = table["score"].astype(float)
    ax.bar(table["trial"].astype(str), scores, color="steelblue")
    if scores.notna().any():
        best = scores.idxmax() if not objective.endswith("loss") else scores.idxmin()
        ax.bar([str(table["trial"][best])], [scores[best]], color="darkorange", label="best")
        ax.legend()
    ax.set(xlabel="trial", ylabel=objective, title="KerasTuner trials")
    ax.tick_params(axis="x", rotation=90)
    _save(fig, path)


def read_live_history(live_dir: Path) -> pd.DataFrame:
    """Per-epoch metrics of a training stage from its DVCLive logs, one column per metric."""
    series = []
    for tsv in sorted(Path(live_dir, "plots", "metrics").rglob("*.tsv")):
        frame = pd.read_csv(tsv, sep="\t")
        name = f"{tsv.parent.name}/{tsv.stem}"
        series.append(frame.set_index("step")[frame.columns[-1]].rename(name))
    return pd.concat(series, axis=1) if series else pd.DataFrame()


def plot_histories(histories: dict[str, pd.DataFrame], path: Path) -> None:
    """Loss and accuracy per epoch of every model, train solid and validation dashed."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (name, hist), colour in zip(histories.items(), colours):
        for ax, metric in zip(axes, ("loss", "accuracy")):
            for split, style in (("train", "-"), ("eval", "--")):
                col = f"{split}/{metric}"
                if col in hist:
                    ax.plot(hist.index + 1, hist[col], style, color=colour,
                            label=f"{name} {'val' if split == 'eval' else 'train'}")
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.set(xlabel="epoch", ylabel=metric, title=f"training {metric}")
    axes[1].legend(fontsize=7)
    _save(fig, path)


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
    _save(fig, path)


def plot_roc(curves: dict[str, list[dict]], aucs: dict[str, float | None], path: Path) -> None:
    """ROC curves of every model on one plot."""
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    for name, pts in curves.items():
        if pts:
            auc = aucs.get(name)
            ax.plot([q["fpr"] for q in pts], [q["tpr"] for q in pts],
                    label=f"{name} (AUC {auc:.3f})" if auc is not None else name)
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test)")
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_calibration(curves: dict[str, dict], path: Path) -> None:
    """Reliability diagram: fraction of spirals against mean predicted p(spiral), per model."""
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfect")
    for name, c in curves.items():
        ax.plot(c["mean_predicted"], c["fraction_positive"], "o-", ms=3, label=name)
    ax.set(xlabel="mean predicted p(spiral)", ylabel="fraction spiral", title="calibration (test)",
           xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_examples(images: np.ndarray, labels: np.ndarray, p: np.ndarray, ids: np.ndarray,
                  class_names: tuple[str, str], n: int, title: str, path: Path) -> None:
    """Most confident right and most confident wrong test predictions, with true/predicted/p."""
    pred = (p > 0.5).astype(int)
    confidence = np.abs(p - 0.5)
    right, wrong = np.flatnonzero(pred == labels), np.flatnonzero(pred != labels)
    rows = {"most confident right": right[np.argsort(-confidence[right], kind="stable")][:n],
            "most confident wrong": wrong[np.argsort(-confidence[wrong], kind="stable")][:n]}
    fig, axes = plt.subplots(2, n, figsize=(1.7 * n, 4.4), squeeze=False)
    for r, (row_name, idx) in enumerate(rows.items()):
        for c in range(n):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(idx):
                i = idx[c]
                ax.imshow(images[i])
                ax.set_title(f"{ids[i]}\ntrue {class_names[labels[i]]}\npred {class_names[pred[i]]} "
                             f"p={p[i]:.2f}", fontsize=6, color="green" if r == 0 else "crimson")
        axes[r][0].text(-0.15, 0.5, row_name, transform=axes[r][0].transAxes, rotation=90, va="center",
                        ha="right", fontsize=8)
    fig.suptitle(title, fontsize=9)
    _save(fig, path)
