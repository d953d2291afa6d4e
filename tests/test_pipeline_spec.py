"""dvc.yaml and params.yaml agree with the code: names, deps on shared modules, the test-split rule."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from cosmic import paths
from cosmic.utils import write_json
from tests.conftest import REPO

DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
STAGES = DVC["stages"]
TRAINING = ("train_baseline", "train_transfer", "tune", "train_optimized")
TEST_SPLIT_PATHS = ("data/processed/test", "data/split/test.csv")
DVC_BIN = Path(sys.executable).parent / "dvc"


def _cosmic_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "cosmic":
            # `from cosmic.data import packing` imports a module; `from cosmic.data.packing import x` a name.
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
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


def _metrics_outputs() -> dict[str, dict]:
    """metrics/*.json outputs of the stages -> their options."""
    out = {}
    for spec in STAGES.values():
        for entry in spec.get("outs", []):
            if isinstance(entry, dict):
                (path, opts), = entry.items()
                if path.startswith("metrics/") and path.endswith(".json"):
                    out[path] = opts
    return out


def test_metrics_are_git_tracked_and_listed_summary_first():
    # DVC reads a stage's own `metrics:` before the top-level list, in stage order, so any would put
    # filter's data counts ahead of the models in `dvc exp show`.
    assert not [s for s, spec in STAGES.items() if "metrics" in spec]
    outputs = _metrics_outputs()
    assert all(opts == {"cache": False} for opts in outputs.values()), outputs
    assert sorted(DVC["metrics"]) == sorted(outputs), "every metrics/*.json output is listed once as a metric"
    assert DVC["metrics"][0] == paths.TEST_SUMMARY.as_posix()
    assert {paths.TEST_SUMMARY.as_posix(): {"cache": False}} in STAGES["evaluate"]["outs"]


@pytest.fixture(scope="module")
def metrics_repo(tmp_path_factory) -> Path:
    """A bare DVC repo with this dvc.yaml, the committed metrics files and a metrics/test.json."""
    if not DVC_BIN.exists():
        pytest.skip(f"no dvc next to {sys.executable}")
    from cosmic.evaluation.evaluate import ModelEval, summary_record

    root = tmp_path_factory.mktemp("metrics_repo")
    (root / "metrics").mkdir()
    for path in set(DVC["metrics"]) - {paths.TEST_SUMMARY.as_posix()}:
        shutil.copy(REPO / path, root / path)
    evals = [ModelEval(name, np.zeros(1), {"accuracy": 0.9, "roc_auc": 0.95, "balanced_accuracy": 0.9})
             for name in paths.MODEL_STAGES]
    write_json(root / paths.TEST_SUMMARY, summary_record(evals))
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    (root / ".dvc").mkdir()
    (root / ".dvc" / "config").write_text("[core]\n    no_scm = true\n    analytics = false\n")
    return root


def _dvc(root: Path, *args: str) -> str:
    res = subprocess.run([str(DVC_BIN), *args], cwd=root, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_dvc_reads_the_metrics_files_summary_first(metrics_repo):
    # `dvc exp show` takes its metric columns in this order, file by file.
    shown = json.loads(_dvc(metrics_repo, "metrics", "show", "--json"))
    assert list(shown[""]["data"]) == DVC["metrics"]


def test_dvc_metrics_show_leads_with_each_models_test_figures(metrics_repo):
    header = _dvc(metrics_repo, "metrics", "show").splitlines()[0].split()
    models = sorted(paths.MODEL_STAGES)
    assert header[:10] == ["Path"] + [f"{m}.{model}" for m in ("accuracy", "auc", "balanced_accuracy")
                                      for model in models], header[:12]


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
    for png in ("plots/evaluate/calibration.png", "plots/data/vote_fractions.png",
                *(f"plots/evaluate/{m}/examples.png" for m in models)):
        assert png in declared
    # The `dvc plots show` page shows each chart once: these PNGs draw what the charts above do.
    for png in ("plots/evaluate/roc.png", "plots/evaluate/confusion_matrices.png",
                "plots/evaluate/training_history.png", "plots/tune_trials.png"):
        assert png not in declared, f"{png} repeats a chart of the dvc plots show page"
