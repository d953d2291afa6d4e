"""The one training loop of every model: compile, fit with early stopping, log with DVCLive."""

from __future__ import annotations

import logging
import math
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf
from dvclive import Live
from dvclive.keras import DVCLiveCallback

from cosmic import paths
from cosmic.data.imageops import crop_of
from cosmic.data.packing import Arrays, load_splits
from cosmic.learning import strategies
from cosmic.learning.augment import stage_augment
from cosmic.learning.datasets import BatchAugment, make_dataset
from cosmic.learning.determinism import DETERMINISTIC_ENV, cpu_settings_applied
from cosmic.learning.errors import TrainingError
from cosmic.learning.modelio import preprocessing_record, save_model
from cosmic.learning.models import OUTPUT_LAYER, unfreeze_top
from cosmic.learning.strategies import Distribution
from cosmic.params import Base, Fit
from cosmic.utils import atomic_path, write_json


log = logging.getLogger(__name__)


def set_determinism(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and TensorFlow; with `deterministic`, make TF ops reproducible too.

    Results are the same on other CPUs only if `cosmic.learning.determinism.apply_cpu_determinism` ran
    before TensorFlow was imported (every stage script does); a warning says when it did not.
    """
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
        if not cpu_settings_applied():
            log.warning("base.deterministic: the CPU settings %s are not in effect, so results may differ "
                        "between CPUs (see cosmic/learning/determinism.py)", DETERMINISTIC_ENV)


@contextmanager
def ctrl_c_between_batches() -> Iterator[keras.callbacks.Callback]:
    """Defer Ctrl-C to the end of the running batch, where the callback yielded raises KeyboardInterrupt.

    A KeyboardInterrupt raised inside TensorFlow's C++ code can surface as a SystemError or a
    TypeError, which KerasTuner records as a failed trial before searching on. A second Ctrl-C
    interrupts at once; where SIGINT is ignored (the tuner's chief and workers) nothing changes.
    """
    pending: list[bool] = []

    def check(*_, **__):
        if pending:
            raise KeyboardInterrupt

    def on_sigint(signum, frame):
        if pending:
            raise KeyboardInterrupt
        pending.append(True)

    # The closures survive KerasTuner's deep copy of the callbacks; an attribute would be copied.
    callback = keras.callbacks.LambdaCallback(on_train_batch_end=check, on_test_batch_end=check,
                                              on_predict_batch_end=check)
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield callback
        return
    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield callback
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    check()


def class_weights(labels: np.ndarray) -> dict[int, float]:
    """Inverse-frequency weights {0: w0, 1: w1} that make both classes count equally."""
    counts = np.bincount(labels.astype(int), minlength=2)
    if (counts == 0).any():
        raise TrainingError(f"training split has class counts {counts.tolist()}; both classes are needed")
    return {i: float(len(labels) / (2 * c)) for i, c in enumerate(counts)}


@dataclass(frozen=True)
class Phase:
    """One fit of a schedule: its epochs and learning rate, and what to change on the model first."""

    name: str
    epochs: int
    learning_rate: float
    before: Callable[[], object] | None = None


def transfer_schedule(backbone: keras.Model, pretrained: bool, head_epochs: int, learning_rate: float,
                      fine_tune_epochs: int, fine_tune_lr: float, fine_tune_layers: int) -> list[Phase]:
    """The transfer model's phases: head then fine-tuning when pretrained, else one from-scratch fit.

    A frozen, randomly initialised base gives no features worth training a head on, so
    without pretrained weights every layer trains for the same total number of epochs.
    """
    if not pretrained:
        return [Phase("scratch", head_epochs + fine_tune_epochs, learning_rate)]
    return [Phase("head", head_epochs, learning_rate),
            Phase("fine_tune", fine_tune_epochs, fine_tune_lr,
                  before=lambda: unfreeze_top(backbone, fine_tune_layers))]


def compile_model(model: keras.Model, learning_rate: float) -> None:
    """Adam + binary cross-entropy with accuracy and AUC, the setup every model trains with."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="binary_crossentropy",
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")],
    )


def fit(model: keras.Model, train: Arrays, val: Arrays, *, phases: list[Phase], batch_size: int, patience: int,
        seed: int, augment: BatchAugment | None = None, use_class_weight: bool = False,
        live_dir: Path | None = None, extra_callbacks: list | None = None) -> dict:
    """Train a model through its phases and return the validation metrics of the restored best weights.

    Each phase recompiles (new learning rate, and `before` may unfreeze layers), stops early
    on val loss with the best weights restored, and stops at once on a NaN loss. With
    `live_dir`, every epoch of every phase is logged to one DVCLive run with continuous steps.

    Returns:
        {"val": {loss, accuracy, auc}, "epochs_run": n, "kept_epoch": epoch whose weights the model
        ends with (1-based), "phases": {name: {epochs_run, learning_rate, kept_epoch}}}.

    Raises:
        TrainingError: when the loss becomes NaN.
    """
    train_ds = make_dataset(train, batch_size, shuffle=True, seed=seed, augment=augment)
    val_ds = make_dataset(val, batch_size)
    weights = class_weights(train.labels) if use_class_weight else None
    live = Live(str(live_dir), save_dvc_exp=False, dvcyaml=False) if live_dir else None
    epochs_done, phase_log = 0, {}
    with ctrl_c_between_batches() as on_ctrl_c:
        try:
            for phase in phases:
                if phase.epochs <= 0:
                    continue
                if phase.before is not None:
                    phase.before()
                compile_model(model, phase.learning_rate)
                stopping = keras.callbacks.EarlyStopping("val_loss", patience=patience, restore_best_weights=True)
                callbacks = [
                    stopping,
                    keras.callbacks.TerminateOnNaN(),
                    on_ctrl_c,
                    *(extra_callbacks or []),
                ]
                if live is not None:
                    callbacks.append(DVCLiveCallback(live=live))
                history = model.fit(train_ds, validation_data=val_ds, epochs=epochs_done + phase.epochs,
                                    initial_epoch=epochs_done, class_weight=weights, callbacks=callbacks,
                                    shuffle=False, verbose=2)
                losses = history.history.get("loss", [])
                if any(not np.isfinite(v) for v in losses):
                    raise TrainingError(f"phase '{phase.name}': loss became {losses[-1]} at epoch "
                                        f"{epochs_done + len(losses)}; lower the learning rate "
                                        f"(now {phase.learning_rate})")
                epochs_done += len(losses)
                # Early stopping restores the phase's best val-loss epoch (numbered across phases).
                phase_log[phase.name] = {"epochs_run": len(losses), "learning_rate": phase.learning_rate,
                                         "kept_epoch": stopping.best_epoch + 1}
            result = {"val": evaluate_val(model, val_ds),
                      "epochs_run": epochs_done,
                      "kept_epoch": next(reversed(phase_log.values()))["kept_epoch"] if phase_log else 0,
                      "phases": phase_log}
            if live is not None:
                live.summary["best"] = result["val"]
        finally:
            if live is not None:
                live.end()
    return result


def evaluate_val(model: keras.Model, val_ds) -> dict:
    """The compiled metrics of `model` on a validation dataset, sorted by name and rounded for JSON."""
    values = model.evaluate(val_ds, verbose=0, return_dict=True)
    return {k: round(float(v), 6) for k, v in sorted(values.items())}


def balance_recall(model: keras.Model, val: Arrays, batch_size: int) -> dict:
    """Shift the output bias so that p > 0.5 recalls both classes of `val` equally often.

    A model can rank galaxies well and still favour one class at 0.5; moving its threshold into
    the bias keeps every consumer of the model (evaluate, predict, score) at p > 0.5.

    Returns:
        {"val_threshold": the threshold that equalised recall before the shift, "bias_shift": the
        logit added to the output bias}.
    """
    p = model.predict(make_dataset(val, batch_size), verbose=0)
    threshold = equal_recall_threshold(p, val.labels)
    shift = -math.log(threshold / (1.0 - threshold))
    layer = model.get_layer(OUTPUT_LAYER)
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, bias + np.asarray(shift, dtype=bias.dtype)])
    return {"val_threshold": round(threshold, 6), "bias_shift": round(shift, 6)}


