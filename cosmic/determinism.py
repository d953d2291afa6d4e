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

DETERMINISTIC_ENV = {
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL": "0",
    "ONEDNN_MAX_CPU_ISA": "AVX",
    "TF_NUM_INTRAOP_THREADS": str(INTRA_OP_THREADS),
}


def cpu_settings_applied() -> bool:
    """Whether the environment holds every deterministic CPU setting."""
    return all(os.environ.get(k) == v for k, v in DETERMINISTIC_ENV.items())


def apply_cpu_determinism(deterministic: bool) -> bool:
    """With `deterministic`, set the environment that makes TensorFlow's CPU results machine-independent.

    Returns:
        Whether the settings are in effect. They are not when TensorFlow was imported before
        they were made (it reads them only once); that is warned about, not an error, so that
        code importing a stage module in a running interpreter (the tests) still works.
    """
    if not deterministic:
        return False
    if "tensorflow" in sys.modules and not cpu_settings_applied():
        warnings.warn("base.deterministic: TensorFlow was imported before its deterministic CPU settings "
                      f"{DETERMINISTIC_ENV} were made, so results may differ between CPUs; set them in the "
                      "environment or call cosmic.determinism.apply_cpu_determinism before importing TensorFlow",
                      RuntimeWarning, stacklevel=2)
        return False
    os.environ.update(DETERMINISTIC_ENV)
    return True


def apply_from_params(path: Path | str | None = None) -> bool:
    """Apply `base.deterministic` of params.yaml (what every stage that runs TensorFlow calls first).

    Returns:
        Whether the deterministic CPU settings are in effect. A missing or invalid params file
        is left for the stage's own validation to report.
    """
    try:
        deterministic = params.base(params.load(path or params.PARAMS_FILE)).deterministic
    except params.ParamError:
        return False
    return apply_cpu_determinism(deterministic)
