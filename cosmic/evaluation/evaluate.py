"""Evaluate every saved model on one split: metrics, paired tests, curves and throughput."""

from __future__ import annotations

import itertools
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cosmic import paths
from cosmic.data.packing import Arrays
from cosmic.evaluation import metrics as M
from cosmic.evaluation import plots
from cosmic.evaluation.tta import predict_proba
from cosmic.learning.modelio import load_model
from cosmic.params import Evaluate
from cosmic.registry import MODELS, THRESHOLD, by_name
from cosmic.utils import read_json, write_json, writing

log = logging.getLogger(__name__)


@dataclass
class ModelEval:
    """Predictions of one model on one split, the metrics derived from them, and facts about the model."""

    name: str
    p: np.ndarray
    metrics: dict
    # n_params, model_bytes, kept_epoch (from the stage's metrics), pretrained and weights_note (from its record)
    facts: dict = field(default_factory=dict)
    images_per_s: float | None = None


def metric_block(y: np.ndarray, p: np.ndarray, class_names: tuple[str, str], settings: M.MetricSettings) -> dict:
    """The metrics of one set of predictions, as reported by evaluate and cosmic.commands.score.

    Args:
        y: 0/1 labels (0 = class_names[0]), shape (n,).
        p: predicted probability of class_names[1], shape (n,).
        class_names: (name of class 0, name of class 1), keys of the per-class entries.
        settings: bootstrap resamples, CI level, calibration bins and seed.

    Returns:
        `metrics.classification_metrics` (accuracy, balanced accuracy, per-class scores, ROC AUC,
        ECE, confusion matrix, ...) plus ``accuracy_ci`` {low, high, level}.

    Raises:
        ValueError: on invalid labels/probabilities or settings (see `cosmic.evaluation.metrics`).
    """
    m = M.classification_metrics(y, p, class_names, n_bins=settings.calibration_bins)
    low, high = M.bootstrap_ci(y, (np.asarray(p) > THRESHOLD).astype(int),
                               n_resamples=settings.bootstrap_resamples, level=settings.ci_level, seed=settings.seed)
    m["accuracy_ci"] = {"low": low, "high": high, "level": settings.ci_level}
    return m


def headline(m: dict, class_names: tuple[str, str]) -> dict:
    """The numbers of a `metric_block` that a DVC metrics file keeps: flat, named by what they measure.

    Settings (CI level, threshold, TTA views) and the per-class details stay in the report, so
    `dvc metrics diff` and `dvc exp show` list only measurements.
    """
    first, second = class_names
    cm = m["confusion_matrix"]
    out = {"accuracy": m["accuracy"], "accuracy_ci_low": m["accuracy_ci"]["low"],
           "accuracy_ci_high": m["accuracy_ci"]["high"], "balanced_accuracy": m["balanced_accuracy"],
           "roc_auc": m["roc_auc"], "average_precision": m["average_precision"], "log_loss": m["log_loss"],
           "brier": m["brier"], "ece": m["ece"], "macro_f1": m["macro"]["f1"],
           f"{first}_recall": m[first]["recall"], f"{second}_recall": m[second]["recall"],
           f"{first}_precision": m[first]["precision"], f"{second}_precision": m[second]["precision"],
           f"{first}_called_{second}": cm["fp"], f"{second}_called_{first}": cm["fn"]}
    if "tta" in m:
        out.update({f"tta_{k}": m["tta"][k] for k in ("accuracy", "balanced_accuracy", "roc_auc")})
    return out


def mcnemar_headline(tests: dict[tuple[str, str], dict]) -> dict:
    """`pairwise_mcnemar` results as numbers only: p-value and the two discordant counts, keyed "a_vs_b"."""
    return {f"{a}_vs_{b}": {"p_value": t["p_value"], f"only_{a}_right": t["b"], f"only_{b}_right": t["c"]}
            for (a, b), t in tests.items()}


def evaluate_model(name: str, model, data: Arrays, class_names: tuple[str, str], *, tta: int, batch_size: int,
                   settings: M.MetricSettings) -> ModelEval:
    """All metrics of one model on one split, plain and (with tta=8) with test-time augmentation.

    The bootstrap resamples images with a seed shared by every model, so their intervals
    come from the same resamples.
    """
    y = data.labels.astype(int)
    p = predict_proba(model, data.images, tta=1, batch_size=batch_size)
    result = metric_block(y, p, class_names, settings)
    if tta > 1:
        p_tta = predict_proba(model, data.images, tta=tta, batch_size=batch_size)
        result["tta"] = {"views": tta, **metric_block(y, p_tta, class_names, settings)}
    log.info("%s: accuracy %.4f [%s, %s], AUC %s", name, result["accuracy"], result["accuracy_ci"]["low"],
             result["accuracy_ci"]["high"], result["roc_auc"])
    return ModelEval(name, p, result)


def pairwise_mcnemar(evals: list[ModelEval], labels: np.ndarray) -> dict[tuple[str, str], dict]:
    """McNemar test between every pair of models on the same images ((name a, name b) -> result)."""
    out = {}
    for a, b in itertools.combinations(evals, 2):
        correct_a = (a.p > THRESHOLD).astype(int) == labels
        correct_b = (b.p > THRESHOLD).astype(int) == labels
        out[a.name, b.name] = M.mcnemar(correct_a, correct_b)
    return out


