"""train_transfer: MobileNetV2 head training, then fine-tuning of its top layers."""

import sys

from cosmic.learning.determinism import apply_from_params

# base.deterministic's CPU settings take effect only if made before TensorFlow is imported.
apply_from_params()

from cosmic import params, workspace  # noqa: E402

from cosmic.learning import distributed
from cosmic.learning.models import build_transfer  # noqa: E402
from cosmic.data.packing import StaleArraysError  # noqa: E402
from cosmic.params import ParamError  # noqa: E402
from cosmic.learning.training import TrainingError, run_stage, set_determinism, transfer_schedule  # noqa: E402
from cosmic.utils import OutputError, setup_logging  # noqa: E402
from cosmic.learning.weights import WeightsError, resolve_mobilenet_weights  # noqa: E402

STAGE = "train_transfer"


def main() -> None:
    setup_logging()
    claim = workspace.claim()  # before anything is read or written
    raw = params.load()
    base, p = params.base(raw), params.train_transfer(raw)
    # Before any TensorFlow op: MultiWorkerMirroredStrategy can only be created then.
    dist = distributed.setup(base.strategy, base.mixed_precision)
    set_determinism(base.seed, base.deterministic)
    weights = resolve_mobilenet_weights(p.weights, p.alpha, p.input_size, p.on_missing_weights)
    with dist.scope():
        model, backbone = build_transfer(base.image_size, p.input_size, p.alpha, p.dropout, weights.path,
                                         freeze_base=weights.pretrained)
    phases = transfer_schedule(backbone, weights.pretrained, p.head_epochs, p.learning_rate,
                               p.fine_tune_epochs, p.fine_tune_lr, p.fine_tune_layers)
    run_stage(STAGE, model, phases, base=base, fit_params=p.fit,
              record={**weights.as_record(), "input_size": p.input_size,
                      "schedule": "head + fine_tune" if weights.pretrained else "scratch"},
              distribution=dist)
    claim.check()  # DVC records params.yaml once the stage exits: it must be what ran


if __name__ == "__main__":
    try:
        main()
    except (ParamError, TrainingError, StaleArraysError, WeightsError, FileNotFoundError, OutputError,
            workspace.WorkspaceBusyError) as e:
        sys.exit(f"{STAGE}: {e}")
    except KeyboardInterrupt:
        sys.exit(f"{STAGE}: interrupted; no model, metrics or training log was half-written, re-run the stage")
