"""Scale-out: KerasTuner's chief/worker search across processes, and tf.distribute training strategies.

Tuning: KerasTuner runs a distributed search when every process has KERASTUNER_TUNER_ID
(`chief` or `tuner<N>`), KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT. The chief only serves
the oracle over gRPC and holds every trial; the workers ask it for trials and report scores.
`run_tuner_cluster` starts the chief and N workers as subprocesses of the tune stage and
supervises them, because KerasTuner itself never gives up: a worker that dies keeps its trial
"ongoing" in the chief, which then waits for it forever (oracle_chief.exit_chief), and a
worker whose chief is gone retries its gRPC call for an hour (oracle_client.TIMEOUT).

Training: `setup` turns `base.strategy` into a `Distribution`, whose scope the stages build
their models in and `training.run_stage` compiles and fits in; only its chief writes outputs.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from cosmic.learning.training import TrainingError
from cosmic.utils import PARENT_PID_ENV

log = logging.getLogger(__name__)

TUNER_ID_ENV, ORACLE_IP_ENV, ORACLE_PORT_ENV = "KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"
CHIEF = "chief"
# After the chief has finished (every trial ended), workers that never got a trial are still waiting
# for the server that has gone; they are stopped after this many seconds.
WORKER_GRACE_S = 30.0
_POLL_S = 0.5


class DistributedError(TrainingError):
    """A distributed search or training cannot start or did not finish."""


# --- Tuning -------------------------------------------------------------------------------------------------


def tuner_role() -> str | None:
    """This process's KerasTuner role (`chief`, `tuner0`...), or None outside a distributed search."""
    return os.environ.get(TUNER_ID_ENV) or None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now (the OS picks it; a race with other programs is possible but rare)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"exit code {code} (killed by {signal.Signals(-code).name})"
        except ValueError:
            return f"exit code {code}"
    return f"exit code {code}"


def _stop(procs: dict[str, subprocess.Popen], wait_s: float = 10.0) -> None:
    """Terminate every child still running, then kill those that ignore it."""
    for p in procs.values():
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + wait_s
    for p in procs.values():
        try:
            p.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run_tuner_cluster(command: list[str], workers: int, timeout: float, *, cwd: Path | str | None = None,
                      env: dict | None = None, host: str | None = None, port: int | None = None) -> None:
    """Run a KerasTuner search as one chief and `workers` worker processes, all running `command`.

    Each child gets the KerasTuner environment: the chief KERASTUNER_TUNER_ID=chief, worker i
    `tuner<i>`, and `env` on top of this process's environment, and this process's pid as
    COSMIC_PARENT_PID: a child that calls `cosmic.utils.follow_parent` ends when this process does,
    even by SIGKILL, so none finishes the search and writes outputs after the stage failed. The
    chief listens on `host`:`port` (default 127.0.0.1 and a free port; workers on other machines
    connect to it with the same variables and their own tuner ids).

    Returns when the chief has exited with 0 (it writes the results); local workers still waiting
    after WORKER_GRACE_S are stopped (they never got a trial).

    Raises:
        DistributedError: when a child exits non-zero (naming it and its exit code) or the whole
            search outlasts `timeout` seconds; every child is stopped first.
    """
    host = host or "127.0.0.1"
    port = port or free_port(host)
    base_env = {**os.environ, **(env or {}), ORACLE_IP_ENV: host, ORACLE_PORT_ENV: str(port),
                PARENT_PID_ENV: str(os.getpid())}
    ids = [CHIEF] + [f"tuner{i}" for i in range(workers)]
    log.info("distributed search: chief on %s:%d and %d workers (%s)", host, port, workers, ", ".join(ids[1:]))
    procs: dict[str, subprocess.Popen] = {}
    deadline = time.monotonic() + timeout
    try:
        for tuner_id in ids:
            procs[tuner_id] = subprocess.Popen(command, cwd=cwd, env={**base_env, TUNER_ID_ENV: tuner_id})
        chief_done_at = None
        while True:
            for tuner_id, p in procs.items():
                code = p.poll()
                if code is not None and code != 0:
                    raise DistributedError(
                        f"distributed search: {'the chief' if tuner_id == CHIEF else 'worker ' + tuner_id} "
                        f"(pid {p.pid}) ended with {_describe_exit(code)}; stopped the other processes "
                        "(KerasTuner's chief would otherwise wait for that worker's trial forever)")
            if procs[CHIEF].poll() == 0:
                chief_done_at = chief_done_at or time.monotonic()
                running = [t for t, p in procs.items() if p.poll() is None]
                if not running:
                    return
                if time.monotonic() - chief_done_at > WORKER_GRACE_S:
                    log.info("distributed search finished; stopping idle workers %s", ", ".join(running))
                    return
            if time.monotonic() > deadline:
                running = [t for t, p in procs.items() if p.poll() is None]
                raise DistributedError(f"distributed search: tune.timeout of {timeout:g} s reached with "
                                       f"{', '.join(running)} still running; stopped them all (raise "
                                       "tune.timeout or lower tune.max_trials / tune.epochs_per_trial)")
            time.sleep(_POLL_S)
    finally:
        _stop(procs)


