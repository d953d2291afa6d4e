"""What distributing the tune and training stages buys on this machine.

Usage:
  python benchmarks/bench_scale.py tune  [--n-images 600] [--image-size 48] [--trials 4] [--epochs 2]
  python benchmarks/bench_scale.py train [--n-images 600] [--image-size 48] [--epochs 3]

`tune` runs the tune stage (`tune.workers` 1, then 2 local KerasTuner workers plus their chief) and
reports trials per hour; `train` runs train_baseline with `base.strategy` default (one process),
then multi_worker (two local processes, TF_CONFIG on 127.0.0.1) and reports training images per
second. Both use a small synthetic set that the real data stages prepare in a temporary directory,
with the repository's params.yaml shrunk by the options. Times are whole stage runs, TensorFlow
start-up included (the same for every row), so they are what `dvc repro` would see.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cosmic.distributed import free_port  # noqa: E402


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _env(**extra) -> dict:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def _stage(name: str, cwd: Path, **extra_env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", f"stages.{name}"], cwd=cwd, env=_env(**extra_env),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            sys.exit(f"a stage failed (exit code {p.returncode}):\n{err[-3000:]}")


def prepare(root: Path, args) -> dict:
    """A workspace with data/processed of `args.n_images` synthetic galaxies; returns its params."""
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    p["fetch"]["synthetic"].update(n_images=args.n_images, workers=2)
    p["base"]["image_size"] = args.image_size
    p["filter"]["n_sample_images"] = 2
    (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    for name in ("fetch", "filter", "split", "preprocess"):
        _wait([_stage(name, root)])
    return p


def _write(root: Path, p: dict) -> None:
    (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))


def bench_tune(root: Path, p: dict, args) -> list[tuple[str, str]]:
    p["tune"].update(max_trials=args.trials, epochs_per_trial=args.epochs, timeout=3600)
    rows = []
    for workers in (1, 2):
        p["tune"]["workers"] = workers
        _write(root, p)
        start = time.monotonic()
        _wait([_stage("tune", root)])
        seconds = time.monotonic() - start
        n = json.loads((root / "metrics/tune.json").read_text())["n_trials"]
        label = "in-process (tune.workers 1)" if workers == 1 else f"chief + {workers} workers (tune.workers {workers})"
        rows.append((label, f"{n} trials in {seconds:.0f} s = {n / seconds * 3600:.0f} trials/h"))
    return rows


def bench_train(root: Path, p: dict, args) -> list[tuple[str, str]]:
    p["train_baseline"].update(epochs=args.epochs, patience=args.epochs)
    rows = []
    for strategy in ("default", "multi_worker"):
        p["base"]["strategy"] = strategy
        _write(root, p)
        start = time.monotonic()
        if strategy == "default":
            _wait([_stage("train_baseline", root)])
        else:
            cluster = {"worker": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]}
            _wait([_stage("train_baseline", root,
                          TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}))
                   for i in range(2)])
        seconds = time.monotonic() - start
        m = json.loads((root / "metrics/train_baseline.json").read_text())
        images = m["n_train"] * m["epochs_run"]
        label = "default (1 process)" if strategy == "default" else "multi_worker (2 local processes)"
        rows.append((label, f"{images} images in {seconds:.0f} s = {images / seconds:.1f} images/s "
                            f"(val accuracy {m['val']['accuracy']:.3f})"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    tune = sub.add_parser("tune", help="trials/hour of the tune stage with 1 and 2 local KerasTuner workers")
    tune.add_argument("--trials", type=int, default=4)
    tune.add_argument("--epochs", type=int, default=2, help="epochs per trial")
    train = sub.add_parser("train", help="images/s of train_baseline with base.strategy default vs multi_worker")
    train.add_argument("--epochs", type=int, default=3)
    for p in (tune, train):
        p.add_argument("--n-images", type=int, default=600, help="synthetic images generated (before filtering)")
        p.add_argument("--image-size", type=int, default=48)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        root = Path(tmp)
        params = prepare(root, args)
        rows = (bench_tune if args.command == "tune" else bench_train)(root, params, args)
        n_train = json.loads((root / "data/processed/meta.json").read_text())["counts"]["train"]
        shutil.rmtree(root / "data", ignore_errors=True)
    print(f"\n{args.command}: {n_train} training images of {args.image_size} px; "
          f"CPU: {cpu_model()}, {os.cpu_count()} cores")
    width = max(len(r[0]) for r in rows)
    for label, result in rows:
        print(f"  {label:<{width}}  {result}")


if __name__ == "__main__":
    main()
