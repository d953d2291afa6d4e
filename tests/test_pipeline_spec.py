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

from cosmic import paths, registry
from cosmic.utils import write_json
from tests.conftest import REPO

DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
STAGES = DVC["stages"]
TRAINING = ("train_baseline", "train_transfer", "tune", "train_optimized")
TEST_SPLIT_PATHS = ("data/processed/test", "data/split/test.csv")
DVC_BIN = Path(sys.executable).parent / "dvc"


def _module_file(module: str) -> Path | None:
    """The file a module name imports, for this repository's packages (their docstring-only __init__ aside)."""
    path = REPO / (module.replace(".", "/") + ".py")
    if path.is_file():
        return path
    package = REPO / module.replace(".", "/") / "__init__.py"
    return package if module == "stages" and package.is_file() else None


def _local_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("cosmic", "stages"):
            # `from cosmic.data import packing` imports a module; `from cosmic.data.packing import x` a name.
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] in ("cosmic", "stages")}
    return {m for m in found if _module_file(m) is not None}


def _closure(script: Path) -> set[str]:
    """Every file of this repository that running `script` imports, relative to the repository."""
    todo, seen = list(_local_imports(script)), set()
    while todo:
        mod = todo.pop()
        if mod not in seen:
            seen.add(mod)
            todo += _local_imports(_module_file(mod))
    return {_module_file(m).relative_to(REPO).as_posix() for m in seen}


def _script(stage: str) -> str:
    """The stage's script, from its dvc.yaml command (`python -m stages.<module> [args]`)."""
    module = STAGES[stage]["cmd"].split()[2]
    return module.replace(".", "/") + ".py"


def _deps(stage: str) -> list[str]:
    return [d if isinstance(d, str) else next(iter(d)) for d in STAGES[stage]["deps"]]


def test_stage_order_and_names():
    assert list(STAGES) == ["fetch", "filter", "split", "preprocess", "train_baseline", "train_transfer", "tune",
                            "train_optimized", "evaluate"]


def _declared_plots(dvc: dict) -> dict[str, dict]:
    """dvc.yaml's plots by name (a chart's title or a file's path) -> their options."""
    declared = {}
    for entry in dvc["plots"]:
        if isinstance(entry, str):
            declared[entry] = {}
        else:
            (name, spec), = entry.items()
            declared[name] = spec or {}
    return declared


def registry_mismatches(dvc: dict) -> list[str]:
    """What a dvc.yaml lacks, or has beyond, for the models of `cosmic.registry` (empty when they agree)."""
    from cosmic.learning import recipes

    problems = []
    stages, models = dvc["stages"], registry.MODELS
    model_stages = [s for s, spec in stages.items() if spec["cmd"].startswith("python -m stages.train ")]
    if model_stages != [m.stage for m in models]:
        problems.append(f"model stages {model_stages}, registry {[m.stage for m in models]}")
    evaluate_deps = {d if isinstance(d, str) else next(iter(d)) for d in stages["evaluate"]["deps"]}
    plots = _declared_plots(dvc)
    for m in models:
        spec = stages.get(m.stage)
        if spec is None:
            problems.append(f"no stage {m.stage}")
        if not callable(getattr(recipes, m.name, None)):
            problems.append(f"no recipe cosmic.learning.recipes.{m.name}")
        if m.stage not in PARAMS:
            problems.append(f"no params.yaml section {m.stage}")
        outs = {o if isinstance(o, str) else next(iter(o)) for o in (spec or {}).get("outs", [])}
        owned = {paths.model_file(m.stage).as_posix(), paths.training_log(m.stage).as_posix(),
                 paths.stage_metrics(m.stage).as_posix()}
        problems += [f"{m.stage} does not write {o}" for o in sorted(owned - outs) if spec]
        problems += [f"evaluate does not depend on {o}" for o in sorted(owned - evaluate_deps)]
        if paths.stage_metrics(m.stage).as_posix() not in dvc["metrics"]:
            problems.append(f"metrics does not list {paths.stage_metrics(m.stage).as_posix()}")
        for chart, kind in (("ROC (test)", "roc"), ("Precision-recall (test)", "precision_recall"),
                            ("Confusion matrices (test)", "confusion")):
            if f"plots/evaluate/{m.name}/{kind}.json" not in plots.get(chart, {}).get("y", {}):
                problems.append(f"plot {chart!r} lacks plots/evaluate/{m.name}/{kind}.json")
        for metric, chart in (("loss", "loss"), ("accuracy", "accuracy"), ("auc", "AUC")):
            for split in ("train", "eval"):
                curve = f"{paths.training_log(m.stage).as_posix()}/plots/metrics/{split}/{metric}.tsv"
                if curve not in plots.get(f"Training {chart}", {}).get("y", {}):
                    problems.append(f"plot 'Training {chart}' lacks {curve}")
        if f"plots/evaluate/{m.name}/examples.png" not in plots:
            problems.append(f"plots does not list plots/evaluate/{m.name}/examples.png")
        artifact = dvc.get("artifacts", {}).get(m.artifact)
        if artifact is None or artifact.get("path") != paths.model_file(m.stage).as_posix() \
                or artifact.get("desc") != m.description:
            problems.append(f"artifact {m.artifact} is not {paths.model_file(m.stage)} with the registry's description")
    if set(dvc.get("artifacts", {})) != {m.artifact for m in models}:
        problems.append(f"artifacts {sorted(dvc.get('artifacts', {}))}, registry {[m.artifact for m in models]}")
    return problems


