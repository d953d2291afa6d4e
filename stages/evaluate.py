"""evaluate: the only stage that reads the test split; compares every model and writes the report."""

import logging
import sys

from cosmic.learning.determinism import apply_from_params

# base.deterministic's CPU settings take effect only if made before TensorFlow is imported.
apply_from_params()

from cosmic import params, paths, workspace  # noqa: E402

from cosmic.evaluation import report
from cosmic.evaluation.evaluate import (evaluate_saved_models, metrics_record, pairwise_mcnemar,  # noqa: E402
                               summary_record, write_plots)
from cosmic.data.imageops import crop_of  # noqa: E402
from cosmic.data.packing import load_splits  # noqa: E402
from cosmic.params import ParamError  # noqa: E402
from cosmic.utils import OutputError, setup_logging, write_json  # noqa: E402

STAGE = "evaluate"
log = logging.getLogger(STAGE)


def main() -> None:
    setup_logging()
    claim = workspace.claim()  # before anything is read or written
    raw = params.load()
    base, p = params.base(raw), params.evaluate(raw)
    (test,) = load_splits(paths.PROCESSED_DIR, ("test",), crop=crop_of(base.crop, base.crop_size, base.crop_factor), image_size=base.image_size,
                          class_names=base.class_names)
    evals = evaluate_saved_models(test, base.class_names, p, base.seed)
    tests = pairwise_mcnemar(evals, test.labels.astype(int))
    write_json(paths.TEST_SUMMARY, summary_record(evals))
    write_json(paths.stage_metrics(STAGE), metrics_record(evals, tests, base.class_names, len(test.labels)))
    write_json(paths.TIMING, {e.name: {"inference_images_per_s": e.images_per_s} for e in evals})
    write_plots(evals, test, base.class_names, p, paths.EVAL_PLOTS_DIR)
    report.write(paths.REPORT, evals, tests, base.class_names)
    log.info("report written to %s", paths.REPORT)
    claim.check()  # DVC records params.yaml once the stage exits: it must be what ran


if __name__ == "__main__":
    try:
        main()
    except (ParamError, FileNotFoundError, ValueError, OutputError, workspace.WorkspaceBusyError) as e:
        sys.exit(f"{STAGE}: {e}")
    except KeyboardInterrupt:
        sys.exit(f"{STAGE}: interrupted; no output was half-written, re-run the stage")
