"""Every file and folder the pipeline reads or writes, relative to the repository root."""

from __future__ import annotations

from pathlib import Path

DATA = Path("data")
RAW_DIR = DATA / "raw"
# Where data/raw came from (synthetic generator or Kaggle files), written by fetch.
SOURCE_NAME = "SOURCE.json"
SOURCE_RECORD = RAW_DIR / SOURCE_NAME
KAGGLE_DIR = DATA / "external" / "galaxy-zoo"
WEIGHTS_DIR = DATA / "external" / "weights"
FILTERED_DIR = DATA / "filtered"
CATALOG = FILTERED_DIR / "catalog.csv"
DROPPED = FILTERED_DIR / "dropped.csv"
# What filter read and how (source, threshold, unexpected columns): text, so not in metrics/data.json.
FILTER_SUMMARY = FILTERED_DIR / "summary.json"
SPLIT_DIR = DATA / "split"
PROCESSED_DIR = DATA / "processed"
SPLITS = ("train", "val", "test")

MODELS_DIR = Path("models")
TUNE_DIR = MODELS_DIR / "tune"
TUNER_WORKDIR = TUNE_DIR / "search"
BEST_HPARAMS = TUNE_DIR / "best_hparams.json"

METRICS_DIR = Path("metrics")
PLOTS_DIR = Path("plots")


def split_manifest(split: str) -> Path:
    """Manifest CSV of one split."""
    return SPLIT_DIR / f"{split}.csv"


def model_file(stage: str) -> Path:
    """Saved Keras model of a training stage."""
    return MODELS_DIR / f"{stage}.keras"


def stage_metrics(stage: str) -> Path:
    """Git-tracked metrics JSON of a stage."""
    return METRICS_DIR / f"{stage}.json"


def training_log(stage: str) -> Path:
    """DVCLive folder of a stage's per-epoch (or per-trial) metrics."""
    return PLOTS_DIR / "training" / stage

EVAL_PLOTS_DIR = PLOTS_DIR / "evaluate"
REPORT = METRICS_DIR / "report.md"
# Each model's test accuracy, balanced accuracy and ROC AUC: the first metrics file in dvc.yaml, so
# `dvc metrics show` and `dvc exp show` lead with it (metrics/evaluate.json has every test figure).
TEST_SUMMARY = METRICS_DIR / "test.json"
# Machine-dependent timings: git-ignored and not a DVC output, so re-runs leave git and dvc.lock clean.
TIMING = METRICS_DIR / "timing.json"
