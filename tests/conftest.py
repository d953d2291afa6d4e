"""Shared fixtures: tiny Kaggle-format data sets that the tests generate themselves."""

from __future__ import annotations

import os
import runpy
import shutil
import sys
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from cosmic.learning.determinism import apply_cpu_determinism  # noqa: E402

# Stages run in-process here as `dvc repro` runs them: with base.deterministic's CPU settings, which
# TensorFlow reads only when it is imported.
apply_cpu_determinism(True)

from cosmic.data import kaggle_format as kf  # noqa: E402
from cosmic.data.synthetic import generate  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def stage_args(stage: str) -> list[str]:
    """The arguments after `python` of a stage's dvc.yaml command, e.g. ["-m", "stages.train", "train_baseline"]."""
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]["cmd"].split()[1:]


def run_stage_in_process(stage: str) -> None:
    """Run a stage in this interpreter as its dvc.yaml command would (`python -m ...` with its arguments)."""
    _, module, *args = stage_args(stage)
    saved = sys.argv
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=False)
    finally:
        sys.argv = saved


def stage_code(stage: str) -> str:
    """Python source that runs a stage as its dvc.yaml command does (for `python -c` with a signal handler set first)."""
    _, module, *args = stage_args(stage)
    return f"import runpy, sys; sys.argv = [{module!r}, *{args!r}]; runpy.run_module({module!r}, run_name='__main__')"
N_TINY = 60


@pytest.fixture(scope="session")
def kaggle_master(tmp_path_factory) -> Path:
    """One generated Kaggle-layout data set (CSV + JPEGs), never modified by tests."""
    out = tmp_path_factory.mktemp("kaggle_master")
    generate(out, N_TINY, seed=7, workers=1)
    return out


@pytest.fixture
def kaggle_dir(kaggle_master, tmp_path) -> Path:
    """A private copy of the tiny data set that a test may break."""
    out = tmp_path / "raw"
    shutil.copytree(kaggle_master, out)
    return out


def csv_lines(root: Path) -> list[str]:
    return (root / kf.SOLUTIONS_CSV).read_text().splitlines()


def write_csv_lines(root: Path, lines: list[str]) -> None:
    (root / kf.SOLUTIONS_CSV).write_text("\n".join(lines) + "\n")


def tiny_params(n_images: int = N_TINY, image_size: int = 32) -> dict:
    """params.yaml of the repository shrunk to a few seconds per stage (same code paths)."""
    import yaml

    p = yaml.safe_load((REPO / "params.yaml").read_text())
    p["fetch"]["synthetic"].update(n_images=n_images, workers=1)
    p["base"]["image_size"] = image_size
    p["filter"]["n_sample_images"] = 2
    p["preprocess"]["chunk_size"] = 16
    for stage in ("train_baseline", "train_optimized"):
        p[stage].update(epochs=1, batch_size=16)
    p["train_baseline"]["filters"] = [8, 16, 16]
    p["train_baseline"]["dense_units"] = 16
    p["train_transfer"].update(head_epochs=1, fine_tune_epochs=1, batch_size=16, alpha=0.35, input_size=32,
                               fine_tune_layers=5)
    p["tune"].update(max_trials=1, epochs_per_trial=1, batch_size=16)
    p["tune"]["space"].update(filters_block1=[8], filters_block2=[8, 16], filters_block3=[16], dense_units=[16])
    p["evaluate"].update(bootstrap_resamples=100, n_examples=2, batch_size=64)
    return p
