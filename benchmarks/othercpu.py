"""Run a command as if on another x86 CPU: other cache sizes, AVX-512 or AMX hidden (Linux only).

Eigen and oneDNN choose block sizes, and so the order in which long sums are added, from the cache
sizes that the CPUID instruction reports, and kernels from the instruction sets it reports.
`othercpu.c`, preloaded into a process, turns on Linux's CPUID faulting and answers every CPUID
itself, as one of CPUS would. The code runs natively, at full speed. It can hide instruction sets
this CPU has, not add ones it lacks, so a model whose extensions the host lacks is unavailable.

Usage: python benchmarks/othercpu.py zen3 -- python -c "import tensorflow"
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).with_name("othercpu.c")


@dataclass(frozen=True)
class Cpu:
    description: str
    caches_kib: tuple[int, int, int]  # L1d, L2 (per core), L3
    hide: str  # "" keeps every extension; "amx": AVX-512 without AMX; "avx512": AVX2 only
    needs: str  # the /proc/cpuinfo flag the host must have to play it


# Cache sizes from the vendors' data sheets; "hide" brings the host down to the model's extensions.
CPUS = {
    "zen3": Cpu("AMD EPYC Zen 2/3-like: AVX2 only, L1d 32 KiB, L2 512 KiB, L3 32 MiB", (32, 512, 32768),
                "avx512", "avx2"),
    "skylake": Cpu("Intel Xeon Skylake-SP-like: AVX-512 without AMX, L1d 32 KiB, L2 1 MiB, L3 38.5 MiB",
                   (32, 1024, 39424), "amx", "avx512f"),
    "rocketlake": Cpu("Intel Core Rocket Lake-like: AVX-512 without AMX, L1d 48 KiB, L2 512 KiB, L3 16 MiB",
                      (48, 512, 16384), "amx", "avx512f"),
    "zen5": Cpu("AMD EPYC Zen 5-like: AVX-512 without AMX, L1d 48 KiB, L2 1 MiB, L3 32 MiB", (48, 1024, 32768),
                "amx", "avx512f"),
}


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cosmic-othercpu"


def library() -> Path:
    """The preload library, compiled once per source version.

    Raises:
        RuntimeError: not Linux on x86-64, or no C compiler.
    """
    if not sys.platform.startswith("linux") or os.uname().machine != "x86_64":
        raise RuntimeError(f"othercpu needs Linux on x86-64 (CPUID faulting); this is {sys.platform} "
                           f"on {os.uname().machine}")
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if not cc:
        raise RuntimeError("othercpu needs a C compiler (cc or gcc) to build benchmarks/othercpu.c")
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    lib = _cache_dir() / f"othercpu-{digest}.so"
    if not lib.exists():
        lib.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=lib.parent) as tmp:
            out = Path(tmp) / lib.name
            done = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(out), str(SOURCE), "-ldl"],
                                  capture_output=True, text=True)
            if done.returncode:
                raise RuntimeError(f"building {SOURCE.name} failed:\n{done.stderr}")
            os.replace(out, lib)
    return lib


def env(name: str) -> dict[str, str]:
    """Environment variables that make a new process see CPU `name` of CPUS."""
    cpu = CPUS[name]
    return {"LD_PRELOAD": str(library()), "OTHERCPU_CACHES_KIB": ",".join(map(str, cpu.caches_kib)),
            "OTHERCPU_HIDE": cpu.hide}


def _host_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((x for x in text.splitlines() if x.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def unavailable(name: str) -> str | None:
    """Why CPU `name` cannot be presented here, or None when it can (checked by running a process)."""
    cpu = CPUS[name]
    try:
        variables = env(name)
    except RuntimeError as e:
        return str(e)
    if cpu.needs not in _host_flags():
        return f"presenting {name} hides extensions, it cannot add them: this CPU lacks {cpu.needs}"
    done = subprocess.run([sys.executable, "-c", "pass"], env={**os.environ, **variables},
                          capture_output=True, text=True)
    if done.returncode:
        return done.stderr.strip() or f"a process under othercpu ended with {done.returncode}"
    return None


def main() -> None:
    if len(sys.argv) < 4 or sys.argv[1] not in CPUS or sys.argv[2] != "--":
        sys.exit(f"usage: python {sys.argv[0]} {{{','.join(CPUS)}}} -- command [args...]")
    why = unavailable(sys.argv[1])
    if why:
        sys.exit(f"othercpu: {why}")
    os.execvpe(sys.argv[3], sys.argv[3:], {**os.environ, **env(sys.argv[1])})


if __name__ == "__main__":
    main()
