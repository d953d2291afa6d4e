"""Scaling out on this machine: what distributed tuning, distributed training and parallel experiments buy.

Usage:
  python benchmarks/bench_scale.py tune  [--n-images 600] [--image-size 48] [--trials 4] [--epochs 2]
  python benchmarks/bench_scale.py train [--n-images 600] [--image-size 48] [--epochs 3]
  python benchmarks/bench_scale.py queue [--configs 1:0 2:0 2:1] [--keep]
  python benchmarks/bench_scale.py project --log repro.log [--machines 1 2 4 8]

`tune` runs the tune stage (`tune.workers` 1, then 2 local KerasTuner workers plus their chief) and
reports trials per hour; `train` runs train_baseline with `base.strategy` default (one process),
then multi_worker (two local processes, TF_CONFIG on 127.0.0.1) and reports training images per
second. Both use a small synthetic set that the real data stages prepare in a temporary directory,
with the repository's params.yaml shrunk by the options. Times are whole stage runs, TensorFlow
start-up included (the same for every row), so they are what `dvc repro` would see.

`queue` builds a temporary git + DVC repository as the e2e tests do (tests/test_dvc_workflows.py:
the project's code with the tests' tiny params, a first `dvc repro`, committed), then for each
`JOBS:THREADS` configuration queues two experiments with `base.threads=THREADS` and their own
`base.seed` (so every configuration re-runs the same stages, filter to evaluate, on the same amount
of data) and times `dvc queue start -j JOBS` until both have finished. Tiny experiments are mostly
start-up (Python, TensorFlow import, model building), which runs in parallel well; full-size
training is compute-bound, so there -j 2 on 2 cores should gain much less (not measured).

`project` turns a measured default run (the log of `dvc repro`, whose stages print "<stage> ran
for N s", and the metrics files it wrote) into per-image costs and projects the Kaggle-scale run:
24,245 kept galaxies split 70/15/15 and the README's full-scale epochs and trials, on 1 machine and
on N. Only the search's trials are independent; training on N machines is shown at the ideal 1/N,
a bound that leaves out the all-reduce cost (`train` measures that cost on one machine).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
# How DVC runs each stage (the model stages share `python -m stages.train <stage>`).
STAGE_CMDS = {name: s["cmd"] for name, s in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].items()}
sys.path.insert(0, str(REPO))  # the tests' fixture helpers, when run as `python benchmarks/bench_scale.py`
sys.path.insert(0, str(REPO / "benchmarks"))  # benchmarks/machine.py

from cosmic.learning.determinism import CPU_ENV_KEYS  # noqa: E402
from machine import cpu_description  # noqa: E402
from tests.conftest import tiny_params  # noqa: E402
from tests.test_dvc_workflows import QUEUED, _copy_project, _queue_rows  # noqa: E402

VENV_BIN = Path(sys.executable).parent
POLL_S = 3.0
QUEUE_TIMEOUT_S = 3600


def _env() -> dict[str, str]:
    # What a user's shell has: none of the settings the stages make themselves (base.deterministic,
    # base.threads), none of this interpreter's PYTHONPATH or git state.
    drop = {*CPU_ENV_KEYS, "PYTHONPATH"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("GIT_")}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", DVC_NO_ANALYTICS="1", PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}")
    return env


class Repo:
    def __init__(self, root: Path):
        self.root, self.env = root, _env()

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(args, cwd=self.root, env=self.env, capture_output=True, text=True)
        if check and done.returncode != 0:
            sys.exit(f"$ {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done

    def dvc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run(str(VENV_BIN / "dvc"), *args, check=check)

    def start_queue(self, jobs: int) -> None:
        """`dvc queue start -j jobs`, its output in a file: the workers it forks inherit its stdout and
        stderr, so with pipes it would seem to run until the last worker exits."""
        with tempfile.TemporaryFile("w+") as out:
            done = subprocess.run([str(VENV_BIN / "dvc"), "queue", "start", "-j", str(jobs)], cwd=self.root,
                                  env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
            out.seek(0)
            if done.returncode != 0:
                sys.exit(f"dvc queue start -j {jobs} failed:\n{out.read()[-3000:]}")


def build_repo(root: Path) -> Repo:
    """The e2e fixture's repository: project code, tiny params, DVC config, a first `dvc repro`, committed."""
    _copy_project(root)
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    repo = Repo(root)
    repo.run("git", "init", "-q", "-b", "main")
    for key, value in (("user.name", "bench"), ("user.email", "bench@example.invalid"), ("commit.gpgsign", "false")):
        repo.run("git", "config", key, value)
    repo.dvc("init", "-q")
    shutil.copy2(REPO / ".dvc" / "config", root / ".dvc" / "config")
    shutil.copytree(REPO / ".dvc" / "plots", root / ".dvc" / "plots")  # the page .dvc/config names
    shutil.copy2(REPO / ".dvcignore", root / ".dvcignore")
    repo.run("git", "add", "-A")
    repo.run("git", "commit", "-q", "-m", "tiny project")
    start = time.monotonic()
    repo.dvc("repro")
    print(f"first tiny dvc repro: {time.monotonic() - start:.0f} s", flush=True)
    repo.run("git", "add", "-A")
    repo.run("git", "commit", "-q", "-m", "first dvc repro")
    return repo


