"""dvc.yaml and params.yaml agree with the code: names, deps on shared modules, the test-split rule."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
STAGES = DVC["stages"]
TRAINING = ("train_baseline", "train_transfer", "tune", "train_optimized")
TEST_SPLIT_PATHS = ("data/processed/test", "data/split/test.csv")


def _cosmic_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "cosmic":
            if node.module == "cosmic":
                found |= {f"cosmic.{a.name}" for a in node.names}
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "cosmic"}
    return {m for m in found if (REPO / (m.replace(".", "/") + ".py")).is_file()}


def _closure(script: Path) -> set[str]:
    todo, seen = list(_cosmic_imports(script)), set()
    while todo:
        mod = todo.pop()
        if mod not in seen:
            seen.add(mod)
            todo += _cosmic_imports(REPO / (mod.replace(".", "/") + ".py"))
    return {m.replace(".", "/") + ".py" for m in seen}


def _deps(stage: str) -> list[str]:
    return [d if isinstance(d, str) else next(iter(d)) for d in STAGES[stage]["deps"]]


def test_stage_order_and_names():
    assert list(STAGES) == ["fetch", "filter", "split", "preprocess", "train_baseline", "train_transfer", "tune",
                            "train_optimized", "evaluate"]


@pytest.mark.parametrize("stage", list(STAGES))
def test_stage_script_params_and_module_deps(stage):
    script = f"stages/{stage}.py"
    assert STAGES[stage]["cmd"] == f"python -m stages.{stage}"
    assert (REPO / script).is_file()
    deps = _deps(stage)
    assert script in deps
    imported = _closure(REPO / script)
    missing = imported - set(deps)
    assert not missing, f"{stage} imports {sorted(missing)} but dvc.yaml does not list them as deps"
    # A listed module the stage does not import re-runs it (and everything after it) for nothing.
    unused = {d for d in deps if d.startswith("cosmic/")} - imported
    assert not unused, f"dvc.yaml lists {sorted(unused)} as deps of {stage}, which does not import them"
    sections = {str(p).split(".")[0] for p in STAGES[stage].get("params", [])}
    if stage in PARAMS:
        assert stage in sections, f"{stage} does not depend on its own params section"
    assert sections <= set(PARAMS)


@pytest.mark.parametrize("stage", TRAINING)
def test_no_training_stage_depends_on_the_test_split(stage):
    for dep in _deps(stage):
        assert dep not in ("data/processed", "data/split", "data"), f"{stage} depends on all of {dep}"
        assert not any(dep.startswith(t) for t in TEST_SPLIT_PATHS), f"{stage} depends on {dep}"


def test_only_evaluate_reads_the_test_split():
    readers = {s for s in STAGES if any(d.startswith("data/processed/test") for d in _deps(s))}
    assert readers == {"evaluate"}


def test_metrics_are_git_tracked_not_cached():
    for stage, spec in STAGES.items():
        for entry in spec.get("metrics", []):
            (path, opts), = entry.items()
            assert path.startswith("metrics/") and opts == {"cache": False}, (stage, path)


def test_plots_are_declared_for_dvc():
    declared = {}
    for entry in DVC["plots"]:
        if isinstance(entry, str):
            declared[entry] = {}
        else:
            (name, spec), = entry.items()
            declared[name] = spec or {}
    models = ("baseline", "transfer", "optimized")
    confusion = declared["Confusion matrices (test)"]
    # Predicted across, actual down: the layout of plots/evaluate/confusion_matrices.png.
    assert confusion["template"] == "confusion_counts" and confusion["x"] == "predicted"
    assert confusion["y"] == {f"plots/evaluate/{m}/confusion.json": "actual" for m in models}
    roc = declared["ROC (test)"]
    assert roc["template"] == "roc_models" and roc["x"] == "fpr" and len(roc["y"]) == 3
    # One chart per metric overlaying every model's train and val (DVCLive's eval/) curves.
    for metric, name in (("loss", "loss"), ("accuracy", "accuracy"), ("auc", "AUC")):
        curves = declared[f"Training {name}"]
        assert curves["template"] == "training_models" and curves["x"] == "step"
        assert curves["y"] == {f"plots/training/train_{m}/plots/metrics/{split}/{metric}.tsv": metric
                               for m in models for split in ("train", "eval")}
    assert declared["plots/training/tune/plots/metrics"]["template"] == "trials"
    for png in ("plots/evaluate/calibration.png", "plots/evaluate/roc.png", "plots/evaluate/training_history.png",
                "plots/evaluate/baseline/examples.png", "plots/data/vote_fractions.png"):
        assert png in declared
