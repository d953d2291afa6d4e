"""The CPU side of `base.deterministic`: TensorFlow settings that must be in place before it is imported.

What makes the same seed train different weights on different x86 CPUs (measured with
benchmarks/bench_determinism.py, which presents other CPUs' caches and instruction sets to TensorFlow):

- Instruction sets. oneDNN picks its kernels from the CPU at run time, and different kernels
  round differently. `ONEDNN_MAX_CPU_ISA` caps the choice (`base.cpu_isa`): every CPU that has
  the capped set runs the same kernels.
- Cache sizes. Eigen's matrix products and convolutions cut long sums into blocks whose length
  it derives from the L1/L2 sizes it reads with CPUID; the convolution filter gradients (a sum
  over batch × height × width) then add the same numbers in another order on a CPU with another
  L1 size. oneDNN's own ops (`TF_ENABLE_ONEDNN_OPTS=1`, TensorFlow's default on CPUs with
  AVX-512 VNNI/BF16 or AMX) sum in an order that does not depend on the caches, so they are
  turned on everywhere: reproducible and fast.
- Threads. Eigen and oneDNN split work by thread count, so the intra-op thread count is fixed.

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

# `base.cpu_isa` -> oneDNN's name of the instruction-set cap. avx512: the kernels TensorFlow itself
# picks for float32 on AVX-512 and AMX CPUs; avx2: the same kernels on AVX2 CPUs too, but slower.
CPU_ISA = {"avx512": "AVX512_CORE", "avx2": "AVX2"}

_INTRA = "TF_NUM_INTRAOP_THREADS"
_INTER = "TF_NUM_INTEROP_THREADS"
# Every variable through which the environment can change TensorFlow's CPU results: what a process
# that must run with a clean slate (tests, benchmarks) removes before setting its own.
CPU_ENV_KEYS = ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA", "TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL",
                _INTRA, _INTER)


def thread_env(threads: int) -> dict[str, str]:
    """TensorFlow's thread-pool sizes for `base.threads`; 0 sets nothing (TensorFlow's own choice)."""
    if threads < 0:
        raise ValueError(f"threads is {threads}; expected 0 (TensorFlow's default) or a positive count")
    return {_INTRA: str(threads), _INTER: str(threads)} if threads else {}


def deterministic_env(threads: int = 0, cpu_isa: str = "avx512") -> dict[str, str]:
    """The deterministic CPU settings for `base.threads` and `base.cpu_isa`.

    Raises:
        ValueError: `cpu_isa` is not a key of CPU_ISA.
    """
    if cpu_isa not in CPU_ISA:
        raise ValueError(f"cpu_isa is {cpu_isa!r}; expected one of {sorted(CPU_ISA)}")
    return {"TF_ENABLE_ONEDNN_OPTS": "1", "ONEDNN_MAX_CPU_ISA": CPU_ISA[cpu_isa], _INTRA: str(INTRA_OP_THREADS),
            **thread_env(threads)}


DETERMINISTIC_ENV = deterministic_env()


def cpu_settings_applied(threads: int | None = None, cpu_isa: str | None = None) -> bool:
    """Whether the environment holds every deterministic CPU setting.

    Args:
        threads: the `base.threads` to check for; None accepts any fixed intra-op thread count,
            since results are reproducible for each count.
        cpu_isa: the `base.cpu_isa` to check for; None accepts any of CPU_ISA. None for both is
            what a caller that does not know the params, such as `training.set_determinism`, checks.
    """
    if os.environ.get("TF_ENABLE_ONEDNN_OPTS") != "1":
        return False
    if cpu_isa is None and os.environ.get("ONEDNN_MAX_CPU_ISA") not in CPU_ISA.values():
        return False
    if cpu_isa is not None and os.environ.get("ONEDNN_MAX_CPU_ISA") != CPU_ISA[cpu_isa]:
        return False
    if threads is not None:
        return all(os.environ.get(k) == v for k, v in deterministic_env(threads).items() if k.startswith("TF_NUM"))
    intra = os.environ.get(_INTRA, "")
    return intra.isdigit() and int(intra) > 0


def apply_cpu_determinism(deterministic: bool, threads: int = 0, cpu_isa: str = "avx512") -> bool:
    """Set the environment TensorFlow reads when it loads: `base.threads`' pool sizes and, with
    `deterministic`, the settings that make its CPU results the same on every CPU with `cpu_isa`.

    Returns:
        Whether the deterministic settings are in effect. They are not when TensorFlow was
        imported before they were made (it reads them only once); that is warned about, not an
        error, so that code importing a stage module in a running interpreter (the tests) still works.
    """
    wanted = deterministic_env(threads, cpu_isa) if deterministic else thread_env(threads)
    if not wanted:
        return False
    if "tensorflow" in sys.modules and not all(os.environ.get(k) == v for k, v in wanted.items()):
        what = ("base.deterministic: results may differ between CPUs" if deterministic
                else "base.threads: TensorFlow keeps the thread counts it started with")
        warnings.warn(f"TensorFlow was imported before its CPU settings {wanted} were made, so {what}; set them "
                      "in the environment or call cosmic.learning.determinism.apply_cpu_determinism before importing "
                      "TensorFlow", RuntimeWarning, stacklevel=2)
        return False
    if deterministic:
        # A contraction-kernel choice left in the environment (the earlier setting of this module) would
        # change which code sums; TensorFlow's default is the one measured.
        os.environ.pop("TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL", None)
    os.environ.update(wanted)
    return deterministic


def apply_from_params(path: Path | str | None = None) -> bool:
    """Apply `base.deterministic`, `base.threads` and `base.cpu_isa` of params.yaml (what every stage
    that runs TensorFlow calls first).

    Returns:
        Whether the deterministic CPU settings are in effect. A missing or invalid params file
        is left for the stage's own validation to report.
    """
    try:
        base = params.base(params.load(path or params.PARAMS_FILE))
    except params.ParamError:
        return False
    return apply_cpu_determinism(base.deterministic, base.threads, base.cpu_isa)
