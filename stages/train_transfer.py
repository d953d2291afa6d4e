"""train_transfer: MobileNetV2 head training, then fine-tuning of its top layers."""

import sys
from functools import partial

from cosmic import params
from cosmic.augment import basic_augment
from cosmic.models import build_transfer, unfreeze_top
from cosmic.params import ParamError
from cosmic.training import Phase, TrainingError, run_stage, set_determinism
from cosmic.utils import setup_logging
from cosmic.weights import WeightsError, resolve_mobilenet_weights

STAGE = "train_transfer"


def main() -> None:
    setup_logging()
    raw = params.load()
    base, p = params.base(raw), params.train_transfer(raw)
    set_determinism(base.seed, base.deterministic)
    weights = resolve_mobilenet_weights(p.weights, p.alpha, p.input_size, p.on_missing_weights)
    model, backbone = build_transfer(base.image_size, p.input_size, p.alpha, p.dropout, weights.path)
    phases = [
        Phase("head", p.head_epochs, p.fit.learning_rate),
        Phase("fine_tune", p.fine_tune_epochs, p.fine_tune_lr, before=partial(unfreeze_top, backbone,
                                                                             p.fine_tune_layers)),
    ]
    run_stage(STAGE, model, phases, base=base, batch_size=p.fit.batch_size, patience=p.fit.patience,
              augment=basic_augment if p.augment == "basic" else None, use_class_weight=p.fit.class_weight,
              extra_metrics={**weights.as_metrics(), "input_size": p.input_size})


if __name__ == "__main__":
    try:
        main()
    except (ParamError, TrainingError, WeightsError, FileNotFoundError) as e:
        sys.exit(f"{STAGE}: {e}")
