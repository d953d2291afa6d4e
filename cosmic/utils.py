"""Small helpers shared by the stages: logging, progress bars and atomic JSON output."""

from __future__ import annotations

import atexit
import ctypes
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def setup_logging(level: int = logging.INFO) -> None:
    """Log to stderr with the stage-friendly format used by every stage; a stage script logs its run time."""
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    script = Path(sys.argv[0])
    if script.parent.name == "stages":  # a stage process, not a stage's main() called in-process
        start = time.monotonic()
        atexit.register(lambda: logging.getLogger(script.stem).info("%s ran for %.1f s", script.stem,
                                                                    time.monotonic() - start))


def progress(items: Iterable[T], *, desc: str, total: int | None = None, unit: str = "img") -> Iterable[T]:
    """`items` with a progress bar on stderr when it is a terminal; unchanged in CI and DVC logs."""
    return tqdm(items, desc=desc, total=total, unit=unit, disable=not sys.stderr.isatty(), leave=False,
                mininterval=1.0, dynamic_ncols=True)


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write; it becomes `path` only if the block completes.

    An interrupted or failed write (KeyboardInterrupt included) removes the temporary file,
    so no output is ever half-written under its final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path | str, data: Any) -> None:
    """Write JSON with sorted keys atomically, so an interrupted stage leaves no half file."""
    text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def read_json(path: Path | str) -> Any:
    """Read a JSON file, naming it if it is missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    return json.loads(path.read_text())


# Set by a process for the children it starts, so that they can tell whether it is still alive.
PARENT_PID_ENV = "COSMIC_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def follow_parent(parent: int | None = None) -> None:
    """End this process when `parent` (default: COSMIC_PARENT_PID, if set) dies, and leave Ctrl-C to it.

    Linux kills the process when its parent dies, however it dies (SIGKILL included); elsewhere a
    daemon thread polls the parent. A parent already gone when this runs (the race between the
    fork and this call) ends the process at once. SIGINT is ignored because the parent receives it
    too and stops its children itself: each child would otherwise print its own traceback.
    """
    if parent is None:
        if not os.environ.get(PARENT_PID_ENV):
            return
        parent = int(os.environ[PARENT_PID_ENV])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    else:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="watch-parent").start()
    if os.getppid() != parent:
        os._exit(1)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGKILL)
