"""Small helpers shared by the stages: logging and atomic JSON output."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def setup_logging(level: int = logging.INFO) -> None:
    """Log to stderr with the stage-friendly format used by every stage."""
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s: %(message)s")


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