def clear_tuner_dir(directory: Path) -> None:
    """Remove a previous search before the chief and workers start (they must not remove each other's files)."""
    shutil.rmtree(directory, ignore_errors=True)


def supervise_search(module: str, workers: int, timeout: float, directory: Path) -> bool:
    """With `workers` >= 2, run the search as a chief and that many workers, each `python -m module`.

    The chief listens on KERASTUNER_ORACLE_IP/PORT when they are set (workers on other machines
    connect there), else on 127.0.0.1 and a free port.

    Returns:
        False when this process should search itself (one worker, or it already has a KerasTuner
        role); True after the chief, which writes the stage's outputs, finished.

    Raises:
        DistributedError: see `run_tuner_cluster`.
    """
    if workers < 2 or tuner_role() is not None:
        return False
    clear_tuner_dir(directory)
    command, env = python_command(module)
    port = os.environ.get(ORACLE_PORT_ENV)
    run_tuner_cluster(command, workers, timeout, env=env, host=os.environ.get(ORACLE_IP_ENV),
                      port=int(port) if port else None)
    return True


# --- Training ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Distribution:
    """The strategy the training stages build, compile and fit in, and whether this process writes outputs."""

    strategy: tf.distribute.Strategy
    is_chief: bool
    kind: str

    def scope(self):
        return self.strategy.scope()

    def output_root(self) -> Path:
        """Where this process writes the stage's outputs: "." on the chief, elsewhere a temp dir removed at exit.

        Every worker of a multi-worker run must take part in fit, evaluate and save (they
        synchronise), but only the chief's files are the stage's outputs (Keras's multi-worker
        saving pattern).
        """
        if self.is_chief:
            return Path(".")
        tmp = tempfile.mkdtemp(prefix="cosmic-worker-")
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        return Path(tmp)


