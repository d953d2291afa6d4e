"""tune: KerasTuner search on train/val with the albumentations augmentation."""

import logging
import os
import sys

from cosmic.determinism import apply_from_params

# base.deterministic's CPU settings take effect only if made before TensorFlow is imported.
apply_from_params()

from cosmic import distributed, params, paths, plots  # noqa: E402
from cosmic.augment import AlbumentationsBatch, with_domain_randomization  # noqa: E402
from cosmic.data import make_dataset  # noqa: E402
from cosmic.params import ParamError  # noqa: E402
from cosmic.training import TrainingError, load_train_val, set_determinism  # noqa: E402
from cosmic.tuning import HyperModel, log_trials, make_tuner, run_search, search  # noqa: E402
from cosmic.utils import setup_logging, write_json  # noqa: E402

STAGE = "tune"
log = logging.getLogger(STAGE)


def main() -> None:
    setup_logging()
    raw = params.load()
    base, p = params.base(raw), params.tune(raw)
    role = distributed.tuner_role()  # None: this is the stage; else KerasTuner's chief or a worker
    if p.workers > 1 and role is None:
        # The chief (which writes the outputs below) and the workers are this script in child processes.
        distributed.clear_tuner_dir(paths.TUNER_WORKDIR)
        command, env = distributed.python_command("stages.tune")
        port = os.environ.get(distributed.ORACLE_PORT_ENV)
        distributed.run_tuner_cluster(command, p.workers, p.timeout, env=env,
                                      host=os.environ.get(distributed.ORACLE_IP_ENV), port=int(port) if port else None)
        return
    distributed.set_precision(base.mixed_precision)
    set_determinism(base.seed, base.deterministic)
    train, val = load_train_val(paths.PROCESSED_DIR, base.image_size)
    augment = with_domain_randomization(AlbumentationsBatch(p.augment).tf_apply, base.domain)
    train_ds = make_dataset(train, p.batch_size, shuffle=True, seed=base.seed, augment=augment)
    val_ds = make_dataset(val, p.batch_size)

    tuner = make_tuner(p.tuner, HyperModel(base.image_size, p.space, p.kernel_size), p.objective,
                       p.max_trials, p.epochs_per_trial, base.seed, paths.TUNER_WORKDIR, fresh=role is None)
    if role not in (None, distributed.CHIEF):
        search(tuner, train_ds, val_ds, p.epochs_per_trial)  # a worker: the chief holds the trials and the results
        return
    try:
        table, best = run_search(tuner, train_ds, val_ds, p.epochs_per_trial, p.objective, p.kernel_size, p.tuner)
    except RuntimeError as e:
        raise TrainingError(str(e)) from None
    write_json(paths.BEST_HPARAMS, best)
    table.to_csv(paths.TUNE_DIR / "trials.csv", index=False)
    log_trials(table, p.objective, paths.PLOTS_DIR / "training" / STAGE)
    plots.plot_trials(table, p.objective, paths.PLOTS_DIR / "tune_trials.png")
    write_json(paths.stage_metrics(STAGE), {f"best_{p.objective}": best["score"], "n_trials": int(len(table)),
                                            "best_hyperparameters": best["hyperparameters"]})
    log.info("best %s=%.4f with %s", p.objective, best["score"], best["hyperparameters"])


if __name__ == "__main__":
    try:
        main()
    except (ParamError, TrainingError, FileNotFoundError) as e:
        sys.exit(f"{STAGE}: {e}")
