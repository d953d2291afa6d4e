"""Small helpers shared by the stages: logging, progress bars and atomic JSON output."""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
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