def model_summary(model: keras.Model, path: Path) -> dict:
    """Parameter counts of a model and the size of its saved file."""
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    return {"n_params": int(model.count_params()), "n_trainable_params": trainable,
            "model_bytes": os.path.getsize(path)}


def load_train_val(base: Base) -> tuple[Arrays, Arrays]:
    """The train and val splits (never test) of data/processed, checked against `base`."""
    return load_splits(paths.PROCESSED_DIR, ("train", "val"), crop=crop_of(base),
                       image_size=base.image_size, class_names=base.class_names)


def start(base: Base) -> Distribution:
    """Prepare TensorFlow for a training stage: `base.strategy` first, then the seeds and op determinism.

    The strategy comes first because MultiWorkerMirroredStrategy can only be created before any other
    TensorFlow operation.
    """
    distribution = strategies.setup(base.strategy, base.mixed_precision)
    set_determinism(base.seed, base.deterministic)
    return distribution


def train(stage: str, base: Base, p: Any, recipe: Callable[[Base, Any, Distribution], Any]) -> dict:
    """Train one model stage: its recipe builds the model and its phases, `run_stage` does the rest.

    Args:
        stage: the model's stage (`cosmic.registry`), which names its outputs.
        base: the validated `base` params.
        p: the stage's own validated params, with `fit` (batch size, patience, augmentation...).
        recipe: `cosmic.learning.recipes.<model>`, called with (base, p, distribution).

    Returns:
        The metrics written to metrics/<stage>.json.
    """
    distribution = start(base)
    r = recipe(base, p, distribution)
    return run_stage(stage, r.model, r.phases, base=base, fit_params=p.fit, distribution=distribution,
                     record=r.record)


