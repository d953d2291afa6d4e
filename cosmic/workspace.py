"""One `dvc exp run` per workspace: a stage refuses to run beside another, and never with another run's params.

DVC runs workspace experiments in the workspace itself and releases its repository lock while a
stage command runs, so a second `dvc exp run -S ...` writes its values into the same params.yaml
while the first one trains (DVC 3 keeps the pid of the newest in .dvc/tmp/exps/run/workspace/,
overwriting the first's). Every stage therefore claims the workspace for the `dvc exp run` it
belongs to when it starts, and checks when it ends that params.yaml still holds what it read,
since DVC records params.yaml in dvc.lock after the stage exits.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import psutil

from cosmic.params import PARAMS_FILE, read_text
from cosmic.utils import StageError

# DVC's record of the `dvc exp run` in the workspace (dvc.repo.experiments.queue.workspace, DVC 3).
DVC_WORKSPACE_RUN = Path(".dvc/tmp/exps/run/workspace/workspace.json")
# Which run holds the workspace, and the params.yaml it runs with (restored if a newcomer changed it).
CLAIM = Path(".dvc/tmp/cosmic-workspace.json")
PARAMS = Path(PARAMS_FILE)
# How to run another experiment while one runs in the workspace.
_ELSEWHERE = ("run one experiment at a time per workspace: queue the others with `dvc exp run --queue -S ...` "
              "(then `dvc queue start`), or run them in a copy of the workspace with `dvc exp run --temp -S ...`")


class WorkspaceBusyError(StageError, RuntimeError):
    """Another `dvc exp run` uses this workspace, or params.yaml changed under the running stage."""


@dataclass(frozen=True)
class Claim:
    """The params.yaml a stage started with."""

    params: str

    def check(self) -> None:
        """Check that params.yaml still holds what the stage read, so DVC records the params it ran with.

        Raises:
            WorkspaceBusyError: naming params.yaml when its content changed while the stage ran.
        """
        if _read_params() != self.params:
            raise WorkspaceBusyError(
                f"{PARAMS} changed while this stage ran (another `dvc exp run -S` in this workspace?), so DVC would "
                f"record params this stage did not run with; {_ELSEWHERE}")


def claim() -> Claim:
    """Claim the workspace for the `dvc exp run` this stage belongs to, before the stage writes anything.

    Outside a DVC repository or a workspace experiment (plain `dvc repro`, `--temp`, queued runs,
    a stage run by hand) nothing is claimed; `Claim.check` still compares params.yaml.

    Raises:
        WorkspaceBusyError: in one line, when another live `dvc exp run` holds the workspace (its
            params.yaml is put back, so that run finishes with its own values) or when params.yaml
            changed since this run's first stage.
    """
    text = _read_params()
    if not CLAIM.parent.is_dir():
        return Claim(text)
    ancestors = {p.pid for p in psutil.Process().parents()}
    with _locked():
        held = _live(_read(CLAIM))
        recorded = _live(_read(DVC_WORKSPACE_RUN))
        if held is not None and held["pid"] in ancestors:  # a later stage of the run that claimed the workspace
            if held["params"] != text:
                raise WorkspaceBusyError(
                    f"{PARAMS} changed since this experiment's first stage (another `dvc exp run -S` in this "
                    f"workspace?), so this stage stopped before running with another run's params; {_ELSEWHERE}")
            return Claim(text)
        if held is not None:
            put_back = ""
            if text != held["params"]:
                PARAMS.write_text(held["params"])
                put_back = f" and put back that run's {PARAMS}"
            raise WorkspaceBusyError(
                f"this workspace is busy: `dvc exp run` (pid {held['pid']}) is running here, so this one stopped "
                f"before writing anything{put_back}; {_ELSEWHERE}")
        if recorded is None:
            return Claim(text)
        if recorded["pid"] not in ancestors:
            raise WorkspaceBusyError(
                f"this workspace is busy: `dvc exp run` (pid {recorded['pid']}) started here and set {PARAMS} to its "
                f"values, so this stage stopped before running with them; {_ELSEWHERE}")
        _write(CLAIM, {"pid": recorded["pid"], "started": recorded["started"], "params": text})
        return Claim(text)


def _read_params() -> str:
    """params.yaml's text, "" when there is none.

    Raises:
        ParamError: naming the first byte that is not UTF-8.
    """
    return read_text(PARAMS) if PARAMS.is_file() else ""


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _live(record: dict | None) -> dict | None:
    """`record` with the start time of its process, if that process still runs (pids are reused)."""
    if not isinstance(record, dict) or not isinstance(record.get("pid"), int):
        return None
    try:
        started = psutil.Process(record["pid"]).create_time()
    except psutil.Error:
        return None
    if record.get("started") not in (None, started):
        return None
    return {**record, "started": started}


def _write(path: Path, record: dict) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked():
    """Serialise claims: two runs' first stages may start within the same millisecond."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; the check-then-write window is milliseconds
        yield
        return
    with open(CLAIM.with_suffix(".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
