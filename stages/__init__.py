"""The pipeline's stages, run by DVC as `python -m stages.<stage>` (model stages: `python -m stages.train <stage>`).

Python imports this package before any stage module, so this is where the process is prepared for
TensorFlow, which reads its CPU settings once, when it loads: `base.deterministic`, `base.threads`
and `base.cpu_isa` go into the environment first, then the stages that use TensorFlow load it without
its import banners. A tuner chief or worker (a child of the tune stage) also ties its life to the
stage here, before TensorFlow's seconds-long import, so that none outlives a stage killed meanwhile.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any, Callable

from cosmic import params, workspace
from cosmic.cli import import_tensorflow_quietly
from cosmic.learning.determinism import apply_from_params
from cosmic.utils import StageError, follow_parent, setup_logging

# The stages that load TensorFlow, as `python -m` runs them (tune also as its chief and workers).
TENSORFLOW_STAGES = ("stages.train", "stages.tune", "stages.evaluate")


def _module_run() -> str | None:
    """The module of `python -m MODULE`, which imports this package before it sets `__main__`."""
    argv = sys.orig_argv
    i = argv.index("-m") if "-m" in argv else len(argv)
    return argv[i + 1] if i + 1 < len(argv) else None


# TensorFlow's C++ warnings drown a stage's log: two 1,000-character "Error in PredictCost()" lines per
# epoch for the domain randomisation's crop_and_resize, harmless (tensorflow/tensorflow#56904). Its
# errors still show; TF_CPP_MIN_LOG_LEVEL=0 in the shell brings the warnings back.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
follow_parent()
apply_from_params()
if _module_run() in TENSORFLOW_STAGES:
    # Loaded here, after the CPU settings, so that its import banners (which advise turning off the
    # oneDNN kernels these settings chose) stay out of the stage's log.
    import_tensorflow_quietly()


def run(stage: str, main: Callable[[params.StageParams], Any], *, also: tuple[type[Exception], ...] = (),
        interrupted: str = "no output was half-written") -> None:
    """Run a stage's `main` with its params as DVC expects: errors in one line, params.yaml as it ran.

    Claims the workspace (one `dvc exp run` at a time), validates the params.yaml it claimed once
    (`base` and the stage's own section), calls `main`, then checks that params.yaml still holds
    what it ran with, since DVC records the file once the stage exits. Only a stage that succeeded
    logs its run time (`<stage> ran for N s`).

    Args:
        stage: the dvc.yaml stage, which is also its params section and its name in messages.
        main: what the stage does, given its validated params.
        also: further exception types reported in one line, besides `StageError`, `ParamError`
            and `FileNotFoundError`.
        interrupted: what a Ctrl-C leaves behind, for its one-line message.
    """
    start = time.monotonic()
    try:
        setup_logging()
        claim = workspace.claim()  # before anything is read or written
        main(params.read(stage, text=claim.params or None))  # exactly the params.yaml it claimed
        claim.check()
    except (StageError, params.ParamError, FileNotFoundError, *also) as e:
        sys.exit(f"{stage}: {e}")
    except KeyboardInterrupt:
        sys.exit(f"{stage}: interrupted; {interrupted}, re-run the stage")
    logging.getLogger(stage).info("%s ran for %.1f s", stage, time.monotonic() - start)