def time_queue(repo: Repo, jobs: int, threads: int, seeds: tuple[int, int]) -> float:
    """Wall seconds of `dvc queue start -j jobs` running two experiments with `threads`, to the last finish."""
    names = []
    for seed in seeds:
        done = repo.dvc("exp", "run", "--queue", "-S", f"base.threads={threads}", "-S", f"base.seed={seed}")
        names += QUEUED.findall(done.stdout + done.stderr)
    if len(names) != len(seeds):
        sys.exit(f"expected {len(seeds)} queued experiments, got {names}")
    start = time.monotonic()
    repo.start_queue(jobs)
    while time.monotonic() - start < QUEUE_TIMEOUT_S:
        time.sleep(POLL_S)
        rows = _queue_rows(repo.dvc("queue", "status"))
        if all(rows.get(n) not in (None, "Queued", "Running") for n in names):
            break
    else:
        sys.exit(f"queue not finished after {QUEUE_TIMEOUT_S} s")
    seconds = time.monotonic() - start
    failed = [n for n in names if rows.get(n) != "Success"]
    if failed:
        logs = "\n".join(repo.dvc("queue", "logs", n, check=False).stdout[-3000:] for n in failed)
        sys.exit(f"experiments failed: {rows}\n{logs}")
    return seconds


