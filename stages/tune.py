"""tune: KerasTuner search on train/val with the albumentations augmentation."""

import logging

from cosmic import params, paths
from cosmic.evaluation import plots
from cosmic.learning import cluster, strategies
from cosmic.learning.augment import stage_augment
from cosmic.learning.datasets import make_dataset
from cosmic.learning.errors import TrainingError
from cosmic.learning.training import load_train_val, set_determinism
from cosmic.learning.tuning import HyperModel, log_trials, make_tuner, run_search, search
from cosmic.utils import atomic_path, write_json
from stages import run

STAGE = "tune"
log = logging.getLogger(STAGE)


def main(p: params.StageParams) -> None:
    """Search `tune.space`, in this process or as KerasTuner's chief and workers; write the best trial."""
    base, t = p.base, p.own
    if cluster.supervise_search("stages.tune", t.workers, t.timeout, paths.TUNER_WORKDIR):
        return  # the chief, a child process running this script, wrote the outputs below
    role = cluster.tuner_role()  # None: an in-process search; else KerasTuner's chief or a worker
    strategies.set_precision(base.mixed_precision)
    set_determinism(base.seed, base.deterministic)
    train, val = load_train_val(base)
    augment = stage_augment(t.augmentation, base.domain)
    train_ds = make_dataset(train, t.batch_size, shuffle=True, seed=base.seed, augment=augment)
    val_ds = make_dataset(val, t.batch_size)

    hypermodel = HyperModel(base.image_size, t.space, t.kernel_size, t.input_scaling)
    tuner = make_tuner(t.tuner, hypermodel, t.objective, t.max_trials, t.epochs_per_trial, base.seed,
                       paths.TUNER_WORKDIR, fresh=role is None)
    if role not in (None, cluster.CHIEF):
        search(tuner, train_ds, val_ds, t.epochs_per_trial)  # a worker: the chief holds the trials and the results
        return
    try:
        table, best = run_search(tuner, hypermodel, train_ds, val_ds, t.epochs_per_trial, t.objective, t.tuner)
    except RuntimeError as e:
        raise TrainingError(str(e)) from None
    write_json(paths.BEST_HPARAMS, best)
    with atomic_path(paths.TUNE_DIR / "trials.csv") as tmp:
        table.to_csv(tmp, index=False)
    log_trials(table, t.objective, paths.training_log(STAGE))
    plots.plot_trials(table, t.objective, paths.PLOTS_DIR / "tune_trials.png")
    write_json(paths.stage_metrics(STAGE), {f"best_{t.objective}": best["score"], "n_trials": int(len(table)),
                                            "best_hyperparameters": best["hyperparameters"]})
    log.info("best %s=%.4f with %s", t.objective, best["score"], best["hyperparameters"])


if __name__ == "__main__":
    run(STAGE, main, interrupted="every search process was stopped and no result was written")
