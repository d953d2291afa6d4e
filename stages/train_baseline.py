"""train_baseline: the reference's custom CNN with basic flips/rotations."""

import sys
from dataclasses import asdict

from cosmic import params
from cosmic.augment import basic_augment, with_domain_randomization
from cosmic.models import build_baseline
from cosmic.params import ParamError
from cosmic.training import Phase, TrainingError, run_stage, set_determinism
from cosmic.utils import setup_logging

STAGE = "train_baseline"


def main() -> None:
    setup_logging()
    raw = params.load()
    base, p = params.base(raw), params.train_baseline(raw)
    set_determinism(base.seed, base.deterministic)
    model = build_baseline(base.image_size, **asdict(p.cnn))
    run_stage(STAGE, model, [Phase("train", p.fit.epochs, p.fit.learning_rate)], base=base,
              batch_size=p.fit.batch_size, patience=p.fit.patience,
              augment=with_domain_randomization(basic_augment if p.augment == "basic" else None, base.domain),
              use_class_weight=p.fit.class_weight)


if __name__ == "__main__":
    try:
        main()
    except (ParamError, TrainingError, FileNotFoundError) as e:
        sys.exit(f"{STAGE}: {e}")
