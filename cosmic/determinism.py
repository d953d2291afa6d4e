"""The CPU side of `base.deterministic`: TensorFlow settings that must be in place before it is imported.

oneDNN picks its kernels from the CPU's instruction set at run time (SSE4.1, AVX, AVX2,
AVX-512...), and different kernels round differently, so the same seed trains different
weights on different CPUs. TensorFlow uses oneDNN three ways on x86: its oneDNN ops
(TF_ENABLE_ONEDNN_OPTS; on by default only on CPUs with AVX-512 VNNI/BF16 or AMX, such as
AMD Zen 4/5), the sgemm inside its Eigen matrix products and convolutions
(TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL), and a direct sgemm call in some convolution
gradients that no switch turns off. The first two are turned off, so those ops run Eigen
code compiled into TensorFlow, the same on every CPU; the third is capped at AVX, which
every CPU that runs TensorFlow's x86 wheels has (ONEDNN_MAX_CPU_ISA). Eigen and oneDNN
split work by thread count, so the intra-op thread count is fixed too. TensorFlow reads all
of these once, when it loads.

`base.threads` sizes TensorFlow's intra-op and inter-op thread pools (so that parallel queued
experiments do not oversubscribe the cores) through the same variables, which TensorFlow 2.21
honours; its `tf.config.threading` getters still report 0 (tests/test_determinism.py counts the
threads instead). Under `base.deterministic` results are reproducible for each thread count, not
across thread counts.

This module must not import TensorFlow: stage scripts call it before anything else does.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

from cosmic import params

# Thread count of every op under `base.deterministic`: the pipeline's reference machine has 2 cores,
# and results change with this number (benchmarks/bench_determinism.py compare).
INTRA_OP_THREADS = 2

_INTRA = "TF_NUM_INTRAOP_THREADS"
_INTER = "TF_NUM_INTEROP_THREADS"


def thread_env(threads: int) -> dict[str, str]:
    """TensorFlow's thread-pool sizes for `base.threads`; 0 sets nothing (TensorFlow's own choice)."""
    if threads < 0:
        raise ValueError(f"threads is {threads}; expected 0 (TensorFlow's default) or a positive count")
    return {_INTRA: str(threads), _INTER: str(threads)} if threads else {}


def deterministic_env(threads: int = 0) -> dict[str, str]:
    """The deterministic CPU settings for `base.threads`: 0 keeps INTRA_OP_THREADS and TensorFlow's
    inter-op default (the committed run's settings)."""
    return {
        "TF_ENABLE_ONEDNN_OPTS": "0",
        "TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL": "0",
        "ONEDNN_MAX_CPU_ISA": "AVX",
        _INTRA: str(INTRA_OP_THREADS),
        **thread_env(threads),
    }


DETERMINISTIC_ENV = deterministic_env()


def cpu_settings_applied(threads: int | None = None) -> bool:
    """Whether the environment holds every deterministic CPU setting.

    Args:
        threads: the `base.threads` to check for; None accepts any fixed intra-op thread count,
            since results are reproducible for each count (what a caller that does not know the
            params, such as `training.set_determinism`, can check).
    """
    if threads is not None:
        return all(os.environ.get(k) == v for k, v in deterministic_env(threads).items())
    intra = os.environ.get(_INTRA, "")
    return (all(os.environ.get(k) == v for k, v in DETERMINISTIC_ENV.items() if k != _INTRA)
            and intra.isdigit() and int(intra) > 0)


def apply_cpu_determinism(deterministic: bool, threads: int = 0) -> bool:
    """Set the environment TensorFlow reads when it loads: `base.threads`' pool sizes and, with
    `deterministic`, the settings that make its CPU results machine-independent.

    Returns:
        Whether the deterministic settings are in effect. They are not when TensorFlow was
        imported before they were made (it reads them only once); that is warned about, not an
        error, so that code importing a stage module in a running interpreter (the tests) still works.
    """
    wanted = deterministic_env(threads) if deterministic else thread_env(threads)
    if not wanted:
        return False
    if "tensorflow" in sys.modules and not all(os.environ.get(k) == v for k, v in wanted.items()):
        what = ("base.deterministic: results may differ between CPUs" if deterministic
                else "base.threads: TensorFlow keeps the thread counts it started with")
        warnings.warn(f"TensorFlow was imported before its CPU settings {wanted} were made, so {what}; set them "
                      "in the environment or call cosmic.determinism.apply_cpu_determinism before importing "
                      "TensorFlow", RuntimeWarning, stacklevel=2)
        return False
    os.environ.update(wanted)
    return deterministic


def apply_from_params(path: Path | str | None = None) -> bool:
    """Apply `base.deterministic` and `base.threads` of params.yaml (what every stage that runs
    TensorFlow calls first).

    Returns:
        Whether the deterministic CPU settings are in effect. A missing or invalid params file
        is left for the stage's own validation to report.
    """
    try:
        base = params.base(params.load(path or params.PARAMS_FILE))
    except params.ParamError:
        return False
    return apply_cpu_determinism(base.deterministic, base.threads)
