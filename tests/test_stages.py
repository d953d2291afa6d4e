"""Every stage's main() end to end on a tiny configuration, in a temporary working directory."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml

from cosmic import paths, registry
from cosmic.learning.modelio import read_preprocessing
from tests.conftest import REPO, run_stage_in_process, stage_args, tiny_params

# The module's fixture runs the whole pipeline (over a minute on two cores) and one test trains twice in
# subprocesses: none of it belongs in the fast subset.
pytestmark = pytest.mark.slow

STAGES = ("fetch", "filter", "split", "preprocess", "train_baseline", "train_transfer", "tune",
          "train_optimized", "evaluate")
TRAINING = ("train_baseline", "train_transfer", "tune", "train_optimized")
MODEL_STAGES = [m.stage for m in registry.MODELS]
MODELS = registry.model_names()
FACTOR = tiny_params()["base"]["crop_factor"]  # the adaptive crop of the repository's params.yaml


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Run the whole pipeline in-process; the test split is hidden while the training stages run."""
    root = tmp_path_factory.mktemp("workspace")
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    old = Path.cwd()
    os.chdir(root)
    saved_get_file = keras.utils.get_file

    def offline(*args, **kwargs):
        raise OSError("no network in tests")

    keras.utils.get_file = offline
    try:
        for name in STAGES[:4]:
            run_stage_in_process(name)
        hidden = root / "hidden_test_split"
        shutil.move(paths.PROCESSED_DIR / "test", hidden)
        for name in TRAINING:
            run_stage_in_process(name)
        shutil.move(hidden, paths.PROCESSED_DIR / "test")
        run_stage_in_process("evaluate")
        yield root
    finally:
        keras.utils.get_file = saved_get_file
        os.chdir(old)


def _json(root: Path, rel: str) -> dict:
    return json.loads((root / rel).read_text())


def test_data_stages_write_their_outputs(workspace):
    assert (workspace / "data/raw/training_solutions_rev1.csv").is_file()
    data = _json(workspace, "metrics/data.json")
    summary = _json(workspace, "data/filtered/summary.json")
    assert summary["source"] == "synthetic" and summary["threshold"] == 0.8 and data["n_kept"] > 0
    for png in ("vote_fractions", "class_balance", "samples"):
        assert (workspace / f"plots/data/{png}.png").stat().st_size > 1000
    split = _json(workspace, "metrics/split.json")
    assert sum(s["n"] for s in split.values()) == data["n_kept"]
    meta = _json(workspace, "data/processed/meta.json")
    assert meta["image_size"] == 32 and meta["counts"]["test"] == split["test"]["n"]
    images = np.load(workspace / "data/processed/train/images.npy", mmap_mode="r")
    assert images.shape[1:] == (32, 32, 3) and images.dtype == np.uint8


def test_training_stages_ran_without_the_test_split(workspace):
    """The fixture moved data/processed/test away while the training stages ran."""
    for stage in MODEL_STAGES:
        m = _json(workspace, f"metrics/{stage}.json")
        assert set(m["val"]) == {"accuracy", "auc", "loss"} and m["epochs_run"] >= 1
        assert m["n_val"] == _json(workspace, "metrics/split.json")["val"]["n"]
        model = keras.models.load_model(workspace / f"models/{stage}.keras")
        assert model.input_shape == (None, 32, 32, 3)
        assert (workspace / f"plots/training/{stage}/plots/metrics/train/loss.tsv").is_file()


def test_kept_epoch_is_the_best_val_loss_of_the_last_phase(workspace):
    """Early stopping restores the best epoch; the metrics and training_history.png say which one."""
    from cosmic.evaluation.plots import read_live_history

    for stage in MODEL_STAGES:
        m = _json(workspace, f"metrics/{stage}.json")
        last_phase = list(m["epochs_run_by_phase"].values())[-1]
        val_loss = read_live_history(workspace / f"plots/training/{stage}")["eval/loss"].to_numpy()
        first = m["epochs_run"] - last_phase
        assert m["kept_epoch"] == first + int(np.argmin(val_loss[first:])) + 1, (stage, m, val_loss)


def test_models_recall_both_validation_classes_equally(workspace):
    """base.recall_balance: p > 0.5 of each saved model is its validation equal-recall point."""
    from cosmic.data.imageops import Crop
    from cosmic.data.packing import load_splits
    from cosmic.learning.training import equal_recall_threshold

    (val,) = load_splits(workspace / paths.PROCESSED_DIR, ("val",), crop=Crop(0.5, FACTOR), image_size=32,
                         class_names=("elliptical", "spiral"))
    report = (workspace / "metrics/report.md").read_text()
    for stage in MODEL_STAGES:
        shift = _json(workspace, f"metrics/{stage}.json")["recall_balance"]
        assert shift == read_preprocessing(workspace / f"models/{stage}.keras")["training"]["recall_balance"]
        assert 0.05 <= shift["val_threshold"] <= 0.95
        model = keras.models.load_model(workspace / f"models/{stage}.keras")
        p = model.predict(np.asarray(val.images, np.float32), verbose=0).ravel()
        t = equal_recall_threshold(p, val.labels)
        # A clipped threshold cannot equalise recall, nor any threshold the recalls of a tiny model
        # that gives all six validation images the same p.
        if 0.05 < shift["val_threshold"] < 0.95 and np.ptp(p) > 0:
            for cls in (0, 1):
                assert ((p[val.labels == cls] > 0.5) == (p[val.labels == cls] > t)).all(), stage
    assert "Output bias shifted after training" in report


