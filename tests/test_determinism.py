"""base.deterministic: the same weights bit for bit whatever instruction set and cores the CPU has."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from cosmic import determinism
from tests.conftest import REPO

# Trains a small CNN and a small MobileNetV2 (depthwise convolutions, batch norm) through the stages'
# own fit, augmentation and domain randomisation, and saves every weight.
TRAIN_SCRIPT = """
import sys
from cosmic.determinism import apply_cpu_determinism
apply_cpu_determinism(sys.argv[1] == "1")
import numpy as np
from cosmic import params
from cosmic.augment import basic_augment, with_domain_randomization
from cosmic.models import build_baseline, build_transfer
from cosmic.packing import Arrays
from cosmic.training import Phase, fit, set_determinism

set_determinism(42, True)
rng = np.random.default_rng(0)
images = rng.integers(0, 256, (48, 32, 32, 3), dtype=np.uint8)
labels = (np.arange(48) % 2).astype(np.uint8)
train, val = Arrays(images[:32], labels[:32], np.arange(32)), Arrays(images[32:], labels[32:], np.arange(16))
augment = with_domain_randomization(basic_augment, params.base(params.load(sys.argv[3])).domain)
weights = {}
for name, model in (("cnn", build_baseline(32, (8, 16), 3, 16, 0.5)),
                    ("mobilenet", build_transfer(32, 32, 0.35, 0.2, freeze_base=False)[0])):
    fit(model, train, val, phases=[Phase("train", 2, 1e-3)], batch_size=16, patience=2, seed=42, augment=augment)
    weights.update({f"{name}/{i}": np.asarray(w) for i, w in enumerate(model.weights)})