def inference_throughput(model, images: np.ndarray, batch_size: int, repeats: int = 3) -> float:
    """Images per second of plain prediction on this machine (best of `repeats` after a warm-up)."""
    sample = np.asarray(images[: max(batch_size, min(len(images), 4 * batch_size))], np.float32)
    model.predict_on_batch(sample[:batch_size])
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(sample), batch_size):
            model.predict_on_batch(sample[i:i + batch_size])
        best = max(best, len(sample) / (time.perf_counter() - start))
    return round(best, 1)


def confusion_rows(labels: np.ndarray, p: np.ndarray, class_names: tuple[str, str]) -> list[dict]:
    """One {actual, predicted} row per image, for DVC's confusion template."""
    pred = (p > THRESHOLD).astype(int)
    return [{"actual": class_names[a], "predicted": class_names[b]} for a, b in zip(labels.astype(int), pred)]


def evaluate_saved_models(test: Arrays, class_names: tuple[str, str], p: Evaluate, seed: int) -> list[ModelEval]:
    """Every model of `cosmic.registry.MODELS`, as its stage saved it, evaluated on `test`.

    Raises:
        FileNotFoundError: if a model or its stage's metrics file is missing.
    """
    settings = M.MetricSettings(p.bootstrap_resamples, p.ci_level, p.calibration_bins, seed)
    evals = []
    for entry in MODELS:
        model, record = load_model(paths.model_file(entry.stage))
        train_metrics, training = read_json(paths.stage_metrics(entry.stage)), record.get("training", {})
        ev = evaluate_model(entry.name, model, test, class_names, tta=p.tta, batch_size=p.batch_size, settings=settings)
        ev.facts = {"n_params": train_metrics["n_params"], "model_bytes": train_metrics["model_bytes"],
                    "kept_epoch": train_metrics["kept_epoch"], "pretrained": training.get("pretrained"),
                    "weights_note": training.get("weights_note"), "recall_balance": training.get("recall_balance")}
        ev.images_per_s = inference_throughput(model, test.images, p.batch_size)
        evals.append(ev)
    return evals


def metrics_record(evals: list[ModelEval], tests: dict[tuple[str, str], dict], class_names: tuple[str, str],
                   n_test: int) -> dict:
    """metrics/evaluate.json: each model's headline numbers, the McNemar counts and the test-split size."""
    return {**{e.name: {"test": headline(e.metrics, class_names)} for e in evals},
            "mcnemar": mcnemar_headline(tests), "n_test": int(n_test)}


# Key in metrics/test.json -> key of a `metric_block`. `dvc metrics show` sorts its columns by name
# over every metrics file; "accuracy", "auc" and "balanced_accuracy" sort before every other key
# (tests/test_pipeline_spec.py checks it), so the three models' figures are its first columns.
SUMMARY_KEYS = {"accuracy": "accuracy", "auc": "roc_auc", "balanced_accuracy": "balanced_accuracy"}


def summary_record(evals: list[ModelEval]) -> dict:
    """metrics/test.json: {metric: {model: value}} for the figures models are compared by."""
    return {key: {e.name: e.metrics[source] for e in evals} for key, source in SUMMARY_KEYS.items()}


def write_plots(evals: list[ModelEval], test: Arrays, class_names: tuple[str, str], p: Evaluate,
                out_dir: Path) -> None:
    """DVC plot data per model (confusion rows, ROC, PR), example grids, and the comparison PNGs."""
    labels = test.labels.astype(int)
    rocs = {}
    for ev in evals:
        out = out_dir / ev.name
        out.mkdir(parents=True, exist_ok=True)
        with writing(out / "confusion.json"):
            (out / "confusion.json").write_text(json.dumps(confusion_rows(test.labels, ev.p, class_names)) + "\n")
        rocs[ev.name] = M.roc_points(test.labels, ev.p)
        write_json(out / "roc.json", {"roc": rocs[ev.name]})
        write_json(out / "precision_recall.json", {"precision_recall": M.pr_points(test.labels, ev.p)})
        plots.plot_examples(test.images, labels, ev.p, test.ids, class_names, p.n_examples,
                            f"{ev.name}: test predictions", out / "examples.png")
    plots.plot_confusions({e.name: e.metrics["confusion_matrix"] for e in evals}, class_names,
                          out_dir / "confusion_matrices.png")
    plots.plot_roc(rocs, {e.name: e.metrics["roc_auc"] for e in evals}, out_dir / "roc.png")
    plots.plot_calibration({e.name: M.calibration_curve(test.labels, e.p, p.calibration_bins) for e in evals},
                           out_dir / "calibration.png")
    plots.plot_histories({e.name: plots.read_live_history(paths.training_log(by_name(e.name).stage))
                          for e in evals}, out_dir / "training_history.png",
                         kept_epochs={e.name: e.facts["kept_epoch"] for e in evals})
