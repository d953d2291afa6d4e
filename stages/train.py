"""Every model stage (`cosmic.registry.MODELS`): `python -m stages.train <stage>`, e.g. train_baseline.

The stage's recipe (`cosmic.learning.recipes.<model>`) builds its model and schedule from its params
section; `training.train` fits, saves and logs every model the same way.
"""

import sys

from cosmic import registry
from cosmic.learning import recipes
from cosmic.learning.training import train
from stages import run


def main(stage: str) -> None:
    """Train the model of `stage` with its params section."""
    recipe = getattr(recipes, registry.by_stage(stage).name)
    run(stage, lambda p: train(stage, p.base, p.own, recipe),
        interrupted="no model, metrics or training log was half-written")


if __name__ == "__main__":
    stages = [m.stage for m in registry.MODELS]
    if len(sys.argv) != 2 or sys.argv[1] not in stages:
        sys.exit(f"usage: python -m stages.train STAGE, where STAGE is one of {', '.join(stages)}")
    main(sys.argv[1])
