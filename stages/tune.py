"""tune: KerasTuner search on train/val with the albumentations augmentation."""

import logging
import sys

import keras
from dvclive import Live

from cosmic import params, paths, plots
from cosmic.augment import AlbumentationsBatch
from cosmic.data import make_dataset
from cosmic.params import ParamError
from cosmic.training import TrainingError, load_train_val, set_determinism
from cosmic.tuning import HyperModel, make_oracle_file_reproducible, make_tuner, trials_table
from cosmic.utils import setup_logging, write_json

STAGE = "tune"
log = logging.getLogger(STAGE)


def main() -> None:
    setup_logging()
    raw = params.load()
    base, p = params.base(raw), params.tune(raw)
    set_determinism(base.seed, base.deterministic)
    train, val = load_train_val(paths.PROCESSED_DIR, base.image_size)
    augment = AlbumentationsBatch(p.augment).tf_apply
    train_ds = make_dataset(train, p.fit.batch_size, shuffle=True, seed=base.seed, augment=augment)
    val_ds = make_dataset(val, p.fit.batch_size)

    tuner = make_tuner(p.tuner, HyperModel(base.image_size, p.space, p.kernel_size), p.objective,
                       p.max_trials, p.epochs_per_trial, base.seed, paths.TUNER_WORKDIR)
    tuner.search(train_ds, validation_data=val_ds, epochs=p.epochs_per_trial, shuffle=False, verbose=2,
                 callbacks=[keras.callbacks.TerminateOnNaN()])

    make_oracle_file_reproducible(paths.TUNER_WORKDIR)
    table = trials_table(tuner)
    if table["score"].isna().all():
        raise TrainingError("tune: no trial finished with a score; see the log above")
    best_trial = tuner.oracle.get_best_trials(1)[0]
    best = {"hyperparameters": best_trial.hyperparameters.values, "kernel_size": p.kernel_size,
            "objective": p.objective, "score": round(float(best_trial.score), 6), "trial": best_trial.trial_id,
            "tuner": p.tuner}
    write_json(paths.BEST_HPARAMS, best)
    table.to_csv(paths.TUNE_DIR / "trials.csv", index=False)
    # DVCLive's Keras callback cannot be deep-copied by KerasTuner, so trials are logged afterwards.
    with Live(str(paths.PLOTS_DIR / "training" / STAGE), save_dvc_exp=False, dvcyaml=False) as live:
        for score in table["score"]:
            live.log_metric(f"trial/{p.objective}", float("nan") if score is None else score)
            live.next_step()
    plots.plot_trials(table, p.objective, paths.PLOTS_DIR / "tune_trials.png")
    write_json(paths.stage_metrics(STAGE), {"best_score": best["score"], "objective": p.objective,
                                            "n_trials": int(len(table)), "best_trial": best["trial"],
                                            "best_hyperparameters": best["hyperparameters"]})
    log.info("best %s=%.4f with %s", p.objective, best["score"], best["hyperparameters"])


if __name__ == "__main__":
    try:
        main()
    except (ParamError, TrainingError, FileNotFoundError) as e:
        sys.exit(f"{STAGE}: {e}")