def test_dvc_yaml_agrees_with_the_model_registry():
    assert registry_mismatches(DVC) == []


def test_a_model_missing_from_dvc_yaml_is_named():
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    del dvc["stages"]["train_transfer"], dvc["artifacts"]["galaxy-mobilenetv2-transfer"]
    dvc["plots"].remove("plots/evaluate/transfer/examples.png")
    problems = registry_mismatches(dvc)
    assert "no stage train_transfer" in problems, problems
    assert "plots does not list plots/evaluate/transfer/examples.png" in problems, problems
    assert any(p.startswith("artifact galaxy-mobilenetv2-transfer") for p in problems), problems


def test_subpackage_inits_only_document():
    """A package __init__ that ran code would be a dependency of every stage that imports the package."""
    for init in (REPO / "cosmic").glob("*/__init__.py"):
        body = ast.parse(init.read_text()).body
        assert len(body) == 1 and isinstance(body[0], ast.Expr), f"{init} holds code"


@pytest.mark.parametrize("stage", list(STAGES))
def test_stage_script_params_and_module_deps(stage):
    models = {m.stage for m in registry.MODELS}
    expected = f"python -m stages.train {stage}" if stage in models else f"python -m stages.{stage}"
    assert STAGES[stage]["cmd"] == expected
    script = _script(stage)
    assert (REPO / script).is_file()
    deps = _deps(stage)
    assert script in deps
    imported = _closure(REPO / script)
    missing = imported - set(deps)
    assert not missing, f"{stage} imports {sorted(missing)} but dvc.yaml does not list them as deps"
    # A listed module the stage does not import re-runs it (and everything after it) for nothing.
    unused = {d for d in deps if d.startswith(("cosmic/", "stages/"))} - imported - {script}
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
             for name in registry.model_names()]
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
    models = sorted(registry.model_names())
    assert header[:10] == ["Path"] + [f"{m}.{model}" for m in ("accuracy", "auc", "balanced_accuracy")
                                      for model in models], header[:12]


def test_plots_are_declared_for_dvc():
    declared = _declared_plots(DVC)
    models = registry.model_names()
    confusion = declared["Confusion matrices (test)"]
    # Predicted across, actual down: the layout of plots/evaluate/confusion_matrices.png.
    assert confusion["template"] == "confusion_counts" and confusion["x"] == "predicted"
    assert confusion["y"] == {f"plots/evaluate/{m}/confusion.json": "actual" for m in models}
    roc = declared["ROC (test)"]
    assert roc["template"] == "roc_models" and roc["x"] == "fpr" and len(roc["y"]) == len(models)
    # One chart per metric overlaying every model's train and val (DVCLive's eval/) curves.
    for metric, name in (("loss", "loss"), ("accuracy", "accuracy"), ("auc", "AUC")):
        curves = declared[f"Training {name}"]
        assert curves["template"] == "training_models" and curves["x"] == "step"
        assert curves["y"] == {f"plots/training/{registry.by_name(m).stage}/plots/metrics/{split}/{metric}.tsv": metric
                               for m in models for split in ("train", "eval")}
    assert declared["plots/training/tune/plots/metrics"]["template"] == "trials"
    for png in ("plots/evaluate/calibration.png", "plots/data/vote_fractions.png",
                *(f"plots/evaluate/{m}/examples.png" for m in models)):
        assert png in declared
    # The `dvc plots show` page shows each chart once: these PNGs draw what the charts above do.
    for png in ("plots/evaluate/roc.png", "plots/evaluate/confusion_matrices.png",
                "plots/evaluate/training_history.png", "plots/tune_trials.png"):
        assert png not in declared, f"{png} repeats a chart of the dvc plots show page"
