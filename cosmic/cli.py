"""What the command-line tools share: their program name, argument types and a quiet TensorFlow start."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path


def program_name(module: str) -> str:
    """`cosmic-<module>` when run as that console script, else `python -m cosmic.commands.<module>`."""
    script = f"cosmic-{module.replace('_', '-')}"
    return script if Path(sys.argv[0]).name == script else f"python -m cosmic.commands.{module}"


def positive_int(value: str) -> int:
    """argparse type for counts such as --batch-size: an integer >= 1."""
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive integer")
    return n


@contextlib.contextmanager
def native_stderr_silenced():
    """Send what native code writes to stderr (TensorFlow's C++ banners) to /dev/null for a while.

    TensorFlow logs its oneDNN and CPU banners through absl before any Python setting can filter
    them (TF_CPP_MIN_LOG_LEVEL does not). Python's own errors are raised after stderr is back.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow without the banners its C++ code prints while loading.

    Sets TF_CPP_MIN_LOG_LEVEL to 2 (warnings off, errors shown) unless the shell sets it. The
    banners (the oneDNN notice, "All log messages before absl::InitializeLog()") are silenced while
    TensorFlow loads unless that level is 0, so `TF_CPP_MIN_LOG_LEVEL=0` brings everything back.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    silenced = native_stderr_silenced() if os.environ["TF_CPP_MIN_LOG_LEVEL"] != "0" else contextlib.nullcontext()
    with silenced:
        import tensorflow  # noqa: F401
