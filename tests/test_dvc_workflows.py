"""The real DVC workflows, end to end, in a temporary git repository with the tiny configuration.

One module fixture copies the project (code, dvc.yaml, params, DVC config; never data, models,
metrics, plots or dvc.lock) into a fresh git + DVC repository, writes `tiny_params()` to its
params.yaml, runs the first `dvc repro` and commits the results. The tests then run in file order
on that repository, each leaving it clean at a commit (tests that change the workspace restore
it), and every command runs as a subprocess of the virtualenv's own `dvc`, exactly as a user
would type it. Nothing is mocked.

Measured on a 2-core CPU: first `dvc repro` 50-65 s (fixture setup), param-change re-run ~25 s,
workspace experiment ~25 s, queued sweep of two ~65 s; the whole module 2.7-3 min.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from cosmic import registry
from tests.conftest import N_TINY, REPO, tiny_params

pytestmark = pytest.mark.e2e

VENV_BIN = Path(sys.executable).parent  # not resolved: the venv's bin, whose python is this interpreter
DVC = VENV_BIN / "dvc"

# What the temporary repository is made of. Generated state (data/, models/, metrics/, plots/,
# dvc.lock, dvc_plots/) is never copied: the first `dvc repro` must produce all of it.
COPY_DIRS = ("stages", "cosmic")
COPY_FILES = ("dvc.yaml", "params.yaml", ".dvcignore", ".gitignore", "pyproject.toml")
GENERATED = ("data", "models", "metrics", "plots", "dvclive", "dvc_plots")

SPEC = yaml.safe_load((REPO / "dvc.yaml").read_text())
STAGES = list(SPEC["stages"])
TIMING = "metrics/timing.json"  # git-ignored on purpose (machine-dependent)

RUNNING = re.compile(r"Running stage '([^']+)'")
SKIPPED = re.compile(r"Stage '([^']+)' didn't change, skipping")
QUEUED = re.compile(r"Queued experiment '([^']+)'")
RAN_EXPS = re.compile(r"Ran experiment\(s\): (.+)")

# Timeouts (s). A full tiny `dvc repro` takes ~65 s here; generous margins for a loaded machine.
T_REPRO = 900
T_CMD = 180
T_QUEUE = 600

SWEEP = (0.3, 0.5)  # train_baseline.dropout values of the queued sweep
# What a user compares experiments by (README: `dvc exp show` recipes); every model has each of them.
KEY_METRICS = ("accuracy", "balanced_accuracy", "roc_auc", "elliptical_recall", "spiral_recall", "tta_accuracy")


# ----------------------------------------------------------------------------------------------
# helpers


def _tail(text: str | bytes | None, lines: int = 60) -> str:
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def _outs(entries) -> list[str]:
    """Paths of a dvc.yaml `outs` / `metrics` / `plots` list (strings or {path: options})."""
    return [e if isinstance(e, str) else next(iter(e)) for e in entries or []]


def _declared_outputs() -> dict[str, list[str]]:
    """Stage name -> every path it declares as an output or metric."""
    return {name: _outs(st.get("outs")) + _outs(st.get("metrics")) for name, st in SPEC["stages"].items()}


def _source_deps() -> set[str]:
    """dvc.yaml deps that no stage produces (code and inputs that must travel with the repository)."""
    produced = [p for outs in _declared_outputs().values() for p in outs]
    deps = {d for st in SPEC["stages"].values() for d in st.get("deps", [])}
    return {d for d in deps if not any(d == p or d.startswith(p.rstrip("/") + "/") for p in produced)}


class Result:
    def __init__(self, args: list[str], returncode: int, stdout: str, stderr: str, seconds: float):
        self.args, self.returncode, self.stdout, self.stderr, self.seconds = args, returncode, stdout, stderr, seconds

    @property
    def output(self) -> str:
        return self.stdout + "\n" + self.stderr

    def describe(self) -> str:
        return (f"$ {' '.join(self.args)}  (exit {self.returncode}, {self.seconds:.0f} s)\n"
                f"--- stdout (tail) ---\n{_tail(self.stdout)}\n--- stderr (tail) ---\n{_tail(self.stderr)}")

    def json(self):
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError as e:
            pytest.fail(f"not JSON ({e}):\n{self.describe()}")


class Project:
    """The temporary git + DVC repository and a way to run commands in it."""

    def __init__(self, root: Path):
        self.root = root
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        # No PYTHONPATH: stage commands must resolve `cosmic` exactly as they do for a user.
        env.pop("PYTHONPATH", None)
        env.update(TF_CPP_MIN_LOG_LEVEL="2", DVC_NO_ANALYTICS="1", PYTHONUNBUFFERED="1",
                   PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}")
        self.env = env
        self.first_sha = ""
        self.first_repro: Result | None = None
        self.timings: dict[str, float] = {}

    def run(self, *args: str, timeout: float = T_CMD, check: bool = True) -> Result:
        args = [str(a) for a in args]
        start = time.monotonic()
        # Own process group, so a timeout also ends the `python stages/...` children DVC started.
        proc = subprocess.Popen(args, cwd=self.root, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            res = Result(args, -9, out or "", err or "", time.monotonic() - start)
            pytest.fail(f"timed out after {timeout} s:\n{res.describe()}")
        res = Result(args, proc.returncode, out, err, time.monotonic() - start)
        if check and res.returncode != 0:
            pytest.fail(f"command failed:\n{res.describe()}")
        return res

    def dvc(self, *args: str, **kw) -> Result:
        return self.run(str(DVC), *args, **kw)

    def git(self, *args: str, **kw) -> Result:
        return self.run("git", *args, **kw)

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").stdout.strip()

    def porcelain(self) -> str:
        return self.git("status", "--porcelain").stdout.strip()

    def params(self) -> dict:
        return yaml.safe_load((self.root / "params.yaml").read_text())

    def write_params(self, p: dict) -> None:
        (self.root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))

    def restore_head(self) -> None:
        """Back to the last commit: git files, then DVC-cached outputs from the cache."""
        self.git("reset", "-q", "--hard", "HEAD")
        self.git("clean", "-q", "-fd")  # untracked, not ignored (e.g. dvc_plots/)
        self.dvc("checkout", "--force", timeout=T_CMD)

    def assert_clean(self) -> None:
        status = self.dvc("status", "--json")
        assert status.json() == {}, f"dvc status is not clean:\n{status.describe()}"
        assert self.porcelain() == "", f"git status is not clean:\n{self.porcelain()}"


def _ran_and_skipped(res: Result) -> tuple[list[str], set[str]]:
    return RUNNING.findall(res.output), set(SKIPPED.findall(res.output))


def _exp_revs(show: list) -> list[tuple[dict, dict, dict]]:
    """(baseline entry, experiment entry, rev entry) for every experiment of `dvc exp show --json`.

    DVC 3.67 shape: a list whose first element is the workspace ({"rev": "workspace", ...}) and then
    one element per baseline commit: {"rev": sha, "name": branch, "data": {...}, "error": ...,
    "experiments": [{"name", "executor": None | {"state": "queued|running|success|failed", ...},
    "revs": [{"rev": sha, "name", "error", "data": {"params": {"params.yaml": {"data": {...}}},
    "metrics": {path: {"data": {...}} | {"error": {...}}}, "deps", "outs", "timestamp"}}]}]}.
    """
    found = []
    for base in show:
        for exp in base.get("experiments") or []:
            for rev in exp.get("revs") or []:
                found.append((base, exp, rev))
    return found


def _params(entry: dict) -> dict:
    return entry["data"]["params"]["params.yaml"]["data"]


def _metric(entry: dict, path: str) -> dict:
    m = entry["data"]["metrics"].get(path)
    assert m is not None, f"{path} missing from the experiment's metrics: {sorted(entry['data']['metrics'])}"
    assert "error" not in m, f"{path} could not be read for {entry.get('name')}: {m['error']}"
    return m["data"]


def _describe_exps(show: list) -> str:
    rows = []
    for base, exp, rev in _exp_revs(show):
        try:
            tb = _params(rev)["train_baseline"]
        except (KeyError, TypeError):
            tb = "?"
        rows.append(f"{base.get('name') or base['rev'][:7]} / {exp.get('name')}: executor={exp.get('executor')} "
                    f"error={rev.get('error')} train_baseline={tb}")
    return "\n".join(rows) or "(no experiments)"


def _new_dropout(current: float) -> float:
    return next(v for v in (0.4, 0.45, 0.35) if v != current and v not in SWEEP)


# ----------------------------------------------------------------------------------------------
# the repository


def _copy_project(dst: Path) -> None:
    for d in COPY_DIRS:
        shutil.copytree(REPO / d, dst / d, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for f in COPY_FILES:
        shutil.copy2(REPO / f, dst / f)
    # Any other source dependency of dvc.yaml that exists in the working tree (even if not committed).
    for dep in sorted(_source_deps()):
        src, target = REPO / dep, dst / dep
        if target.exists() or not src.exists() or dep.split("/")[0] in GENERATED:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, target)


def tiny_repo(root: Path) -> Project:
    """The project copied into root as a new git + DVC repository on the tiny configuration, committed."""
    _copy_project(root)
    proj = Project(root)
    proj.write_params(tiny_params())
    proj.git("init", "-q", "-b", "main")
    proj.git("config", "user.name", "e2e test")
    proj.git("config", "user.email", "e2e@example.invalid")
    proj.git("config", "commit.gpgsign", "false")
    proj.dvc("init", "-q")
    shutil.copy2(REPO / ".dvc" / "config", root / ".dvc" / "config")
    # The plot templates and the offline HTML page that .dvc/config's plots.html_template names.
    shutil.copytree(REPO / ".dvc" / "plots", root / ".dvc" / "plots")
    shutil.copy2(REPO / ".dvcignore", root / ".dvcignore")  # dvc init may write its own
    proj.commit("tiny Cosmic Classifier project")
    return proj


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    if not DVC.exists():
        pytest.skip(f"no dvc executable next to {sys.executable}")
    root = tmp_path_factory.mktemp("dvc_e2e")
    proj = tiny_repo(root)
    missing = sorted(d for d in _source_deps() if not (root / d).exists())
    assert not missing, f"dvc.yaml deps missing from the copied project: {missing}"

    proj.first_repro = proj.dvc("repro", timeout=T_REPRO, check=False)
    proj.timings["first dvc repro"] = proj.first_repro.seconds
    if proj.first_repro.returncode != 0:
        pytest.fail(f"first dvc repro failed:\n{proj.first_repro.describe()}")
    proj.first_sha = proj.commit("first dvc repro")
    try:
        yield proj
    finally:
        # Never leave a queue worker behind (it is a detached process of this temporary repository).
        proj.dvc("queue", "stop", "--kill", timeout=60, check=False)
        sys.stderr.write("\ne2e timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in proj.timings.items()) + "\n")


# ----------------------------------------------------------------------------------------------
# 1. the first `dvc repro`


def test_first_repro_runs_every_stage_and_produces_every_output(project):
    res = project.first_repro
    ran, _ = _ran_and_skipped(res)
    assert ran == STAGES, f"stages run {ran}, dvc.yaml order {STAGES}:\n{res.describe()}"

    declared = _declared_outputs()
    missing = [p for paths in declared.values() for p in paths if not (project.root / p).exists()]
    missing += [p for p in _outs(SPEC.get("metrics")) if not (project.root / p).exists()]
    assert not missing, f"declared outputs not produced: {missing}\n{res.describe()}"

    lock = yaml.safe_load((project.root / "dvc.lock").read_text())
    assert list(lock["stages"]) == STAGES
    for name, paths in declared.items():
        locked = {o["path"] for o in lock["stages"][name].get("outs", [])}
        assert set(paths) == locked, f"dvc.lock outs of {name}: {sorted(locked)} != dvc.yaml {sorted(paths)}"
        assert lock["stages"][name]["cmd"] == SPEC["stages"][name]["cmd"]

    # Committed: git carries the uncached metrics/plots and dvc.lock, never the cached data and models.
    assert project.porcelain() == "", project.porcelain()
    tracked = set(project.git("ls-files").stdout.split())
    assert {"dvc.lock", "metrics/evaluate.json", "metrics/train_baseline.json", "metrics/report.md"} <= tracked
    assert TIMING not in tracked, "metrics/timing.json is machine-dependent and must stay git-ignored"
    leaked = sorted(f for f in tracked if f.startswith(("data/", "models/")) and not f.endswith(".gitignore"))
    assert not leaked, f"DVC-cached outputs committed to git: {leaked}"


# ----------------------------------------------------------------------------------------------
# 2. nothing changed -> nothing runs


def test_second_repro_runs_nothing(project):
    res = project.dvc("repro")
    ran, skipped = _ran_and_skipped(res)
    assert ran == [], f"stages re-ran with nothing changed: {ran}\n{res.describe()}"
    assert "Data and pipelines are up to date" in res.output or skipped == set(STAGES), res.describe()
    status = project.dvc("status")
    assert "Data and pipelines are up to date" in status.output, status.describe()
    project.assert_clean()


# ----------------------------------------------------------------------------------------------
# 3. one param changes -> its stage and descendants only; params/metrics diff, then across commits


def test_param_change_reruns_only_the_stage_and_descendants(project):
    p = project.params()
    old = p["train_baseline"]["dropout"]
    new = _new_dropout(old)
    p["train_baseline"]["dropout"] = new
    project.write_params(p)

    status = project.dvc("status", "--json").json()
    assert set(status) == {"train_baseline"}, f"dvc status after the edit: {status}"
    pdiff = project.dvc("params", "diff", "--json").json()
    assert set(pdiff) == {"params.yaml"} and set(pdiff["params.yaml"]) == {"train_baseline.dropout"}, pdiff
    assert pdiff["params.yaml"]["train_baseline.dropout"]["old"] == old
    assert pdiff["params.yaml"]["train_baseline.dropout"]["new"] == new

    res = project.dvc("repro", timeout=T_REPRO)
    project.timings["baseline-only dvc repro"] = res.seconds
    ran, skipped = _ran_and_skipped(res)
    assert ran == ["train_baseline", "evaluate"], f"stages run: {ran}\n{res.describe()}"
    assert skipped == set(STAGES) - {"train_baseline", "evaluate"}, res.describe()

    mdiff = project.dvc("metrics", "diff", "--json").json()  # workspace against HEAD
    changed = set(mdiff) - {TIMING}
    assert "metrics/train_baseline.json" in changed, f"no metric of train_baseline changed: {mdiff}"
    assert changed <= {"metrics/train_baseline.json", "metrics/test.json", "metrics/evaluate.json"}, (
        f"metrics of stages that did not run changed: {sorted(changed)}")

    project.commit(f"train_baseline.dropout {old} -> {new}")
    assert project.porcelain() == ""
    across = project.dvc("metrics", "diff", "HEAD~1", "--json").json()
    assert "metrics/train_baseline.json" in across, f"dvc metrics diff HEAD~1: {across}"
    assert across["metrics/train_baseline.json"] == mdiff["metrics/train_baseline.json"]
    pacross = project.dvc("params", "diff", "HEAD~1", "--json").json()
    assert pacross == pdiff, f"dvc params diff HEAD~1: {pacross} != {pdiff}"


# ----------------------------------------------------------------------------------------------
# 4. an experiment in the workspace


def test_exp_run_records_params_and_metrics(project):
    head = project.head()
    head_params = project.params()
    try:
        res = project.dvc("exp", "run", "-S", "train_baseline.epochs=2", timeout=T_REPRO)
        project.timings["dvc exp run (baseline epochs=2)"] = res.seconds
        ran, _ = _ran_and_skipped(res)
        assert ran == ["train_baseline", "evaluate"], f"stages run: {ran}\n{res.describe()}"
        names = RAN_EXPS.findall(res.output)
        assert names, f"no 'Ran experiment(s):' line:\n{res.describe()}"

        show = project.dvc("exp", "show", "--json").json()
        assert show[0]["rev"] == "workspace", show[0].get("rev")
        hits = [(b, e, r) for b, e, r in _exp_revs(show) if _params(r)["train_baseline"]["epochs"] == 2]
        assert len(hits) == 1, f"experiments with train_baseline.epochs == 2:\n{_describe_exps(show)}"
        base, exp, rev = hits[0]
        assert exp["name"] == names[0].strip()
        assert base["rev"] == head and base["name"] == "main", (base["rev"], base["name"])
        assert rev["error"] is None, rev["error"]

        expected = json.loads(json.dumps(head_params))
        expected["train_baseline"]["epochs"] = 2
        assert _params(rev) == expected, "the experiment changed params other than train_baseline.epochs"

        tb = _metric(rev, "metrics/train_baseline.json")
        assert tb["epochs_run"] == 2 and set(tb["val"]) >= {"loss", "accuracy", "auc"}, tb
        ev = _metric(rev, "metrics/evaluate.json")
        for model in registry.model_names():
            assert set(KEY_METRICS) <= set(ev[model]["test"]), (model, sorted(ev[model]["test"]))
            assert all(isinstance(v, (int, float)) for v in ev[model]["test"].values()), ev[model]["test"]
        summary = _metric(rev, "metrics/test.json")
        assert summary["auc"] == {m: ev[m]["test"]["roc_auc"] for m in registry.model_names()}
        # what `dvc exp show` lists first: the summary, then the other files in dvc.yaml's order
        assert list(rev["data"]["metrics"]) == SPEC["metrics"], list(rev["data"]["metrics"])
        assert _metric(base, "metrics/train_baseline.json")["epochs_run"] == 1
    finally:
        project.restore_head()
    project.assert_clean()


# ----------------------------------------------------------------------------------------------
# 5. plots and metrics


def _plot_ids() -> list[tuple[str, bool]]:
    """(id, is_directory) of every top-level plot definition of dvc.yaml."""
    ids = []
    for entry in SPEC.get("plots", []):
        pid = entry if isinstance(entry, str) else next(iter(entry))
        opts = {} if isinstance(entry, str) else (entry[pid] or {})
        is_dir = "y" not in opts and not Path(pid).suffix
        ids.append((pid, is_dir))
    return ids


def test_plots_and_metrics_show(project, tmp_path):
    out = tmp_path / "dvc_plots"
    res = project.dvc("plots", "show", "--out", str(out))
    html = out / "index.html"
    assert html.is_file() and html.stat().st_size > 1000, res.describe()
    assert "failed" not in res.output.lower(), res.describe()
    assert "<script src=" not in html.read_text(encoding="utf8"), "the page loads scripts: not offline"

    data = project.dvc("plots", "show", "--json", "--out", str(tmp_path / "plots_json")).json()
    assert not data.get("errors"), data.get("errors")
    rendered = data["data"]
    for pid, is_dir in _plot_ids():
        ok = any(k.startswith(pid.rstrip("/") + "/") for k in rendered) if is_dir else pid in rendered
        assert ok, f"plot {pid!r} of dvc.yaml not rendered; rendered: {sorted(rendered)}"

    text = project.dvc("metrics", "show")
    assert "metrics/evaluate.json" in text.stdout, text.describe()
    shown = project.dvc("metrics", "show", "--json").json()
    files = shown[""]["data"]
    declared = [p for st in SPEC["stages"].values() for p in _outs(st.get("metrics"))] + _outs(SPEC.get("metrics"))
    for path in declared:
        assert path in files and "error" not in files[path], f"{path}: {files.get(path)}"
    assert project.porcelain() == "", "plots/metrics show changed the repository"


def test_models_are_registry_artifacts(project, tmp_path):
    """README recipe: a model version registered with GTO is fetched by `dvc artifacts get`, byte for byte."""
    tags = []
    try:
        for name, spec in SPEC["artifacts"].items():
            assert spec["type"] == "model" and spec["desc"] and spec["labels"], name
            project.run(str(VENV_BIN / "gto"), "register", name, "--version", "v0.1.0")
            tags.append(f"{name}@v0.1.0")
            out = tmp_path / f"{name}.keras"
            project.dvc("artifacts", "get", str(project.root), name, "-o", str(out))
            assert out.read_bytes() == (project.root / spec["path"]).read_bytes(), name
    finally:
        for tag in tags:
            project.git("tag", "-d", tag)
    project.assert_clean()


# ----------------------------------------------------------------------------------------------
# 6. a queued sweep


def _queue_rows(status: Result) -> dict[str, str]:
    """Experiment name -> status ("Queued", "Running", "Success", "Failed", ...) of `dvc queue status`."""
    rows = {}
    for line in status.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and re.fullmatch(r"[0-9a-f]{7,}", parts[0]):
            rows[parts[1]] = parts[-1]
    return rows


def start_queue(project: Project, jobs: int = 1) -> None:
    """`dvc queue start -j jobs`, its output in a file: the workers it forks inherit its stdout and stderr,
    so with pipes (Project.run) it would seem to run until the last worker exits."""
    with tempfile.TemporaryFile("w+") as out:
        done = subprocess.run([str(DVC), "queue", "start", "-j", str(jobs)], cwd=project.root, env=project.env,
                              stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, timeout=T_CMD)
        out.seek(0)
        text = out.read()
    # Workers still alive from an earlier start are reused, so fewer than `jobs` may be new.
    assert done.returncode == 0 and "new experiments task queue worker" in text, text


def _wait_for_queue(project: Project, names: list[str]) -> dict[str, str]:
    """Poll `dvc queue status` until none of `names` is queued or running; their final states."""
    start = time.monotonic()
    rows: dict[str, str] = {}
    while time.monotonic() - start < T_QUEUE:
        time.sleep(5)
        status = project.dvc("queue", "status")
        rows = _queue_rows(status)
        if all(rows.get(n) not in (None, "Queued", "Running") for n in names):
            return rows
    pytest.fail(f"queue not finished after {T_QUEUE} s: {rows}")


def test_queued_sweep_runs_every_experiment(project):
    head = project.head()
    res = project.dvc("exp", "run", "--queue", "-S", "train_baseline.dropout=" + ",".join(map(str, SWEEP)))
    names = QUEUED.findall(res.output)
    assert len(names) == len(SWEEP), f"expected {len(SWEEP)} queued experiments:\n{res.describe()}"
    assert project.porcelain() == "", "queueing changed the workspace"

    start = time.monotonic()
    start_queue(project)
    rows = _wait_for_queue(project, names)
    project.timings[f"queued sweep ({len(SWEEP)} exps)"] = time.monotonic() - start

    failed = [n for n in names if rows.get(n) != "Success"]
    if failed:
        logs = "\n".join(f"--- dvc queue logs {n} ---\n{_tail(project.dvc('queue', 'logs', n, check=False).output)}"
                         for n in failed)
        pytest.fail(f"queued experiments not successful: {rows}\n{logs}")

    show = project.dvc("exp", "show", "--json").json()
    by_name = {e["name"]: (b, e, r) for b, e, r in _exp_revs(show)}
    dropouts = {}
    for n in names:
        assert n in by_name, f"{n} missing from dvc exp show --json:\n{_describe_exps(show)}"
        base, exp, rev = by_name[n]
        assert base["rev"] == head, f"{n} is based on {base['rev']}, not HEAD {head}"
        assert (exp.get("executor") or {}).get("state") == "success", exp.get("executor")
        assert rev["error"] is None, rev["error"]
        dropouts[n] = _params(rev)["train_baseline"]["dropout"]
        assert "val" in _metric(rev, "metrics/train_baseline.json")
        assert "baseline" in _metric(rev, "metrics/evaluate.json")
    assert sorted(dropouts.values()) == sorted(SWEEP), dropouts

    # base.deterministic: a temp-dir experiment with the first commit's params reproduces its metrics.
    first = json.loads(project.git("show", f"{project.first_sha}:metrics/train_baseline.json").stdout)
    first_dropout = yaml.safe_load(project.git("show", f"{project.first_sha}:params.yaml").stdout)[
        "train_baseline"]["dropout"]
    same = [n for n, d in dropouts.items() if d == first_dropout]
    if same:
        rerun = _metric(by_name[same[0]][2], "metrics/train_baseline.json")
        assert rerun["val"] == first["val"], (
            f"same params, different val metrics: first run {first['val']}, queued {rerun['val']}")
    assert project.porcelain() == "", "queued experiments changed the workspace"


def test_queued_experiment_reads_dvc_tracked_kaggle_files(project):
    """README recipe: Kaggle files tracked with `dvc add` reach queued experiments, which run in a temp dir."""
    kaggle = project.root / "data/external/galaxy-zoo"
    try:
        project.run(sys.executable, "-m", "cosmic.data.synthetic", str(kaggle), "--n-images", str(N_TINY), "--seed", "7")
        project.dvc("add", "data/external/galaxy-zoo")
        project.commit("track a tiny Kaggle-format folder with DVC")
        res = project.dvc("exp", "run", "--queue", "-S", "fetch.source=kaggle")
        names = QUEUED.findall(res.output)
        assert len(names) == 1, res.describe()
        start_queue(project)
        rows = _wait_for_queue(project, names)
        if rows.get(names[0]) != "Success":
            pytest.fail(f"{rows}\n{_tail(project.dvc('queue', 'logs', names[0], check=False).output)}")
        show = project.dvc("exp", "show", "--json").json()
        (_, _, rev), = [t for t in _exp_revs(show) if t[1]["name"] == names[0]]
        assert _params(rev)["fetch"]["source"] == "kaggle"
        data = _metric(rev, "metrics/data.json")
        assert data["n_rows"] == N_TINY and data["n_kept"] > 0, data
        assert "baseline" in _metric(rev, "metrics/evaluate.json")
    finally:
        project.git("reset", "-q", "--hard", project.first_sha)
        project.restore_head()
        shutil.rmtree(kaggle, ignore_errors=True)
    project.assert_clean()


# ----------------------------------------------------------------------------------------------
# 7. stage commands import the package of the directory DVC runs them in (queued/--temp exps)


def test_stage_commands_import_the_workspace_package(tmp_path):
    """Runs the first stage's command from dvc.yaml in a copy whose cosmic/ announces itself."""
    root = tmp_path / "copy"
    _copy_project(root)
    init = root / "cosmic" / "__init__.py"
    init.write_text(init.read_text() + '\nprint("COSMIC-IMPORTED-FROM", __file__, flush=True)\n')
    # An empty params.yaml: the stage stops right after its imports.
    (root / "params.yaml").write_text("{}\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    cmd = SPEC["stages"]["split"]["cmd"]
    res = subprocess.run(cmd, shell=True, cwd=root, env=env, capture_output=True, text=True, timeout=T_CMD)
    imported = [Path(line.split(maxsplit=1)[1]).resolve() for line in res.stdout.splitlines()
                if line.startswith("COSMIC-IMPORTED-FROM ")]
    assert imported == [init.resolve()], (
        f"`{cmd}` did not import {init}:\n{_tail(res.stdout)}\n{_tail(res.stderr)}")
