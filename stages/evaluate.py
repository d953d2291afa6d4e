"""evaluate: the only stage that reads the test split; compares every model and writes the report."""

import json
import logging
import sys

from cosmic.determinism import apply_from_params

# base.deterministic's CPU settings take effect only if made before TensorFlow is imported.
apply_from_params()

from cosmic import params, paths, plots, report  # noqa: E402
from cosmic.evaluation import (confusion_rows, evaluate_model, headline, inference_throughput,  # noqa: E402
                               mcnemar_headline, pairwise_mcnemar)
from cosmic.metrics import calibration_curve, pr_points, roc_points  # noqa: E402
from cosmic.modelio import load_model  # noqa: E402
from cosmic.packing import load_splits  # noqa: E402
from cosmic.params import ParamError  # noqa: E402
from cosmic.utils import read_json, setup_logging, write_json  # noqa: E402

STAGE = "evaluate"
log = logging.getLogger(STAGE)


def main() -> None:
    setup_logging()
    raw = params.load()
    base, p = params.base(raw), params.evaluate(raw)
    (test,) = load_splits(paths.PROCESSED_DIR, ("test",), crop_size=base.crop_size, image_size=base.image_size,
                          class_names=base.class_names)
    names = base.class_names
    results, evals, timing, notes = {}, [], {}, []
    for name, stage in paths.MODEL_STAGES.items():
        model, record = load_model(paths.model_file(stage))
        train_metrics, training = read_json(paths.stage_metrics(stage)), record.get("training", {})
        ev = evaluate_model(name, model, test, names, tta=p.tta, batch_size=p.batch_size,
                            bootstrap_resamples=p.bootstrap_resamples, ci_level=p.ci_level,
                            calibration_bins=p.calibration_bins, seed=base.seed)
        evals.append(ev)
        results[name] = {"test": ev.metrics, "n_params": train_metrics["n_params"],
                         "model_bytes": train_metrics["model_bytes"], "pretrained": training.get("pretrained"),
                         "kept_epoch": train_metrics["kept_epoch"]}
        timing[name] = {"inference_images_per_s": inference_throughput(model, test.images, p.batch_size)}
        if training.get("pretrained") is False:
            notes.append(f"The {name} model was NOT pretrained: {training.get('weights_note')}")

        out = paths.EVAL_PLOTS_DIR / name
        out.mkdir(parents=True, exist_ok=True)
        (out / "confusion.json").write_text(json.dumps(confusion_rows(test.labels, ev.p, names)) + "\n")
        write_json(out / "roc.json", {"roc": roc_points(test.labels, ev.p)})
        write_json(out / "precision_recall.json", {"precision_recall": pr_points(test.labels, ev.p)})
        plots.plot_examples(test.images, test.labels.astype(int), ev.p, test.ids, names, p.n_examples,
                            f"{name}: test predictions", out / "examples.png")

    tests = pairwise_mcnemar(evals, test.labels.astype(int))
    write_json(paths.stage_metrics(STAGE), {**{n: {"test": headline(r["test"], names)} for n, r in results.items()},
                                            "mcnemar": mcnemar_headline(tests), "n_test": int(len(test.labels))})
    write_json(paths.TIMING, timing)

    plots.plot_confusions({n: r["test"]["confusion_matrix"] for n, r in results.items()}, names,
                          paths.EVAL_PLOTS_DIR / "confusion_matrices.png")
    plots.plot_roc({e.name: roc_points(test.labels, e.p) for e in evals},
                   {n: r["test"]["roc_auc"] for n, r in results.items()}, paths.EVAL_PLOTS_DIR / "roc.png")
    plots.plot_calibration({e.name: calibration_curve(test.labels, e.p, p.calibration_bins) for e in evals},
                           paths.EVAL_PLOTS_DIR / "calibration.png")
    plots.plot_histories({n: plots.read_live_history(paths.training_log(s))
                          for n, s in paths.MODEL_STAGES.items()}, paths.EVAL_PLOTS_DIR / "training_history.png",
                         kept_epochs={n: r["kept_epoch"] for n, r in results.items()})

    data_counts = {**read_json(paths.stage_metrics("data")), **read_json(paths.FILTER_SUMMARY)}
    source = data_counts["source"]
    if source == "synthetic":
        notes.append("The data are SYNTHETIC Galaxy Zoo-like cutouts (fetch.source: synthetic), not SDSS images.")
    paths.REPORT.write_text(report.render(results, tests, data_counts,
                                          read_json(paths.stage_metrics("split")), names, source, notes))
    log.info("report written to %s", paths.REPORT)


if __name__ == "__main__":
    try:
        main()
    except (ParamError, FileNotFoundError, ValueError) as e:
        sys.exit(f"{STAGE}: {e}")
