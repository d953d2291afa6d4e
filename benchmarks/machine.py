"""The machine a benchmark ran on, as every benchmark prints it beside its figures."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_description() -> str:
    """CPU model, usable and online cores, and the widest vector extension (results depend on it)."""
    name, flags = platform.processor() or platform.machine() or "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass  # not Linux
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    isa = next((f for f in ("avx512f", "avx2", "avx", "sse4_1") if f in flags), "")
    return f"{name}, {usable} cores usable ({os.cpu_count()} online){', ' + isa.upper() if isa else ''}"