def run_stage(stage: str, model: keras.Model, phases: list[Phase], *, base: Base, fit_params: Fit,
              distribution: Distribution, record: dict | None = None) -> dict:
    """Everything a training stage does after building its model: fit, save, write metrics.

    Writes models/<stage>.keras (with its preprocessing record and, under "training", how it
    was trained: phases, learning rates and the stage's `record`), metrics/<stage>.json (numbers
    only, for DVC) and, once both are written, the per-epoch DVCLive logs under plots/training/<stage>/.

    Compiling and fitting happen in the scope of `distribution` (the stage built the model in it
    too), `batch_size` is the global batch split over its replicas, and only its chief writes here
    (other workers write to a temp dir removed at exit). With `base.recall_balance`, the output
    bias is then shifted to equal validation recall (`balance_recall`) and the validation metrics
    are those of the shifted model.
    """
    root = distribution.output_root()
    train, val = load_train_val(base)
    log.info("%s: %d train / %d val images, %d parameters", stage, len(train.labels), len(val.labels),
             model.count_params())
    # DVCLive writes every epoch, into a temporary folder outside the work tree (another `dvc exp run`
    # resets the work tree's git state when it starts); the log gets its final name last, so a stage
    # that is killed or fails leaves no training log of a model it did not save.
    with atomic_path(root / paths.training_log(stage)) as live_dir, \
            tempfile.TemporaryDirectory(prefix=f"cosmic-{stage}-") as scratch:
        with distribution.scope():
            result = fit(model, train, val, phases=phases, batch_size=fit_params.batch_size,
                         patience=fit_params.patience, seed=base.seed,
                         augment=stage_augment(fit_params.augmentation, base.domain),
                         use_class_weight=fit_params.class_weight, live_dir=Path(scratch))
            if base.recall_balance:
                result["recall_balance"] = balance_recall(model, val, fit_params.batch_size)
                result["val"] = evaluate_val(model, make_dataset(val, fit_params.batch_size))
        model_path = root / paths.model_file(stage)
        training = {"stage": stage, "phases": result["phases"], "recall_balance": result.get("recall_balance"),
                    **(record or {})}
        save_model(model, model_path,
                   {**preprocessing_record(crop_of(base), base.image_size,
                                             base.class_names), "training": training})
        metrics = {"val": result["val"], "epochs_run": result["epochs_run"], "kept_epoch": result["kept_epoch"],
                   "epochs_run_by_phase": {name: ph["epochs_run"] for name, ph in result["phases"].items()},
                   **({"recall_balance": result["recall_balance"]} if "recall_balance" in result else {}),
                   **model_summary(model, model_path), "n_train": int(len(train.labels)),
                   "n_val": int(len(val.labels))}
        write_json(root / paths.stage_metrics(stage), metrics)
        shutil.copytree(scratch, live_dir)
    log.info("%s: val %s after %d epochs -> %s", stage, result["val"], result["epochs_run"], model_path)
    return metrics


def equal_recall_threshold(p_spiral: np.ndarray, labels: np.ndarray, clip: float = 0.05) -> float:
    """The decision threshold at which both classes are recalled equally often.

    Spiral recall (p > t) falls and elliptical recall (p <= t) rises with t; the threshold is the
    midpoint between two neighbouring predictions where they come closest (the lowest such one on
    a tie), clipped to [clip, 1 - clip].

    Raises:
        ValueError: when either class is missing from `labels`.
    """
    p = np.asarray(p_spiral, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel()
    spiral, elliptical = np.sort(p[y == 1]), np.sort(p[y == 0])
    if not spiral.size or not elliptical.size:
        raise ValueError(f"equal recall needs both classes in the labels, got {spiral.size} spiral and "
                         f"{elliptical.size} elliptical")
    values = np.unique(np.concatenate([[0.0, 1.0], p]))
    candidates = (values[:-1] + values[1:]) / 2
    spiral_recall = 1.0 - np.searchsorted(spiral, candidates, side="right") / spiral.size
    elliptical_recall = np.searchsorted(elliptical, candidates, side="right") / elliptical.size
    best = candidates[int(np.argmin(np.abs(spiral_recall - elliptical_recall)))]
    return float(np.clip(best, clip, 1.0 - clip))
