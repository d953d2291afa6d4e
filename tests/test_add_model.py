"""Adding a model takes the four steps of docs/pipeline.md ("Adding a model"), and nothing else.

A copy of the repository gets a throwaway fourth model, "tiny", by exactly those steps: a builder,
a params section, a recipe and a registry entry, and its dvc.yaml stage. The copy's pipeline spec
then agrees with its registry, and the model trains and is evaluated beside the others on the tiny
configuration.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, tiny_params
from tests.test_distributed import prepared  # noqa: F401  (fixture: the tiny data stages' outputs)

pytestmark = pytest.mark.slow

BUILDER = '''

def build_tiny(image_size: int, units: int = 8, name: str = "tiny") -> keras.Model:
    """A throwaway model: pooled colours and one hidden layer."""
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = layers.Rescaling(1.0 / 255, name="scale_0_1")(inputs)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(units, activation="relu", name="dense")(x)
    outputs = layers.Dense(1, activation="sigmoid", dtype=output_dtype(), name=OUTPUT_LAYER)(x)
    return keras.Model(inputs, outputs, name=name)
'''

SECTION = '''

@dataclass(frozen=True)
class TrainTiny:
    units: int = integer(1, help="hidden units")
    epochs: int = integer(1, help="most epochs of training")
    learning_rate: float = number(0, 1, low_open=True, help="Adam's learning rate")
    fit: Fit = inline(Fit, help="how the model is fitted")


def train_tiny(raw: Mapping[str, Any]) -> TrainTiny:
    """Validate the `train_tiny` section."""
    return _read(TrainTiny, raw, "train_tiny")


'''

RECIPE = '''

def tiny(base: Base, p, dist: Distribution) -> Recipe:
    """The throwaway model, trained in one phase."""
    from cosmic.learning.models import build_tiny

    with dist.scope():
        model = build_tiny(base.image_size, p.units)
    return Recipe(model, [Phase("train", p.epochs, p.learning_rate)])
'''

ENTRY = '''
MODELS = (*MODELS, ModelEntry("tiny", "train_tiny", "galaxy-tiny", "Throwaway model (stage train_tiny)", "#e45756"))
'''


def _append(path: Path, text: str, before: str | None = None) -> None:
    source = path.read_text()
    if before is None:
        path.write_text(source + text)
    else:
        assert before in source, f"{path} no longer has {before!r}"
        path.write_text(source.replace(before, text + before, 1))


def _add_tiny_model(repo: Path) -> None:
    """The four steps of docs/pipeline.md, "Adding a model"."""
    # 1. A builder.
    _append(repo / "cosmic/learning/models.py", BUILDER)
    # 2. A params section: its dataclass, registered, and its values.
    params = repo / "cosmic/params.py"
    _append(params, SECTION, before="# --- Every section")
    _append(params, ' "train_tiny": (TrainTiny, train_tiny),', before="\n}\nSECTIONS")
    p = tiny_params()
    p["train_tiny"] = {"units": 8, "epochs": 1, "learning_rate": 0.01, **{k: p["train_baseline"][k] for k in (
        "batch_size", "patience", "class_weight", "augment")}}
    (repo / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    # 3. A recipe and a registry entry.
    _append(repo / "cosmic/learning/recipes.py", RECIPE)
    _append(repo / "cosmic/registry.py", ENTRY, before="\n\ndef model_names")
    # 4. Its dvc.yaml stage, the evaluate deps, plots and artifact that the spec test asks for.
    spec = yaml.safe_load((repo / "dvc.yaml").read_text())
    stage = json.loads(json.dumps(spec["stages"]["train_baseline"]).replace("train_baseline", "train_tiny"))
    stages = list(spec["stages"].items())
    spec["stages"] = dict(stages[:-1] + [("train_tiny", stage), stages[-1]])
    spec["stages"]["evaluate"]["deps"] += ["models/train_tiny.keras", "metrics/train_tiny.json",
                                           "plots/training/train_tiny"]
    spec["metrics"].append("metrics/train_tiny.json")
    for entry in spec["plots"]:
        if isinstance(entry, dict):
            (_, chart), = entry.items()
            y = chart.get("y", {}) if isinstance(chart, dict) else {}
            for path, field in list(y.items()):
                if "/baseline/" in path or "/train_baseline/" in path:
                    y[path.replace("baseline", "tiny")] = field
    spec["plots"].append("plots/evaluate/tiny/examples.png")
    spec["artifacts"]["galaxy-tiny"] = {"path": "models/train_tiny.keras", "type": "model",
                                        "desc": "Throwaway model (stage train_tiny)"}
    (repo / "dvc.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


@pytest.fixture(scope="module")
def four_models(prepared, tmp_path_factory) -> Path:  # noqa: F811  (the imported fixture)
    """A copy of the repository with the tiny model added, its data stages' outputs, every model stage and evaluate run."""
    repo = tmp_path_factory.mktemp("four_models")
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in tracked.split():
        if name.startswith(("cosmic/", "stages/", "tests/")) or name in ("dvc.yaml", "params.yaml"):
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / name, repo / name)
    for folder in ("data", "metrics", "plots"):
        shutil.copytree(prepared / folder, repo / folder)
    _add_tiny_model(repo)
    env = {**os.environ, "PYTHONPATH": str(repo), "TF_CPP_MIN_LOG_LEVEL": "2"}
    commands = [s["cmd"].split()[1:] for name, s in yaml.safe_load((repo / "dvc.yaml").read_text())["stages"].items()
                if name not in ("fetch", "filter", "split", "preprocess")]
    for args in commands:
        done = subprocess.run([sys.executable, *args], cwd=repo, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, (args, done.stderr[-3000:])
    return repo


def test_the_copy_spec_agrees_with_its_registry(four_models):
    code = ("from tests.test_pipeline_spec import DVC, registry_mismatches; import sys; "
            "problems = registry_mismatches(DVC); sys.exit('\\n'.join(problems) or None)")
    done = subprocess.run([sys.executable, "-c", code], cwd=four_models, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(four_models), "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_evaluate_reports_the_fourth_model(four_models):
    metrics = json.loads((four_models / "metrics/evaluate.json").read_text())
    assert {"baseline", "transfer", "optimized", "tiny"} <= set(metrics)
    assert 0 <= metrics["tiny"]["test"]["roc_auc"] <= 1
    assert {"baseline_vs_tiny", "optimized_vs_tiny"} <= set(metrics["mcnemar"])
    summary = json.loads((four_models / "metrics/test.json").read_text())
    assert set(summary["auc"]) == {"baseline", "transfer", "optimized", "tiny"}
    assert "| tiny |" in (four_models / "metrics/report.md").read_text()
    for path in ("plots/evaluate/tiny/examples.png", "plots/evaluate/tiny/roc.json", "models/train_tiny.keras"):
        assert (four_models / path).is_file(), path
