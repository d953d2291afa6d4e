"""evaluate: the only stage that reads the test split; compares every model and writes the report."""

import logging

from cosmic import params, paths
from cosmic.data.imageops import crop_of
from cosmic.data.packing import load_splits
from cosmic.evaluation import report
from cosmic.evaluation.evaluate import (evaluate_saved_models, metrics_record, pairwise_mcnemar, summary_record,
                                        write_plots)
from cosmic.utils import write_json
from stages import run

STAGE = "evaluate"
log = logging.getLogger(STAGE)


def main(p: params.StageParams) -> None:
    """Evaluate every registered model on the test split; write metrics, plots and the report."""
    base = p.base
    (test,) = load_splits(paths.PROCESSED_DIR, ("test",), crop=crop_of(base),
                          image_size=base.image_size, class_names=base.class_names)
    evals = evaluate_saved_models(test, base.class_names, p.own, base.seed)
    tests = pairwise_mcnemar(evals, test.labels.astype(int))
    write_json(paths.TEST_SUMMARY, summary_record(evals))
    write_json(paths.stage_metrics(STAGE), metrics_record(evals, tests, base.class_names, len(test.labels)))
    write_json(paths.TIMING, {e.name: {"inference_images_per_s": e.images_per_s} for e in evals})
    write_plots(evals, test, base.class_names, p.own, paths.EVAL_PLOTS_DIR)
    report.write(paths.REPORT, evals, tests, base.class_names)
    log.info("report written to %s", paths.REPORT)


if __name__ == "__main__":
    run(STAGE, main, also=(ValueError,))
