"""What each model stage trains: its params mapped to its builder's arguments and its schedule of phases.

One function per entry of `cosmic.registry.MODELS`, named after the model, as a KerasTuner hypermodel
maps `hp` to a builder's arguments; `training.train` runs every recipe with the same training loop.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import keras

from cosmic import paths
from cosmic.learning.models import build_baseline, build_transfer, resolve_scaling, tuned_baseline
from cosmic.learning.strategies import Distribution
from cosmic.learning.training import Phase, transfer_schedule
from cosmic.learning.weights import resolve_mobilenet_weights
from cosmic.params import Base, TrainBaseline, TrainOptimized, TrainTransfer
from cosmic.utils import read_json


@dataclass(frozen=True)
class Recipe:
    """A built, uncompiled model and how to train it.

    Attributes:
        model: built in the scope of the stage's `Distribution`.
        phases: the fits to run, in order.
        record: how it was trained beyond the phases (weights, tuned hyperparameters), saved in the
            model file under "training".
    """

    model: keras.Model
    phases: list[Phase]
    record: dict = field(default_factory=dict)


def baseline(base: Base, p: TrainBaseline, dist: Distribution) -> Recipe:
    """The reference's three-block CNN, trained from scratch in one phase."""
    with dist.scope():
        model = build_baseline(base.image_size, **asdict(p.cnn))
    return Recipe(model, [Phase("train", p.epochs, p.learning_rate)])


def transfer(base: Base, p: TrainTransfer, dist: Distribution) -> Recipe:
    """MobileNetV2: head training, then fine-tuning of its top layers (one phase from scratch without weights)."""
    weights = resolve_mobilenet_weights(p.weights, p.alpha, p.input_size, p.on_missing_weights)
    scaling = resolve_scaling(p.input_scaling, weights.pretrained)
    with dist.scope():
        model, backbone = build_transfer(base.image_size, p.input_size, p.alpha, p.dropout, weights.path,
                                         freeze_base=weights.pretrained, scaling=scaling)
    phases = transfer_schedule(backbone, weights.pretrained, p.head_epochs, p.learning_rate, p.fine_tune_epochs,
                               p.fine_tune_lr, p.fine_tune_layers)
    return Recipe(model, phases, {**weights.as_record(), "input_size": p.input_size, "input_scaling": scaling,
                                  "schedule": "head + fine_tune" if weights.pretrained else "scratch"})


def optimized(base: Base, p: TrainOptimized, dist: Distribution) -> Recipe:
    """The baseline CNN with the tune stage's best hyperparameters and learning rate."""
    best = read_json(paths.BEST_HPARAMS)
    with dist.scope():
        model, learning_rate = tuned_baseline(base.image_size, best, paths.BEST_HPARAMS)
    return Recipe(model, [Phase("train", p.epochs, learning_rate)], {"hyperparameters": best["hyperparameters"],
                                                                   "input_scaling": best["model"]["scaling"]})
