"""KerasTuner search over the baseline CNN's hyperparameters, declared in params.yaml."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import keras
import keras_tuner as kt
import pandas as pd
from dvclive import Live

from cosmic.learning.cluster import CHIEF, tuner_role
from cosmic.learning.models import build_baseline
from cosmic.params import SearchSpace
from cosmic.learning.training import compile_model, ctrl_c_between_batches
from cosmic.utils import atomic_path, writing

log = logging.getLogger(__name__)

OBJECTIVE_DIRECTION = {"val_accuracy": "max", "val_auc": "max", "val_loss": "min"}


class HyperModel:
    """Maps `hp` values to `build_baseline` arguments; the search space comes from params."""

    def __init__(self, image_size: int, space: SearchSpace, kernel_size: int, scaling: str):
        self.image_size, self.space, self.kernel_size, self.scaling = image_size, space, kernel_size, scaling

    def declare(self, hp: kt.HyperParameters) -> dict:
        """Register the search space in `hp` and return the builder arguments it picks."""
        s = self.space
        lo, hi, step = s.dropout
        return {
            "filters": tuple(hp.Choice(f"filters_block{i}", list(values))
                             for i, values in enumerate(s.filters, start=1)),
            "dense_units": hp.Choice("dense_units", list(s.dense_units)),
            "dropout": hp.Float("dropout", lo, hi, step=step),
            "learning_rate": hp.Float("learning_rate", *s.learning_rate, sampling=s.lr_sampling),
        }

    def builder_args(self, hp: kt.HyperParameters) -> tuple[dict, float]:
        """The `build_baseline` keyword arguments and the learning rate that `hp` picks."""
        args = self.declare(hp)
        learning_rate = args.pop("learning_rate")
        return {**args, "kernel_size": self.kernel_size, "scaling": self.scaling}, learning_rate

    def __call__(self, hp: kt.HyperParameters) -> keras.Model:
        args, learning_rate = self.builder_args(hp)
        model = build_baseline(self.image_size, name="tuned_cnn", **args)
        compile_model(model, learning_rate)
        return model


def make_tuner(kind: str, hypermodel: HyperModel, objective: str, max_trials: int, epochs: int, seed: int,
               directory: Path, fresh: bool = True) -> kt.Tuner:
    """A fresh tuner of the given kind (any previous search in `directory` is discarded).

    In a distributed search (`fresh=False`) the chief and its workers share `directory`, which
    the stage cleared before starting them, so none of them removes the others' files.
    """
    if fresh:
        shutil.rmtree(directory, ignore_errors=True)
    common = {"objective": kt.Objective(objective, OBJECTIVE_DIRECTION[objective]), "seed": seed,
              "directory": str(directory.parent), "project_name": directory.name, "overwrite": fresh}
    if kind == "random":
        return kt.RandomSearch(hypermodel, max_trials=max_trials, **common)
    if kind == "bayesian":
        return kt.BayesianOptimization(hypermodel, max_trials=max_trials, **common)
    if kind == "hyperband":
        # Hyperband sizes its own brackets from max_epochs; max_trials does not apply.
        return kt.Hyperband(hypermodel, max_epochs=epochs, factor=3, **common)
    raise ValueError(f"unknown tuner {kind!r}; expected random, bayesian or hyperband")


def make_oracle_file_reproducible(directory: Path) -> None:
    """Remove what makes KerasTuner's oracle.json differ between identical searches.

    The oracle stores wall-clock trial start times and a Python set (ordered by the
    per-process hash seed). The tuner directory is a DVC output, so these would change
    dvc.lock on every re-run; the trials and their scores are untouched.
    """
    path = Path(directory) / "oracle.json"
    state = json.loads(path.read_text())
    state["tried_so_far"] = sorted(state.get("tried_so_far", []))
    display = state.get("display", {})
    display.pop("search_start", None)
    display.pop("trial_start", None)
    with writing(path):
        path.write_text(json.dumps(state, sort_keys=True))


def run_search(tuner: kt.Tuner, hypermodel: HyperModel, train_ds, val_ds, epochs: int, objective: str,
               kind: str) -> tuple[pd.DataFrame, dict]:
    """Search, then return the per-trial table and the best_hparams.json record.

    The record holds the best trial's `build_baseline` arguments ("model") and learning rate, so
    train_optimized rebuilds the model without KerasTuner, beside the raw hyperparameter values.

    Raises:
        RuntimeError: if no trial finished with a score.
    """
    search(tuner, train_ds, val_ds, epochs)
    make_oracle_file_reproducible(Path(tuner.project_dir))
    table = trials_table(tuner)
    if table["score"].isna().all():
        raise RuntimeError("no trial finished with a score; see the log above")
    best = tuner.oracle.get_best_trials(1)[0]
    model_args, learning_rate = hypermodel.builder_args(best.hyperparameters)
    record = {"model": model_args, "learning_rate": learning_rate, "hyperparameters": best.hyperparameters.values,
              "objective": objective, "score": round(float(best.score), 6), "trial": best.trial_id, "tuner": kind}
    return table, record


def search(tuner: kt.Tuner, train_ds, val_ds, epochs: int) -> None:
    """Run the tuner's search (in a distributed search: serve the oracle on the chief, run trials on a worker).

    Raises:
        KeyboardInterrupt: at the end of the running batch after Ctrl-C (see `ctrl_c_between_batches`).
    """
    with ctrl_c_between_batches() as on_ctrl_c:
        tuner.search(train_ds, validation_data=val_ds, epochs=epochs, shuffle=False, verbose=2,
                     callbacks=[keras.callbacks.TerminateOnNaN(), on_ctrl_c])
    if tuner_role() == CHIEF:
        # The chief's oracle saves oracle.json before it forgets a trial ended by a worker, and
        # nothing saves it after the last one; in-process searches save it at every trial's end.
        tuner.oracle.save()


def log_trials(table: pd.DataFrame, objective: str, live_dir: Path) -> None:
    """Log each trial's score as one DVCLive step (KerasTuner cannot deep-copy DVCLive's callback)."""
    with atomic_path(live_dir) as tmp, Live(str(tmp), save_dvc_exp=False, dvcyaml=False) as live:
        for score in table["score"]:
            live.log_metric(f"trial/{objective}", float("nan") if score is None else score)
            live.next_step()


def trials_table(tuner: kt.Tuner) -> pd.DataFrame:
    """One row per finished trial: id, score, status and every hyperparameter value."""
    rows = []
    for trial in tuner.oracle.trials.values():
        rows.append({"trial": trial.trial_id, "status": trial.status,
                     "score": None if trial.score is None else round(float(trial.score), 6),
                     **trial.hyperparameters.values})
    return pd.DataFrame(rows).sort_values("trial").reset_index(drop=True)
