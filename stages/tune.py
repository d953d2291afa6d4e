"""tune: KerasTuner search on train/val with the albumentations augmentation."""

import logging
import sys

from cosmic.utils import follow_parent

# A tuner chief or worker ends with the stage that started it, however the stage ends; this runs
# before TensorFlow's seconds-long import, so none can outlive a stage killed meanwhile.
follow_parent()

from cosmic.learning.determinism import apply_from_params  # noqa: E402

# base.deterministic's CPU settings take effect only if made before TensorFlow is imported.
apply_from_params()

from cosmic import params, paths, workspace  # noqa: E402

from cosmic.learning import distributed

from cosmic.evaluation import plots
from cosmic.learning.augment import stage_augment  # noqa: E402
from cosmic.learning.datasets import make_dataset  # noqa: E402
from cosmic.data.packing import StaleArraysError  # noqa: E402
from cosmic.params import ParamError  # noqa: E402
from cosmic.learning.training import TrainingError, load_train_val, set_determinism  # noqa: E402
from cosmic.learning.tuning import HyperModel, log_trials, make_tuner, run_search, search  # noqa: E402
from cosmic.utils import OutputError, atomic_path, setup_logging, write_json  # noqa: E402

STAGE = "tune"
log = logging.getLogger(STAGE)


def main() -> None:
    setup_logging()
    claim = workspace.claim()  # before anything is read or written
    raw = params.load()
    base, p = params.base(raw), params.tune(raw)
    if distributed.supervise_search("stages.tune", p.workers, p.timeout, paths.TUNER_WORKDIR):
        return  # the chief, a child process running this script, wrote the outputs below
    role = distributed.tuner_role()  # None: an in-process search; else KerasTuner's chief or a worker
    distributed.set_precision(base.mixed_precision)
    set_determinism(base.seed, base.deterministic)
    train, val = load_train_val(base)
    augment = stage_augment(p.augmentation, base.domain)
    train_ds = make_dataset(train, p.batch_size, shuffle=True, seed=base.seed, augment=augment)
    val_ds = make_dataset(val, p.batch_size)

    hypermodel = HyperModel(base.image_size, p.space, p.kernel_size)
    tuner = make_tuner(p.tuner, hypermodel, p.objective, p.max_trials, p.epochs_per_trial, base.seed,
                       paths.TUNER_WORKDIR, fresh=role is None)
    if role not in (None, distributed.CHIEF):
        search(tuner, train_ds, val_ds, p.epochs_per_trial)  # a worker: the chief holds the trials and the results
        return
    try:
        table, best = run_search(tuner, hypermodel, train_ds, val_ds, p.epochs_per_trial, p.objective, p.tuner)
    except RuntimeError as e:
        raise TrainingError(str(e)) from None
    write_json(paths.BEST_HPARAMS, best)
    with atomic_path(paths.TUNE_DIR / "trials.csv") as tmp:
        table.to_csv(tmp, index=False)
    log_trials(table, p.objective, paths.training_log(STAGE))
    plots.plot_trials(table, p.objective, paths.PLOTS_DIR / "tune_trials.png")
    write_json(paths.stage_metrics(STAGE), {f"best_{p.objective}": best["score"], "n_trials": int(len(table)),
                                            "best_hyperparameters": best["hyperparameters"]})
    log.info("best %s=%.4f with %s", p.objective, best["score"], best["hyperparameters"])
    claim.check()  # DVC records params.yaml once the stage exits: it must be what ran


if __name__ == "__main__":
    try:
        main()
    except (ParamError, TrainingError, StaleArraysError, FileNotFoundError, OutputError,
            workspace.WorkspaceBusyError) as e:
        sys.exit(f"{STAGE}: {e}")
    except KeyboardInterrupt:
        sys.exit(f"{STAGE}: interrupted; every search process was stopped and no result was written, "
                 "re-run the stage")
