"""KerasTuner's chief/worker search, run as processes of the tune stage and supervised.

KerasTuner runs a distributed search when every process has KERASTUNER_TUNER_ID
(`chief` or `tuner<N>`), KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT. The chief only serves
the oracle over gRPC and holds every trial; the workers ask it for trials and report scores.
`run_tuner_cluster` starts the chief and N workers as subprocesses of the tune stage and
supervises them, because KerasTuner itself never gives up: a worker that dies keeps its trial
"ongoing" in the chief, which then waits for it forever (oracle_chief.exit_chief), and a
worker whose chief is gone retries its gRPC call for an hour (oracle_client.TIMEOUT).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from cosmic.learning.errors import DistributedError
from cosmic.utils import PARENT_PID_ENV

log = logging.getLogger(__name__)

TUNER_ID_ENV, ORACLE_IP_ENV, ORACLE_PORT_ENV = "KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"
CHIEF = "chief"
# After the chief has finished (every trial ended), workers that never got a trial are still waiting
# for the server that has gone; they are stopped after this many seconds.
WORKER_GRACE_S = 30.0
_POLL_S = 0.5


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


def python_command(module: str) -> tuple[list[str], dict]:
    """`python -m module` for a child process, with this checkout first on its import path.

    The children must import the same `cosmic` as the stage that starts them, also when another
    checkout is installed in the environment (editable installs, DVC --temp experiments).
    """
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return [sys.executable, "-m", module], {"PYTHONPATH": path}
