"""train_optimized: the tuner's best CNN trained from scratch with the albumentations pipeline."""

import sys

from cosmic.learning.determinism import apply_from_params

# base.deterministic's CPU settings take effect only if made before TensorFlow is imported.
apply_from_params()

from cosmic import params, paths, workspace  # noqa: E402

from cosmic.learning import distributed
from cosmic.learning.models import tuned_baseline  # noqa: E402
from cosmic.data.packing import StaleArraysError  # noqa: E402
from cosmic.params import ParamError  # noqa: E402
from cosmic.learning.training import Phase, TrainingError, run_stage, set_determinism  # noqa: E402
from cosmic.utils import OutputError, read_json, setup_logging  # noqa: E402

STAGE = "train_optimized"


def main() -> None:
    setup_logging()
    claim = workspace.claim()  # before anything is read or written
    raw = params.load()
    base, p = params.base(raw), params.train_optimized(raw)
    # Before any TensorFlow op: MultiWorkerMirroredStrategy can only be created then.
    dist = distributed.setup(base.strategy, base.mixed_precision)
    set_determinism(base.seed, base.deterministic)
    best = read_json(paths.BEST_HPARAMS)
    with dist.scope():
        model, learning_rate = tuned_baseline(base.image_size, best, paths.BEST_HPARAMS)
    run_stage(STAGE, model, [Phase("train", p.epochs, learning_rate)], base=base, fit_params=p.fit,
              record={"hyperparameters": best["hyperparameters"]}, distribution=dist)
    claim.check()  # DVC records params.yaml once the stage exits: it must be what ran


if __name__ == "__main__":
    try:
        main()
    except (ParamError, TrainingError, StaleArraysError, FileNotFoundError, ValueError, OutputError,
            workspace.WorkspaceBusyError) as e:
        sys.exit(f"{STAGE}: {e}")
    except KeyboardInterrupt:
        sys.exit(f"{STAGE}: interrupted; no model, metrics or training log was half-written, re-run the stage")