np.savez(sys.argv[2], **weights)
"""


def _train(tmp_path, env: dict, cpus: str | None) -> tuple[dict, str]:
    """Weights after training in a fresh interpreter with `env` on CPUs `cpus`, and its oneDNN log."""
    out = tmp_path / f"{len(list(tmp_path.iterdir()))}.npz"
    full = {k: v for k, v in os.environ.items() if k not in determinism.DETERMINISTIC_ENV}
    full.update(env, ONEDNN_VERBOSE="1", TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    pin = ["taskset", "-c", cpus] if cpus else []
    done = subprocess.run([*pin, sys.executable, "-c", TRAIN_SCRIPT, "1", str(out), str(REPO / "params.yaml")],
                          env=full, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(out) as z:
        return {k: z[k] for k in z.files}, done.stdout


def _primitives(onednn_log: str) -> set[str]:
    prefix = "onednn_verbose,v1,primitive,exec,"
    return {line.split(",")[5] for line in onednn_log.splitlines() if line.startswith(prefix)}


def test_deterministic_training_is_bit_identical_across_instruction_sets_and_cores(tmp_path):
    """As on two other CPUs: oneDNN allowed AVX2 and its own ops on 2 cores (TensorFlow's default on AMD
    Zen 4/5 and recent Intel), or only SSE4.1 on 1 core; base.deterministic overrides both alike."""
    wide, wide_log = _train(tmp_path, {"ONEDNN_MAX_CPU_ISA": "AVX2", "TF_ENABLE_ONEDNN_OPTS": "1"}, None)
    cpus = "0" if shutil.which("taskset") and len(os.sched_getaffinity(0)) > 1 else None
    narrow, narrow_log = _train(tmp_path, {"ONEDNN_MAX_CPU_ISA": "SSE41"}, cpus)
    for log in (wide_log, narrow_log):
        # Only the sgemm of some convolution gradients, which no switch turns off, and capped at AVX.
        assert _primitives(log) <= {"gemm_api"} and "isa:Intel AVX\n" in log
    assert wide.keys() == narrow.keys()
    differ = [k for k in wide if wide[k].tobytes() != narrow[k].tobytes()]
    assert not differ, f"{len(differ)} of {len(wide)} weights differ, first {differ[0]}"


def test_apply_sets_the_environment_before_tensorflow(monkeypatch):
    for key in determinism.DETERMINISTIC_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    assert not determinism.apply_cpu_determinism(False) and not determinism.cpu_settings_applied()
    assert determinism.apply_cpu_determinism(True)
    assert determinism.cpu_settings_applied()
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0" and os.environ["ONEDNN_MAX_CPU_ISA"] == "AVX"


def test_apply_after_tensorflow_warns_and_reports_not_applied(monkeypatch):
    for key in determinism.DETERMINISTIC_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setitem(sys.modules, "tensorflow", object())
    with pytest.warns(RuntimeWarning, match="imported before"):
        assert not determinism.apply_cpu_determinism(True)
    assert not determinism.cpu_settings_applied()


def test_params_decide(tmp_path, monkeypatch):
    for key in determinism.DETERMINISTIC_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    text = (REPO / "params.yaml").read_text()
    assert "deterministic: true" in text
    off = tmp_path / "off.yaml"
    off.write_text(text.replace("deterministic: true", "deterministic: false"))
    assert not determinism.apply_from_params(off) and not determinism.cpu_settings_applied()
    assert determinism.apply_from_params(REPO / "params.yaml") and determinism.cpu_settings_applied()


@pytest.mark.parametrize("stage", ["train_baseline", "train_transfer", "tune", "train_optimized", "evaluate"])
def test_stage_scripts_apply_it_before_importing_tensorflow(stage):
    """Importing a stage as `dvc repro` runs it leaves TensorFlow loaded with the settings, and no warning."""
    env = {k: v for k, v in os.environ.items() if k not in determinism.DETERMINISTIC_ENV}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    code = (f"import sys; import stages.{stage}\n"
            "from cosmic.determinism import cpu_settings_applied\n"
            "assert 'tensorflow' in sys.modules and cpu_settings_applied()\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and "imported before" not in done.stderr, done.stderr[-3000:]


THREAD_VARS = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


@pytest.fixture
def clean_cpu_env(monkeypatch):
    for key in {*determinism.DETERMINISTIC_ENV, *THREAD_VARS}:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)


def test_threads_zero_keeps_the_deterministic_settings_and_tensorflows_inter_op_default(clean_cpu_env):
    # Exactly the settings of the committed run, from before base.threads existed.
    assert determinism.DETERMINISTIC_ENV == determinism.deterministic_env(0) == {
        "TF_ENABLE_ONEDNN_OPTS": "0", "TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL": "0", "ONEDNN_MAX_CPU_ISA": "AVX",
        "TF_NUM_INTRAOP_THREADS": "2"}
    assert determinism.apply_cpu_determinism(True, threads=0)
    assert {k: os.environ[k] for k in determinism.DETERMINISTIC_ENV} == determinism.DETERMINISTIC_ENV
    assert os.environ["TF_NUM_INTRAOP_THREADS"] == str(determinism.INTRA_OP_THREADS)
    assert "TF_NUM_INTEROP_THREADS" not in os.environ


def test_threads_set_both_pools_with_and_without_determinism(clean_cpu_env):
    assert determinism.apply_cpu_determinism(True, threads=3)
    assert os.environ["TF_NUM_INTRAOP_THREADS"] == os.environ["TF_NUM_INTEROP_THREADS"] == "3"
    assert os.environ["ONEDNN_MAX_CPU_ISA"] == "AVX"
    # Reproducible per thread count: the checks that know the count demand it; the generic one accepts it.
    assert determinism.cpu_settings_applied(3) and determinism.cpu_settings_applied()
    assert not determinism.cpu_settings_applied(0) and not determinism.cpu_settings_applied(4)

    for key in {*determinism.DETERMINISTIC_ENV, *THREAD_VARS}:
        os.environ.pop(key)
    assert not determinism.apply_cpu_determinism(False, threads=1)
    assert {k: os.environ.get(k) for k in THREAD_VARS} == dict.fromkeys(THREAD_VARS, "1")
    assert "ONEDNN_MAX_CPU_ISA" not in os.environ and not determinism.cpu_settings_applied()
    with pytest.raises(ValueError, match="threads is -1"):
        determinism.thread_env(-1)


def test_threads_after_tensorflow_warns(clean_cpu_env, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", object())
    with pytest.warns(RuntimeWarning, match="base.threads: TensorFlow keeps the thread counts"):
        assert not determinism.apply_cpu_determinism(False, threads=2)
    assert "TF_NUM_INTEROP_THREADS" not in os.environ


def test_params_threads_reach_the_environment(tmp_path, clean_cpu_env):
    text = (REPO / "params.yaml").read_text()
    assert "\n  threads: 0\n" in text
    four = tmp_path / "four.yaml"
    four.write_text(text.replace("\n  threads: 0\n", "\n  threads: 4\n"))
    assert determinism.apply_from_params(four) and determinism.cpu_settings_applied(4)


# How many threads TensorFlow runs after a matrix product and a convolution, with base.threads applied
# through params.yaml: its inter-op pool threads are named tf_Compute; its intra-op (Eigen) threads
# are unnamed, so they are counted as the rest.
THREAD_COUNT_SCRIPT = """
import collections, json, os, sys
from cosmic.determinism import apply_from_params
assert apply_from_params(sys.argv[1])
import tensorflow as tf
a = tf.random.normal((256, 256))
tf.matmul(a, a)
tf.nn.conv2d(tf.random.normal((4, 32, 32, 3)), tf.random.normal((3, 3, 3, 8)), 1, "SAME")
names = collections.Counter(open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task"))
print(json.dumps({"inter": names["tf_Compute"], "total": sum(names.values())}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
def test_tensorflow_runs_the_thread_counts_of_base_threads(tmp_path):
    """TF 2.21 honours TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS (its tf.config getters report 0)."""
    text = (REPO / "params.yaml").read_text()
    env = {k: v for k, v in os.environ.items() if k not in {*determinism.DETERMINISTIC_ENV, *THREAD_VARS}}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    counts = {}
    for n in (1, 3):
        path = tmp_path / f"threads{n}.yaml"
        path.write_text(text.replace("\n  threads: 0\n", f"\n  threads: {n}\n"))
        done = subprocess.run([sys.executable, "-c", THREAD_COUNT_SCRIPT, str(path)], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        counts[n] = json.loads(done.stdout.splitlines()[-1])
    assert counts[1]["inter"] == 1 and counts[3]["inter"] == 3, counts
    # Two more inter-op and two more intra-op threads; everything else TensorFlow starts is the same.
    assert counts[3]["total"] - counts[1]["total"] == 4, counts
