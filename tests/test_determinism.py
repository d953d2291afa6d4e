"""base.deterministic: the same weights bit for bit whatever caches, instruction sets and cores the CPU has."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from cosmic import params, registry

from cosmic.learning import determinism
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import bench_determinism  # noqa: E402
import othercpu  # noqa: E402

# Trains a small CNN and a small MobileNetV2 (depthwise convolutions, batch norm) through the stages'
# own fit, augmentation and domain randomisation, and saves every weight. argv[1]: base.cpu_isa, or
# "env" to keep the CPU settings of the environment.
TRAIN_SCRIPT = """
import sys
from cosmic.learning.determinism import apply_cpu_determinism
if sys.argv[1] != "env":
    apply_cpu_determinism(True, cpu_isa=sys.argv[1])
import numpy as np
from cosmic import params
from cosmic.learning.augment import basic_augment, with_domain_randomization
from cosmic.learning.models import build_baseline, build_transfer
from cosmic.data.packing import Arrays
from cosmic.learning.training import Phase, fit, set_determinism

set_determinism(42, True)
rng = np.random.default_rng(0)
images = rng.integers(0, 256, (48, 32, 32, 3), dtype=np.uint8)
labels = (np.arange(48) % 2).astype(np.uint8)
train, val = Arrays(images[:32], labels[:32], np.arange(32)), Arrays(images[32:], labels[32:], np.arange(16))
augment = with_domain_randomization(basic_augment, params.base(params.load(sys.argv[3])).domain)
weights = {}
for name, model in (("cnn", build_baseline(32, (8, 16), 3, 16, 0.5)),
                    # As the stage builds it from random weights (input_scaling auto: galaxy scaling).
                    ("mobilenet", build_transfer(32, 32, 0.35, 0.2, freeze_base=False, scaling="galaxy")[0])):
    fit(model, train, val, phases=[Phase("train", 2, 1e-3)], batch_size=16, patience=2, seed=42, augment=augment)
    weights.update({f"{name}/{i}": np.asarray(w) for i, w in enumerate(model.weights)})
