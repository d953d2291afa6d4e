"""Distributed tuning (KerasTuner chief + workers) and training (tf.distribute), on 127.0.0.1 with tiny data."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import pandas as pd
import pytest
import tensorflow as tf
import yaml

from cosmic import params

from cosmic.learning import cluster, strategies
from tests.conftest import REPO, tiny_params
from tests.conftest import run_stage_in_process

# --- Supervisor and TF_CONFIG checks: no TensorFlow work, fast -------------------------------------------------


def _fake_tuner(tmp_path: Path, behaviour: dict[str, str]) -> list[str]:
    """A command that acts by its KERASTUNER_TUNER_ID: 'exit N', 'sleep S' or 'sleep S exit N'.

    Before it exits 0, each process writes tmp_path/<id>.json with the oracle address it was given.
    """
    script = tmp_path / "fake_tuner.py"
    script.write_text(
        "import json, os, sys, time\n"
        "me = os.environ['KERASTUNER_TUNER_ID']\n"
        f"todo = {behaviour!r}.get(me, 'exit 0').split()\n"
        "for verb, arg in zip(todo[::2], todo[1::2]):\n"
        "    if verb == 'sleep':\n"
        "        time.sleep(float(arg))\n"
        "    else:\n"
        "        if arg == '0':\n"
        f"            oracle = [os.environ[k] for k in ({cluster.ORACLE_IP_ENV!r}, {cluster.ORACLE_PORT_ENV!r})]\n"
        f"            open(os.path.join({str(tmp_path)!r}, me + '.json'), 'w').write(json.dumps(oracle))\n"
        "        sys.exit(int(arg))\n")
    return [sys.executable, str(script)]


def test_cluster_finishes_when_chief_and_workers_do(tmp_path):
    cmd = _fake_tuner(tmp_path, {"chief": "sleep 0.5 exit 0", "tuner0": "exit 0", "tuner1": "sleep 0.2 exit 0"})
    start = time.monotonic()
    cluster.run_tuner_cluster(cmd, 2, timeout=60)
    assert 0.5 <= time.monotonic() - start < 30  # it waited for the chief, not for the timeout
    done = {p.stem: json.loads(p.read_text()) for p in tmp_path.glob("*.json")}
    assert set(done) == {"chief", "tuner0", "tuner1"}
    # One oracle address for all three, a port the chief can listen on.
    (host, port), = {tuple(v) for v in done.values()}
    assert host and 0 < int(port) < 65536


def test_cluster_names_the_dead_worker_and_its_exit_code(tmp_path):
    cmd = _fake_tuner(tmp_path, {"chief": "sleep 60", "tuner0": "sleep 60", "tuner1": "sleep 0.3 exit 3"})
    start = time.monotonic()
    with pytest.raises(cluster.DistributedError, match=r"worker tuner1 \(pid \d+\) ended with exit code 3"):
        cluster.run_tuner_cluster(cmd, 2, timeout=60)
    assert time.monotonic() - start < 20  # the others were stopped, not waited for


def test_cluster_timeout_stops_everything(tmp_path):
    cmd = _fake_tuner(tmp_path, {"chief": "sleep 60", "tuner0": "sleep 60"})
    start = time.monotonic()
    with pytest.raises(cluster.DistributedError, match=r"tune.timeout of 1 s reached with chief, tuner0"):
        cluster.run_tuner_cluster(cmd, 1, timeout=1)
    assert time.monotonic() - start < 20


def test_idle_workers_are_stopped_after_the_chief_finishes(tmp_path, monkeypatch):
    """A worker that never got a trial waits an hour for the gone chief (KerasTuner's gRPC timeout)."""
    monkeypatch.setattr(cluster, "WORKER_GRACE_S", 0.5)
    cmd = _fake_tuner(tmp_path, {"chief": "exit 0", "tuner0": "sleep 600"})
    start = time.monotonic()
    cluster.run_tuner_cluster(cmd, 1, timeout=60)
    assert time.monotonic() - start < 20


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for a parent that never reaps it has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_gone(pids, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [pid for pid in pids if _alive(pid)]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_a_child_that_follows_its_parent_ends_when_the_parent_is_killed(tmp_path):
    pid_file = tmp_path / "child.pid"
    child = (f"import os, time; from cosmic.utils import follow_parent; follow_parent(); "
             f"open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)")
    parent = (f"import os, subprocess, sys, time; "
              f"subprocess.Popen([sys.executable, '-c', {child!r}], "
              f"env={{**os.environ, 'COSMIC_PARENT_PID': str(os.getpid())}}); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", parent], env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        start = time.monotonic()
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() - start < 30 and proc.poll() is None
            time.sleep(0.05)
        child_pid = int(pid_file.read_text())
        assert _alive(child_pid)
        proc.kill()
        proc.wait()
        assert _wait_gone([child_pid], 5) == []
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_child_whose_parent_is_already_gone_ends_at_once():
    """The race: the parent died between the fork and follow_parent (this test's pid is not the child's parent)."""
    done = subprocess.run([sys.executable, "-c", "from cosmic.utils import follow_parent; follow_parent(1); "
                           "print('still running')"], env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "still running" not in done.stdout


@pytest.mark.parametrize("value, message", [
    (None, "TF_CONFIG is not set"),
    ("{not json", "TF_CONFIG is not valid JSON"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}}', "needs 'cluster' and 'task'"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 1}}', "is not in cluster"),
    ('{"cluster": {"worker": ["no-port"]}, "task": {"type": "worker", "index": 0}}', "is not in cluster"),
])
def test_bad_tf_config_is_named(monkeypatch, value, message):
    if value is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", value)
    with pytest.raises(cluster.DistributedError, match=message):
        strategies.setup("multi_worker")


def test_chief_is_worker_0_unless_a_chief_task_exists():
    two = {"worker": ["a:1", "b:1"]}
    assert strategies._is_chief({"cluster": two, "task": {"type": "worker", "index": 0}})
    assert not strategies._is_chief({"cluster": two, "task": {"type": "worker", "index": 1}})
    with_chief = {"chief": ["c:1"], **two}
    assert not strategies._is_chief({"cluster": with_chief, "task": {"type": "worker", "index": 0}})
    assert strategies._is_chief({"cluster": with_chief, "task": {"type": "chief", "index": 0}})


def test_default_strategy_is_the_no_op_one():
    dist = strategies.setup("default")
    assert dist.strategy is tf.distribute.get_strategy() and dist.is_chief
    assert dist.output_root() == Path(".")
    with dist.scope():
        assert not tf.distribute.has_strategy()  # Keras sees no strategy: nothing changes in the numbers


def test_mixed_precision_without_gpu_keeps_float32(caplog):
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU is visible")
    assert strategies.set_precision(True) == "float32"
    assert "no GPU visible" in caplog.text


def test_output_layer_is_float32_under_mixed_precision_and_shares_the_default_policy():
    from cosmic.learning.models import build_baseline

    default = build_baseline(16, filters=(4,), dense_units=4)
    # The global policy object itself, so the saved config is the one models had before dtype was set.
    assert default.get_layer("p_spiral").dtype_policy is default.get_layer("conv1").dtype_policy
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        mixed = build_baseline(16, filters=(4,), dense_units=4)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert mixed.get_layer("conv1").compute_dtype == "float16"
    assert mixed.get_layer("p_spiral").compute_dtype == "float32" and mixed.output.dtype == "float32"


def test_params_reject_unknown_strategy_and_zero_workers():
    raw = tiny_params()
    assert params.base(raw).strategy == "default" and params.tune(raw).workers == 1
    raw["base"]["strategy"] = "horovod"
    with pytest.raises(params.ParamError, match=r"'base.strategy' is 'horovod'; expected one of default, mirrored"):
        params.base(raw)
    raw = tiny_params()
    raw["tune"]["workers"] = 0
    with pytest.raises(params.ParamError, match=r"'tune.workers' is 0"):
        params.tune(raw)


# --- Real processes on tiny data ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """data/raw, data/split and data/processed of the tiny configuration, made once by the real data stages."""
    root = tmp_path_factory.mktemp("prepared")
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    old = Path.cwd()
    os.chdir(root)
    try:
        for name in ("fetch", "filter", "split", "preprocess"):
            run_stage_in_process(name)
    finally:
        os.chdir(old)
    return root


def _workspace(prepared: Path, tmp_path: Path, **changes) -> Path:
    """A copy of the prepared data with params changed by {"section.key": value}."""
    root = tmp_path / "ws"
    shutil.copytree(prepared / "data" / "processed", root / "data" / "processed")
    p = tiny_params()
    for dotted, value in changes.items():
        section, key = dotted.split(".")
        p[section][key] = value
    (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    return root


def _env(**extra) -> dict:
    command, env = cluster.python_command("stages.tune")
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env, **extra}


@pytest.mark.slow
def test_two_worker_search_runs_every_trial_once(prepared, tmp_path):
    ws = _workspace(prepared, tmp_path, **{"tune.workers": 2, "tune.max_trials": 4, "tune.timeout": 900})
    done = subprocess.run([sys.executable, "-m", "stages.tune"], cwd=ws, env=_env(), capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == 0, done.stderr[-4000:]
    table = pd.read_csv(ws / "models/tune/trials.csv", dtype={"trial": str})
    assert len(table) == 4 and table["trial"].is_unique and (table["status"] == "COMPLETED").all()
    best = json.loads((ws / "models/tune/best_hparams.json").read_text())
    assert best["score"] == table["score"].max()  # val_accuracy: higher is better
    row = table.set_index("trial").loc[best["trial"]]
    assert row["score"] == best["score"]
    assert {k: row[k] for k in best["hyperparameters"]} == pytest.approx(best["hyperparameters"])
    metrics = json.loads((ws / "metrics/tune.json").read_text())
    assert metrics["n_trials"] == 4 and metrics["best_val_accuracy"] == best["score"]
    assert (ws / "plots/tune_trials.png").stat().st_size > 1000
    assert (ws / "plots/training/tune/plots/metrics/trial/val_accuracy.tsv").read_text().count("\n") == 5
    oracle = json.loads((ws / "models/tune/search/oracle.json").read_text())
    assert oracle["ongoing_trials"] == {} and "search_start" not in oracle.get("display", {})


def _child_with_tuner_id(parent: int, tuner_id: str) -> int | None:
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            environ = (proc / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and f"KERASTUNER_TUNER_ID={tuner_id}".encode() in environ:
            return int(proc.name)
    return None


@pytest.mark.slow
def test_killed_worker_ends_the_stage_with_its_name(prepared, tmp_path):
    timeout = 600
    ws = _workspace(prepared, tmp_path, **{"tune.workers": 2, "tune.max_trials": 6, "tune.epochs_per_trial": 200,
                                           "tune.timeout": timeout})
    stage = subprocess.Popen([sys.executable, "-m", "stages.tune"], cwd=ws, env=_env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    start = time.monotonic()
    try:
        oracle = ws / "models/tune/search/oracle.json"
        victim = None
        while victim is None and time.monotonic() - start < 300:
            time.sleep(1)
            assert stage.poll() is None, stage.stderr.read()[-4000:]
            try:
                running = json.loads(oracle.read_text()).get("ongoing_trials", {})
            except (OSError, ValueError):
                continue
            if "tuner1" in running:
                victim = _child_with_tuner_id(stage.pid, "tuner1")
        assert victim is not None, "worker tuner1 never started a trial"
        os.kill(victim, signal.SIGKILL)  # mid-trial: KerasTuner's chief would wait for this trial forever
        _, stderr = stage.communicate(timeout=120)
    finally:
        if stage.poll() is None:
            stage.kill()
            stage.wait()
    assert stage.returncode != 0
    assert "worker tuner1" in stderr and "SIGKILL" in stderr, stderr[-4000:]
    assert time.monotonic() - start < timeout
    assert not (ws / "models/tune/best_hparams.json").exists()
    assert _child_with_tuner_id(stage.pid, "chief") is None and _child_with_tuner_id(stage.pid, "tuner0") is None


@pytest.mark.slow
def test_multi_worker_training_on_two_cpu_processes(prepared, tmp_path):
    """train_baseline with MultiWorkerMirroredStrategy: worker 0 writes the usual outputs, worker 1 nothing."""
    ws = _workspace(prepared, tmp_path, **{"base.strategy": "multi_worker"})
    ports = [cluster.free_port(), cluster.free_port()]
    while ports[0] == ports[1]:
        ports[1] = cluster.free_port()
    spec = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    tmpdirs = [tmp_path / "tmp0", tmp_path / "tmp1"]
    procs = []
    for i in range(2):
        tmpdirs[i].mkdir()
        tf_config = json.dumps({"cluster": spec, "task": {"type": "worker", "index": i}})
        procs.append(subprocess.Popen([sys.executable, "-m", "stages.train", "train_baseline"], cwd=ws,
                                      env=_env(TF_CONFIG=tf_config, TMPDIR=str(tmpdirs[i])),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    errors = []
    try:
        for p in procs:
            errors.append(p.communicate(timeout=600)[1])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0], "\n".join(e[-3000:] for e in errors)
    model = keras.models.load_model(ws / "models/train_baseline.keras")
    assert model.input_shape == (None, 32, 32, 3)
    metrics = json.loads((ws / "metrics/train_baseline.json").read_text())
    assert set(metrics) == {"val", "epochs_run", "kept_epoch", "epochs_run_by_phase", "n_params",
                            "n_trainable_params", "model_bytes", "n_train", "n_val", "recall_balance"}
    assert 0.05 <= metrics["recall_balance"]["val_threshold"] <= 0.95
    assert set(metrics["val"]) == {"accuracy", "auc", "loss"} and metrics["epochs_run"] == 1
    assert metrics["n_params"] == model.count_params()
    assert (ws / "plots/training/train_baseline/plots/metrics/train/loss.tsv").is_file()
    assert list(tmpdirs[1].iterdir()) == []  # worker 1's outputs went to a temp dir, removed at exit


def _search_children(stage_pid: int) -> dict[str, int]:
    """pid of each tuner process (chief, tuner0...) the stage started."""
    found = {}
    for tuner_id in ("chief", "tuner0", "tuner1"):
        pid = _child_with_tuner_id(stage_pid, tuner_id)
        if pid is not None:
            found[tuner_id] = pid
    return found


def _start_search(prepared: Path, tmp_path: Path) -> tuple[Path, subprocess.Popen, dict[str, int]]:
    """A two-worker search, long enough to be mid-trial, with its chief and both workers running trials."""
    ws = _workspace(prepared, tmp_path, **{"tune.workers": 2, "tune.max_trials": 6, "tune.epochs_per_trial": 200,
                                           "tune.timeout": 900})
    # Ctrl-C in a terminal raises KeyboardInterrupt; the child restores that handler because a runner
    # started in the background (nohup, `cmd &`) passes SIGINT on as ignored.
    code = ("import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "runpy.run_module('stages.tune', run_name='__main__')")
    stage = subprocess.Popen([sys.executable, "-c", code], cwd=ws, env=_env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
    oracle = ws / "models/tune/search/oracle.json"
    start = time.monotonic()
    while time.monotonic() - start < 300:
        time.sleep(1)
        assert stage.poll() is None, stage.stderr.read()[-4000:]
        try:
            running = json.loads(oracle.read_text()).get("ongoing_trials", {})
        except (OSError, ValueError):
            continue
        if {"tuner0", "tuner1"} <= set(running):
            children = _search_children(stage.pid)
            assert set(children) == {"chief", "tuner0", "tuner1"}
            return ws, stage, children
    stage.kill()
    raise AssertionError("the workers never both started a trial")


TUNE_OUTPUTS = ("models/tune/best_hparams.json", "models/tune/trials.csv", "metrics/tune.json",
                "plots/tune_trials.png", "plots/training/tune")


@pytest.mark.slow
def test_killing_the_tune_stage_ends_every_search_process_and_nothing_is_written_after(prepared, tmp_path):
    """Before: chief and workers lived on (parent pid 1), finished the search and wrote every output."""
    ws, stage, children = _start_search(prepared, tmp_path)
    try:
        os.kill(stage.pid, signal.SIGKILL)  # the stage only, as `kill -9 <pid>` does: not its process group
        stage.wait(timeout=30)
        assert _wait_gone(children.values(), 10) == [], f"still running: {children}"
        group = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _alive(int(p.name))
                 and _pgid(int(p.name)) == stage.pid]
        assert group == []  # nothing else of the stage's process group either
        time.sleep(5)  # a surviving chief would write its outputs now
        assert [rel for rel in TUNE_OUTPUTS if (ws / rel).exists()] == []
    finally:
        for pid in children.values():
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


@pytest.mark.slow
def test_ctrl_c_in_a_distributed_search_is_one_line_and_ends_every_process(prepared, tmp_path):
    """Before: a KeyboardInterrupt traceback (the children did end)."""
    ws, stage, children = _start_search(prepared, tmp_path)
    try:
        os.killpg(stage.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole process group
        _, stderr = stage.communicate(timeout=60)
    finally:
        if stage.poll() is None:
            os.killpg(stage.pid, signal.SIGKILL)
            stage.wait()
    assert stage.returncode == 1, stderr[-4000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-4000:]
    lines = [line for line in stderr.splitlines() if line.startswith("tune: ")]
    assert lines == ["tune: interrupted; every search process was stopped and no result was written, "
                     "re-run the stage"]
    assert _wait_gone(children.values(), 10) == []
    assert [rel for rel in TUNE_OUTPUTS if (ws / rel).exists()] == []