def test_saved_models_record_their_preprocessing(workspace):
    pre = read_preprocessing(workspace / "models/train_baseline.keras")
    assert (pre["crop"], pre["crop_factor"], pre["crop_fraction"]) == ("adaptive", FACTOR, 0.5)
    assert pre["image_size"] == 32 and pre["class_names"] == ["elliptical", "spiral"]
    meta = json.loads((workspace / paths.PROCESSED_DIR / "meta.json").read_text())
    assert meta["crop"] == "adaptive" and set(meta["crop_fallbacks"]) == {"train", "val", "test"}


def test_transfer_without_weights_says_so(workspace):
    training = read_preprocessing(workspace / "models/train_transfer.keras")["training"]
    assert training["pretrained"] is False and training["weights_source"] == "random"
    # The tiny configuration uses a 32-px MobileNetV2, for which no ImageNet weights exist.
    assert "no ImageNet weights exist for input_size 32" in training["weights_note"]
    assert training["schedule"] == "scratch" and set(training["phases"]) == {"scratch"}
    assert training["input_scaling"] == "galaxy"  # input_scaling: auto, from random weights
    report = (workspace / "metrics/report.md").read_text()
    assert "transfer model was NOT pretrained" in report


def test_tune_outputs(workspace):
    best = _json(workspace, "models/tune/best_hparams.json")
    hp = best["hyperparameters"]
    assert set(hp) >= {"filters_block1", "dense_units", "dropout", "learning_rate"}
    assert best["model"] == {"filters": [hp["filters_block1"], hp["filters_block2"], hp["filters_block3"]],
                             "kernel_size": 3, "dense_units": hp["dense_units"], "dropout": hp["dropout"],
                             "scaling": "galaxy"}  # tune.input_scaling, not searched
    assert best["learning_rate"] == hp["learning_rate"]
    assert (workspace / "models/tune/trials.csv").read_text().count("\n") == 2
    assert (workspace / "plots/tune_trials.png").is_file()
    training = read_preprocessing(workspace / "models/train_optimized.keras")["training"]
    assert training["hyperparameters"] == best["hyperparameters"] and training["input_scaling"] == "galaxy"
    assert training["phases"]["train"]["learning_rate"] == best["hyperparameters"]["learning_rate"]
    assert _json(workspace, "metrics/tune.json")["best_hyperparameters"] == best["hyperparameters"]


def test_evaluate_metrics_schema(workspace):
    ev = _json(workspace, "metrics/evaluate.json")
    assert set(ev) == {*MODELS, "mcnemar", "n_test"}
    n_test = _json(workspace, "metrics/split.json")["test"]["n"]
    assert ev["n_test"] == n_test
    for name in MODELS:
        t = ev[name]["test"]
        assert set(t) == {"accuracy", "accuracy_ci_low", "accuracy_ci_high", "balanced_accuracy", "roc_auc",
                          "average_precision", "log_loss", "brier", "ece", "macro_f1", "elliptical_recall",
                          "spiral_recall", "elliptical_precision", "spiral_precision", "elliptical_called_spiral",
                          "spiral_called_elliptical", "tta_accuracy", "tta_balanced_accuracy", "tta_roc_auc"}, name
        assert t["accuracy_ci_low"] <= t["accuracy"] <= t["accuracy_ci_high"]
        errors = t["elliptical_called_spiral"] + t["spiral_called_elliptical"]
        assert errors == round((1 - t["accuracy"]) * n_test)
        rows = json.loads((workspace / f"plots/evaluate/{name}/confusion.json").read_text())
        assert len(rows) == n_test and set(rows[0]) == {"actual", "predicted"}
    assert set(ev["mcnemar"]) == {f"{a}_vs_{b}" for a, b in itertools.combinations(MODELS, 2)}
    summary = _json(workspace, "metrics/test.json")
    assert summary == {key: {name: ev[name]["test"][source] for name in MODELS}
                       for key, source in (("accuracy", "accuracy"), ("auc", "roc_auc"),
                                           ("balanced_accuracy", "balanced_accuracy"))}
    assert set(ev["mcnemar"]["baseline_vs_transfer"]) == {"p_value", "only_baseline_right", "only_transfer_right"}
    timing = _json(workspace, "metrics/timing.json")
    assert all(timing[m]["inference_images_per_s"] > 0 for m in MODELS)
    for png in ("training_history", "confusion_matrices", "roc", "calibration", "baseline/examples"):
        assert (workspace / f"plots/evaluate/{png}.png").is_file()
    report = (workspace / "metrics/report.md").read_text()
    assert "| baseline |" in report and "McNemar" in report and "SYNTHETIC" in report


def _leaves(node, prefix=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else key)
    else:
        yield prefix, node


# dvc.yaml lists the metrics files at top level (tests/test_pipeline_spec.py checks no stage does).
METRICS_FILES = yaml.safe_load((REPO / "dvc.yaml").read_text())["metrics"]


@pytest.mark.parametrize("rel", METRICS_FILES)
def test_metrics_files_hold_only_numbers(workspace, rel):
    """DVC tables stay readable: text, lists and settings live in the report and the model records."""
    for key, value in _leaves(_json(workspace, rel)):
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{rel}: {key} = {value!r}"


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_training_is_deterministic(workspace):
    """base.deterministic: two fresh runs on the same inputs give identical metrics and model bytes."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
    results = []
    for _ in range(2):
        done = subprocess.run([sys.executable, *stage_args("train_baseline")], cwd=workspace, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        assert re.search(r" train_baseline ran for [0-9]+\.[0-9] s$", done.stderr, re.MULTILINE)
        results.append((_json(workspace, "metrics/train_baseline.json"),
                        _md5(workspace / "models/train_baseline.keras")))
    assert results[0] == results[1]