np.savez(sys.argv[2], **weights)
"""

# The setting of this module before TensorFlow's own oneDNN ops were used: Eigen's kernels everywhere.
EIGEN_ENV = bench_determinism.EIGEN_DETERMINISTIC


def _train(tmp_path, cpu_isa: str, env: dict | None = None, cpus: str | None = None,
           other: str | None = None) -> tuple[dict, str]:
    """Weights after training in a fresh interpreter (on CPUs `cpus`, as on CPU `other` of othercpu.CPUS),
    and its oneDNN log."""
    out = tmp_path / f"{len(list(tmp_path.iterdir()))}.npz"
    full = {k: v for k, v in os.environ.items() if k not in determinism.CPU_ENV_KEYS}
    full.update(env or {}, ONEDNN_VERBOSE="1", TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    if other:
        full.update(othercpu.env(other))
    pin = ["taskset", "-c", cpus] if cpus else []
    done = subprocess.run([*pin, sys.executable, "-c", TRAIN_SCRIPT, cpu_isa, str(out), str(REPO / "params.yaml")],
                          env=full, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(out) as z:
        return {k: z[k] for k in z.files}, done.stdout


def _differ(a: dict, b: dict) -> list[str]:
    assert a.keys() == b.keys()
    return [k for k in a if a[k].tobytes() != b[k].tobytes()]


def _isa_line(onednn_log: str) -> str:
    return next(line for line in onednn_log.splitlines() if ",isa:" in line).split(",isa:")[1]


def _presentable(*names: str) -> list[str]:
    """The CPUs of `names` that othercpu can present here; skips the test when there is none."""
    reasons = {name: othercpu.unavailable(name) for name in names}
    ok = [name for name, why in reasons.items() if not why]
    if not ok:
        pytest.skip("; ".join(f"cannot present {name}: {why}" for name, why in reasons.items()))
    return ok


@pytest.mark.slow
def test_default_setting_is_bit_identical_on_avx512_cpus_with_other_caches(tmp_path):
    """cpu_isa avx512 trains the same weights here as on a Zen 5 (L1d 48 KiB, L2 1 MiB), a Skylake-SP
    (32 KiB, 1 MiB) and a Rocket Lake (48 KiB, 512 KiB), all AVX-512 without AMX. The earlier setting
    (EIGEN_ENV) trained other weights as on the Rocket Lake than here."""
    others = _presentable("skylake", "zen5", "rocketlake")
    here, log = _train(tmp_path, "avx512")
    assert "AVX-512" in _isa_line(log) and ",convolution," in log  # oneDNN's own ops, capped at AVX-512
    for other in others:
        weights, log = _train(tmp_path, "avx512", other=other)
        assert "AMX" not in _isa_line(log)
        differ = _differ(here, weights)
        assert not differ, f"as on {other}: {len(differ)} of {len(here)} weights differ, first {differ[0]}"


@pytest.mark.slow
def test_portable_setting_is_bit_identical_on_avx2_and_avx512_cpus(tmp_path):
    """cpu_isa avx2 trains the same weights here as on an AVX2-only Zen 3 (L1d 32 KiB, L2 512 KiB) and a Zen 5."""
    others = _presentable("zen3", "zen5")
    here, log = _train(tmp_path, "avx2")
    assert "AVX2" in _isa_line(log)
    for other in others:
        differ = _differ(here, _train(tmp_path, "avx2", other=other)[0])
        assert not differ, f"as on {other}: {len(differ)} of {len(here)} weights differ, first {differ[0]}"


@pytest.mark.slow
def test_eigen_kernels_differ_with_other_caches(tmp_path):
    """The cause, and the control that shows othercpu's caches reach TensorFlow: with Eigen's kernels (this
    module's earlier setting) the convolution filter gradients are summed in blocks cut by the cache sizes,
    and the weights trained as on a Zen 3 differ from those trained here."""
    _presentable("zen3")
    here, _ = _train(tmp_path, "env", env=EIGEN_ENV)
    assert _differ(here, _train(tmp_path, "env", env=EIGEN_ENV, other="zen3")[0])


@pytest.mark.slow
def test_deterministic_training_ignores_the_users_cpu_settings_and_core_count(tmp_path):
    """A user's own oneDNN settings (ops off, ISA capped at SSE4.1) and one core instead of two: the same
    weights, since base.deterministic sets them all and fixes the thread count."""
    ref, _ = _train(tmp_path, "avx512")
    cpus = "0" if shutil.which("taskset") and len(os.sched_getaffinity(0)) > 1 else None
    user = {"TF_ENABLE_ONEDNN_OPTS": "0", "ONEDNN_MAX_CPU_ISA": "SSE41", "TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL": "0"}
    differ = _differ(ref, _train(tmp_path, "avx512", env=user, cpus=cpus)[0])
    assert not differ, f"{len(differ)} of {len(ref)} weights differ, first {differ[0]}"


def test_cpu_isa_choices_are_the_params_choices():
    assert tuple(determinism.CPU_ISA) == params.CPU_ISAS


def test_apply_sets_the_environment_before_tensorflow(monkeypatch):
    for key in determinism.CPU_ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    assert not determinism.apply_cpu_determinism(False) and not determinism.cpu_settings_applied()
    assert determinism.apply_cpu_determinism(True)
    assert determinism.cpu_settings_applied()
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1" and os.environ["ONEDNN_MAX_CPU_ISA"] == "AVX512_CORE"
    assert determinism.apply_cpu_determinism(True, cpu_isa="avx2") and determinism.cpu_settings_applied(cpu_isa="avx2")
    assert os.environ["ONEDNN_MAX_CPU_ISA"] == "AVX2" and not determinism.cpu_settings_applied(cpu_isa="avx512")
    with pytest.raises(ValueError, match="cpu_isa is 'avx'; expected one of"):
        determinism.deterministic_env(0, "avx")


def test_a_contraction_kernel_choice_left_in_the_environment_is_removed(monkeypatch):
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    monkeypatch.setenv("TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL", "0")
    assert determinism.apply_cpu_determinism(True)
    assert "TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL" not in os.environ


def test_apply_after_tensorflow_warns_and_reports_not_applied(monkeypatch):
    for key in determinism.CPU_ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setitem(sys.modules, "tensorflow", object())
    with pytest.warns(RuntimeWarning, match="imported before"):
        assert not determinism.apply_cpu_determinism(True)
    assert not determinism.cpu_settings_applied()


def test_params_decide(tmp_path, monkeypatch):
    for key in determinism.CPU_ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    text = (REPO / "params.yaml").read_text()
    assert "deterministic: true" in text
    off = tmp_path / "off.yaml"
    off.write_text(text.replace("deterministic: true", "deterministic: false"))
    assert not determinism.apply_from_params(off) and not determinism.cpu_settings_applied()
    assert determinism.apply_from_params(REPO / "params.yaml") and determinism.cpu_settings_applied()


@pytest.mark.slow  # a subprocess per stage, each importing TensorFlow (6-11 s)
@pytest.mark.parametrize("module", ["train", "tune", "evaluate"])
def test_stage_scripts_apply_it_before_importing_tensorflow(module):
    """Importing a stage module as `dvc repro` runs it applies the settings before TensorFlow loads, with no warning.

    The `stages` package applies them when it loads, before the module's own imports; the check imports
    TensorFlow after the module, since a stage may load it only with its model.
    """
    env = {k: v for k, v in os.environ.items() if k not in determinism.CPU_ENV_KEYS}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    code = (f"import stages.{module}\n"
            "import tensorflow\n"
            "from cosmic.learning.determinism import cpu_settings_applied\n"
            "assert cpu_settings_applied()\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and "imported before" not in done.stderr, done.stderr[-3000:]


@pytest.mark.parametrize("shell, expected", [(None, "2"), ("0", "0")])
def test_stages_quiet_tensorflows_cpp_warnings_unless_the_shell_asks_for_them(shell, expected):
    """A stage's log is not flooded by TensorFlow's per-epoch C++ warnings; the user's own setting wins."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(PYTHONPATH=str(REPO), **({"TF_CPP_MIN_LOG_LEVEL": shell} if shell is not None else {}))
    code = "import os, stages\nprint(os.environ['TF_CPP_MIN_LOG_LEVEL'])\n"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == expected


@pytest.mark.slow
def test_tensorflow_stages_start_without_tensorflows_import_banners():
    """A training stage prints no oneDNN or absl banner while TensorFlow loads; TF_CPP_MIN_LOG_LEVEL=0 shows them."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(PYTHONPATH=str(REPO))
    usage = "usage: python -m stages.train STAGE"

    def stderr(command, **extra):
        done = subprocess.run(command, cwd=REPO, env={**env, **extra}, capture_output=True, text=True, timeout=300)
        return done.stderr

    # Unknown stage: everything is imported, then the usage line is the only output.
    assert stderr([sys.executable, "-m", "stages.train", "no_such_stage"]).splitlines() == [
        f"{usage}, where STAGE is one of {', '.join(m.stage for m in registry.MODELS)}"]
    plain = stderr([sys.executable, "-c", "import tensorflow"], TF_CPP_MIN_LOG_LEVEL="0")
    if "absl::InitializeLog" not in plain:
        pytest.skip("TensorFlow prints no import banner on this machine, even at TF_CPP_MIN_LOG_LEVEL=0")
    shown = stderr([sys.executable, "-m", "stages.train", "no_such_stage"], TF_CPP_MIN_LOG_LEVEL="0")
    assert "absl::InitializeLog" in shown and usage in shown


THREAD_VARS = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


@pytest.fixture
def clean_cpu_env(monkeypatch):
    for key in {*determinism.CPU_ENV_KEYS}:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)


def test_threads_zero_keeps_the_deterministic_settings_and_tensorflows_inter_op_default(clean_cpu_env):
    # Exactly the settings of the committed run.
    assert determinism.DETERMINISTIC_ENV == determinism.deterministic_env(0) == {
        "TF_ENABLE_ONEDNN_OPTS": "1", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "TF_NUM_INTRAOP_THREADS": "2"}
    assert determinism.apply_cpu_determinism(True, threads=0)
    assert {k: os.environ[k] for k in determinism.DETERMINISTIC_ENV} == determinism.DETERMINISTIC_ENV
    assert os.environ["TF_NUM_INTRAOP_THREADS"] == str(determinism.INTRA_OP_THREADS)
    assert "TF_NUM_INTEROP_THREADS" not in os.environ


def test_threads_set_both_pools_with_and_without_determinism(clean_cpu_env):
    assert determinism.apply_cpu_determinism(True, threads=3)
    assert os.environ["TF_NUM_INTRAOP_THREADS"] == os.environ["TF_NUM_INTEROP_THREADS"] == "3"
    assert os.environ["ONEDNN_MAX_CPU_ISA"] == "AVX512_CORE"
    # Reproducible per thread count: the checks that know the count demand it; the generic one accepts it.
    assert determinism.cpu_settings_applied(3) and determinism.cpu_settings_applied()
    assert not determinism.cpu_settings_applied(0) and not determinism.cpu_settings_applied(4)

    for key in {*determinism.CPU_ENV_KEYS}:
        os.environ.pop(key, None)
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
from cosmic.learning.determinism import apply_from_params
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
    env = {k: v for k, v in os.environ.items() if k not in {*determinism.CPU_ENV_KEYS}}
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
