"""Small helpers shared by the stages: logging and atomic JSON output."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any


def setup_logging(level: int = logging.INFO) -> None:
    """Log to stderr with the stage-friendly format used by every stage."""
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s: %(message)s")


def write_json(path: Path | str, data: Any) -> None:
    """Write JSON with sorted keys atomically, so an interrupted stage leaves no half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")
    os.replace(tmp, path)


def read_json(path: Path | str) -> Any:
    """Read a JSON file, naming it if it is missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    return json.loads(path.read_text())
