"""Small helpers shared by the stages: logging, progress bars, atomic output and their failures."""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import shutil
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
    """Log to stderr in the format of every stage."""
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s: %(message)s")


def progress(items: Iterable[T], *, desc: str, total: int | None = None, unit: str = "img") -> Iterable[T]:
    """`items` with a progress bar on stderr when it is a terminal; unchanged in CI and DVC logs."""
    return tqdm(items, desc=desc, total=total, unit=unit, disable=not sys.stderr.isatty(), leave=False,
                mininterval=1.0, dynamic_ncols=True)


class StageError(Exception):
    """Bad input, params, data or surroundings: a stage reports it in one line, without a traceback."""


class OutputError(StageError, OSError):
    """An output cannot be written: its disk is full, or it or its folder is read-only (the message says which)."""


# Failures of a write that the user fixes on the machine (free space, permissions), not in the code.
_WRITE_FAILURES = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
                   errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                   errno.EPERM: "operation not permitted"}


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _free_bytes(path: Path) -> int | None:
    for folder in (path, *path.parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                return None
    return None


@contextmanager
def writing(path: Path | str, needed: int | None = None) -> Iterator[None]:
    """Turn a full disk or a read-only target while the block writes `path` into one OutputError.

    Args:
        path: the output (file or folder) the block writes, named in the message whatever
            temporary file the failing call had open.
        needed: bytes the output takes, when known, named beside the free space.

    Raises:
        OutputError: on ENOSPC, EDQUOT, EROFS, EACCES or EPERM; other errors pass unchanged.
    """
    path = Path(path)
    try:
        yield
    except OSError as e:
        if e.errno not in _WRITE_FAILURES:
            raise
        free = _free_bytes(path)
        space = ", ".join(part for part in (
            f"needs {_megabytes(needed)}" if needed is not None else "",
            f"{_megabytes(free)} free there" if free is not None else "") if part)
        fix = ("free some space" if e.errno in (errno.ENOSPC, errno.EDQUOT)
               else f"make {path} and its folder writable")
        raise OutputError(f"cannot write {path}: {_WRITE_FAILURES[e.errno]}" + (f" ({space})" if space else "")
                          + f"; {fix}, then run it again") from None


def reserve(path: Path | str, size: int) -> None:
    """Allocate `size` bytes of the file `path` on disk now, so a full disk fails here as an OSError.

    A memory-mapped file is sparse until written; a write into it that finds the disk full is
    a SIGBUS that kills the process without a word. Where the OS or the file system cannot
    reserve, nothing is done.
    """
    if not hasattr(os, "posix_fallocate"):
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as e:
        if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: Path | str, needed: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write (file or folder), renamed to `path` if the block completes.

    An interrupted or failed write (KeyboardInterrupt included) removes the temporary file or
    folder, so no output is ever half-written under its final name; one left by a killed run
    is removed first.

    Raises:
        OutputError: see `writing`; `needed` is the output's size in bytes, when known.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    with writing(path, needed):
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove(tmp)
        try:
            yield tmp
            if tmp.is_dir():
                _remove(path)  # os.replace cannot put a folder over a non-empty one
            os.replace(tmp, path)
        except BaseException:
            _remove(tmp)
            raise


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def write_json(path: Path | str, data: Any) -> None:
    """Write JSON with sorted keys atomically, so an interrupted stage leaves no half file."""
    text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"
    with atomic_path(path, len(text.encode())) as tmp:
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


def save_figure(fig: Any, path: Path) -> None:
    """Lay out, write and close a matplotlib figure, creating its folder.

    Fixed metadata (no software version) keeps the PNG bytes identical across re-runs.

    Raises:
        OutputError: naming `path` when the disk is full or the folder read-only.
    """
    import matplotlib.pyplot as plt  # only the stages that draw load matplotlib

    path = Path(path)
    try:
        with writing(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.tight_layout()
            fig.savefig(path, dpi=100, metadata={"Software": None})
    finally:
        plt.close(fig)
