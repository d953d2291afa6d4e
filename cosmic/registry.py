"""The models the pipeline trains: one entry each, read by paths, evaluation, plots, benchmarks and tests.

Adding a model (docs/pipeline.md, "Adding a model"): a builder in `cosmic.learning.models`, a params
section with its dataclass in `cosmic.params`, an entry here, and its stage in dvc.yaml, which
`tests/test_pipeline_spec.py` checks against this list.
"""

from __future__ import annotations

from dataclasses import dataclass

# A galaxy is called spiral when p(spiral) > THRESHOLD: the one decision threshold of the project.
THRESHOLD = 0.5


@dataclass(frozen=True)
class ModelEntry:
    """One trained model.

    Attributes:
        name: its name in metrics, reports and plots ("baseline").
        stage: the dvc.yaml stage and params.yaml section that train it; its model file is
            models/<stage>.keras.
        artifact: its name under dvc.yaml `artifacts` (for `dvc artifacts get` and GTO).
        description: one line for the artifact, the report and `--help` texts.
        colour: its colour in every chart (matplotlib and the Vega templates in .dvc/plots/).
    """

    name: str
    stage: str
    artifact: str
    description: str
    colour: str


# In training order, which is also the order of every table and legend. Colours: Vega's tableau10.
MODELS: tuple[ModelEntry, ...] = (
    ModelEntry("baseline", "train_baseline", "galaxy-cnn-baseline",
               "Three-block CNN trained from scratch (stage train_baseline); input 0-255 RGB crops, output p(spiral)",
               "#4c78a8"),
    ModelEntry("transfer", "train_transfer", "galaxy-mobilenetv2-transfer",
               "MobileNetV2 transfer model (stage train_transfer); ImageNet-pretrained only when the weights were "
               "available offline", "#f58518"),
    ModelEntry("optimized", "train_optimized", "galaxy-cnn-optimized",
               "CNN with the hyperparameters found by the tune stage (stage train_optimized)", "#54a24b"),
)


def model_names() -> tuple[str, ...]:
    """Every model's name, in training order."""
    return tuple(m.name for m in MODELS)


def by_name(name: str) -> ModelEntry:
    """The entry of the model called `name`.

    Raises:
        KeyError: naming the model and the known models.
    """
    for m in MODELS:
        if m.name == name:
            return m
    raise KeyError(f"no model is called {name!r}; the models are {', '.join(model_names())}")


def by_stage(stage: str) -> ModelEntry:
    """The entry of the model that `stage` trains.

    Raises:
        KeyError: naming the stage and the stages that train a model.
    """
    for m in MODELS:
        if m.stage == stage:
            return m
    raise KeyError(f"no model is trained by stage {stage!r}; the model stages are "
                   + ", ".join(m.stage for m in MODELS))