def read_tf_config() -> dict:
    """TF_CONFIG as a mapping, checked: a cluster with a worker list and this process's task in it.

    Raises:
        DistributedError: naming TF_CONFIG and what is wrong with it.
    """
    example = ('{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}')
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise DistributedError("base.strategy is multi_worker but the environment variable TF_CONFIG is not set; "
                               f"expected one per process, e.g. TF_CONFIG='{example}'")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise DistributedError(f"TF_CONFIG is not valid JSON ({e}); expected e.g. {example}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise DistributedError(f"TF_CONFIG {text!r} needs 'cluster' and 'task' mappings; expected e.g. {example}")
    kind, index = task.get("type"), task.get("index")
    members = cluster.get(kind)
    if (kind not in ("worker", "chief") or not isinstance(members, list) or not members
            or not all(isinstance(m, str) and ":" in m for m in members)
            or isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(members)):
        raise DistributedError(f"TF_CONFIG {text!r}: task {task!r} is not in cluster {cluster!r}; expected task type "
                               "'worker' (or 'chief') and an index into that list of 'host:port' addresses")
    return config


def _is_chief(config: dict) -> bool:
    task = config["task"]
    return task["type"] == "chief" or (task["type"] == "worker" and task["index"] == 0
                                       and "chief" not in config["cluster"])


def setup(strategy: str, mixed_precision: bool = False) -> Distribution:
    """Create the strategy of `base.strategy` and the precision policy of `base.mixed_precision`.

    Call it before any other TensorFlow operation (before `training.set_determinism`):
    MultiWorkerMirroredStrategy configures TensorFlow's collective ops, which is possible
    only while its runtime has not started.

    Raises:
        DistributedError: for an unknown strategy, or TF_CONFIG missing or invalid for multi_worker.
    """
    if mixed_precision:
        set_precision(True)
    if strategy == "default":
        # The strategy in effect when there is none: its scope changes nothing, so results are
        # byte-identical to code that never heard of tf.distribute.
        return Distribution(tf.distribute.get_strategy(), True, strategy)
    if strategy == "mirrored":
        s = tf.distribute.MirroredStrategy()  # every local GPU, or the CPU when there is none
        log.info("base.strategy mirrored: %d replicas", s.num_replicas_in_sync)
        return Distribution(s, True, strategy)
    if strategy == "multi_worker":
        config = read_tf_config()
        _patch_keras_for_multi_worker()
        try:
            s = tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as e:
            raise DistributedError(f"base.strategy multi_worker: {e}; the strategy must be created before any "
                                   "other TensorFlow operation") from None
        log.info("base.strategy multi_worker: task %s of %d workers, %d replicas in sync", config["task"],
                 sum(len(v) for v in config["cluster"].values()), s.num_replicas_in_sync)
        return Distribution(s, _is_chief(config), strategy)
    raise DistributedError(f"base.strategy is {strategy!r}; expected default, mirrored or multi_worker")


def set_precision(mixed_precision: bool) -> str:
    """Use mixed_float16 when asked and a GPU is visible; return the global dtype policy's name.

    On a CPU mixed float16 is slower than float32 and changes the numbers for nothing, so the
    stage warns and keeps float32 (a params.yaml shared by GPU and CPU machines still runs).
    """
    if mixed_precision:
        if tf.config.list_physical_devices("GPU"):
            keras.mixed_precision.set_global_policy("mixed_float16")
        else:
            log.warning("base.mixed_precision: no GPU visible, so training stays in float32")
    return keras.mixed_precision.global_policy().name


def _patch_keras_for_multi_worker() -> None:
    """Work around two Keras 3.15 bugs that stop `fit` under MultiWorkerMirroredStrategy.

    (keras-team/keras#20585; checked with TF 2.21 / Keras 3.15.) `_maybe_symbolic_build` reduces
    the first batch with `strategy.reduce` over a nested structure, which the collective strategy
    rejects ("Attempt to convert a value (PerReplica...)"); it only needs the batch's shapes,
    which one local replica's values have. `reduce_per_replica` then reduces the scalar step
    logs along axis 0 ("Invalid reduction dimension 0 for input with 0 dimensions"); the mean
    over replicas is what the other strategies return. Applied only in multi_worker processes.
    """
    from keras.src.backend.tensorflow import trainer as tf_trainer

    if getattr(tf_trainer, "_cosmic_patched", False):
        return

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None:
            return
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = tf.nest.map_structure(
                    lambda v: self.distribute_strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues) else v, next(it))
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    original = tf_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and reduction in ("auto", "mean"):
            return tf.nest.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=None) if isinstance(v, tf.distribute.DistributedValues)
                else v, values)
        return original(values, strategy, reduction)

    tf_trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    tf_trainer.reduce_per_replica = reduce_per_replica
    tf_trainer._cosmic_patched = True


def python_command(module: str) -> tuple[list[str], dict]:
    """`python -m module` for a child process, with this checkout first on its import path.

    The children must import the same `cosmic` as the stage that starts them, also when another
    checkout is installed in the environment (editable installs, DVC --temp experiments).
    """
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return [sys.executable, "-m", module], {"PYTHONPATH": path}