def queue(args: argparse.Namespace) -> None:
    configs = []
    for text in args.configs:
        try:
            jobs, threads = (int(x) for x in text.split(":"))
        except ValueError:
            sys.exit(f"--configs: {text!r} is not JOBS:THREADS (e.g. 2:1)")
        if jobs < 1 or threads < 0:
            sys.exit(f"--configs: {text!r} needs JOBS >= 1 and THREADS >= 0")
        configs.append((jobs, threads))

    print(f"CPU: {cpu_description()}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    repo = build_repo(tmp / "repo")
    results = []
    try:
        for i, (jobs, threads) in enumerate(configs):
            load = os.getloadavg()[0]
            seconds = time_queue(repo, jobs, threads, seeds=(1000 + 2 * i, 1001 + 2 * i))
            results.append((jobs, threads, seconds, load))
            print(f"-j {jobs}, base.threads={threads}: {seconds:.0f} s (load before: {load:.1f})", flush=True)
    finally:
        repo.dvc("queue", "stop", "--kill", check=False)
        if args.keep:
            print(f"kept {repo.root}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    first = results[0][2]
    print(f"\nTwo tiny experiments (filter..evaluate each), {cpu_description()}:")
    print("| dvc queue start | base.threads | wall s | vs first row | 1-min load before |")
    print("|---|---|---|---|---|")
    for jobs, threads, seconds, load in results:
        print(f"| -j {jobs} | {threads} | {seconds:.0f} | {first / seconds:.2f}x | {load:.1f} |")


def _stage_env(**extra) -> dict:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def _stage(name: str, cwd: Path, **extra_env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *STAGE_CMDS[name].split()[1:]], cwd=cwd, env=_stage_env(**extra_env),
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
    from cosmic.learning.cluster import free_port

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


def stages(args: argparse.Namespace) -> None:
    """`tune` or `train`: the stage timed in a temporary workspace with a small synthetic data set."""
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        root = Path(tmp)
        params = prepare(root, args)
        rows = (bench_tune if args.command == "tune" else bench_train)(root, params, args)
        n_train = json.loads((root / "data/processed/meta.json").read_text())["counts"]["train"]
    print(f"\n{args.command}: {n_train} training images of {args.image_size} px; CPU: {cpu_description()}")
    width = max(len(r[0]) for r in rows)
    for label, result in rows:
        print(f"  {label:<{width}}  {result}")


# The Kaggle-scale run the README's "Full-scale run" describes: the reference's 24,245 kept galaxies.
KAGGLE_ROWS, KAGGLE_KEPT = 61_578, 24_245
FULL_SCALE = {"train_baseline": 30, "train_transfer": 10 + 20, "train_optimized": 30,
              "tune": (30, 10)}  # epochs; tune: (trials, epochs per trial)
RAN_FOR = re.compile(r" (\w+) ran for ([0-9.]+) s")


def project(args: argparse.Namespace) -> None:
    """Per-image costs of a measured default run, projected to the Kaggle-scale run on 1 and N machines."""
    seconds = {stage: float(s) for stage, s in RAN_FOR.findall(Path(args.log).read_text())}
    missing = [s for s in ("filter", "preprocess", *FULL_SCALE, "evaluate") if s not in seconds]
    if missing:
        sys.exit(f"{args.log}: no 'ran for' line of {missing}; give the log of a full `dvc repro`")
    metrics = {s: json.loads((REPO / "metrics" / f"{s}.json").read_text())
               for s in ("data", "split", "train_baseline", "train_transfer", "train_optimized", "tune")}
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    split = {k: v["n"] for k, v in metrics["split"].items()}
    fractions = {k: params["split"][k] for k in ("train", "val", "test")}
    kaggle = {k: round(KAGGLE_KEPT * f) for k, f in fractions.items()}
    rows = []  # stage, measured work, s per unit, projected work, projected s, parallel over machines?
    rows.append(("filter (decode every image)", metrics["data"]["n_rows"], seconds["filter"], KAGGLE_ROWS, False))
    rows.append(("preprocess (crop + resize)", sum(split.values()), seconds["preprocess"], KAGGLE_KEPT, False))
    per_epoch, per_epoch_kaggle = split["train"] + split["val"], kaggle["train"] + kaggle["val"]
    for stage in ("train_baseline", "train_transfer"):
        rows.append((stage, metrics[stage]["epochs_run"] * per_epoch, seconds[stage],
                     FULL_SCALE[stage] * per_epoch_kaggle, "train"))
    trials, epochs = FULL_SCALE["tune"]
    rows.append(("tune", metrics["tune"]["n_trials"] * params["tune"]["epochs_per_trial"] * per_epoch, seconds["tune"],
                 trials * epochs * per_epoch_kaggle, "trials"))
    rows.append(("train_optimized", metrics["train_optimized"]["epochs_run"] * per_epoch, seconds["train_optimized"],
                 FULL_SCALE["train_optimized"] * per_epoch_kaggle, "train"))
    rows.append(("evaluate (TTA x8, bootstrap)", split["test"], seconds["evaluate"], kaggle["test"], False))

    print(f"Measured: {args.log} ({params['base']['image_size']} px, {split['train']} train / {split['val']} val / "
          f"{split['test']} test images); CPU: {cpu_description()}")
    print(f"Projected: {KAGGLE_KEPT:,} kept of {KAGGLE_ROWS:,} Kaggle rows ({kaggle['train']:,} / {kaggle['val']:,} / "
          f"{kaggle['test']:,}), full-scale epochs {FULL_SCALE}, same image size and CPU. Times in hours.\n")
    head = "| stage | measured | ms per image(-epoch) | projected work | " + " | ".join(
        f"{n} machine{'s' if n > 1 else ''}" for n in args.machines) + " |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    totals = [0.0] * len(args.machines)
    for name, work, secs, kaggle_work, parallel in rows:
        per_unit = secs / work
        cells = []
        for i, n in enumerate(args.machines):
            hours = per_unit * kaggle_work / 3600
            if parallel == "trials":
                hours *= math.ceil(trials / n) / trials
            elif parallel == "train":
                hours /= n
            totals[i] += hours
            cells.append(f"{hours:.2f}")
        print(f"| {name} | {secs:.0f} s for {work:,} | {1000 * per_unit:.1f} | {kaggle_work:,} | "
              + " | ".join(cells) + " |")
    print("| **total** (fetch/import not included) | | | | " + " | ".join(f"**{t:.1f}**" for t in totals) + " |")
    print("\nN machines: tune = KerasTuner workers (trials in parallel, ceil(trials / N) rounds); training = "
          "multi_worker at the ideal 1/N (no all-reduce cost); filter, preprocess and evaluate run on one machine.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)

    # --- queue: parallel DVC experiments (dvc queue start -j N, base.threads) ---
    q = sub.add_parser("queue", help="wall time of two tiny queued experiments with -j 1 vs -j 2")
    q.add_argument("--configs", nargs="+", default=["1:0", "2:0", "2:1"], metavar="JOBS:THREADS",
                   help="dvc queue start -j JOBS with base.threads=THREADS (default: 1:0 2:0 2:1)")
    q.add_argument("--keep", action="store_true", help="keep the temporary repository")
    q.set_defaults(func=queue)

    # --- tune: KerasTuner's chief/worker search; train: tf.distribute strategies ---
    tune = sub.add_parser("tune", help="trials/hour of the tune stage with 1 and 2 local KerasTuner workers")
    tune.add_argument("--trials", type=int, default=4)
    tune.add_argument("--epochs", type=int, default=2, help="epochs per trial")
    train = sub.add_parser("train", help="images/s of train_baseline with base.strategy default vs multi_worker")
    train.add_argument("--epochs", type=int, default=3)
    for p in (tune, train):
        p.add_argument("--n-images", type=int, default=600, help="synthetic images generated (before filtering)")
        p.add_argument("--image-size", type=int, default=48)
        p.set_defaults(func=stages)

    # --- project: the Kaggle-scale run from a measured default run ---
    pr = sub.add_parser("project", help="project the Kaggle-scale run from a measured default `dvc repro`")
    pr.add_argument("--log", required=True, help="output of `dvc repro` of the default pipeline (every stage ran)")
    pr.add_argument("--machines", type=int, nargs="+", default=[1, 2, 4, 8])
    pr.set_defaults(func=project)

    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
