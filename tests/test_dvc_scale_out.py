"""Scaling out with DVC (README, "Scaling out"): parallel queued experiments and a shared DVC remote.

Reuses the e2e module's temporary git + DVC repository (its own instance: a first tiny `dvc repro`,
committed) and helpers; every command runs as a subprocess, as a user would type it.

Measured on a 2-core CPU: fixture setup ~60 s, two experiments with `dvc queue start -j 2` ~2 min,
push + clone + pull + repro + predict ~40 s.
"""

from __future__ import annotations

import csv
import re
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from cosmic import registry
from cosmic.data.kaggle_format import IMAGES_DIR
from tests.test_dvc_workflows import (QUEUED, STAGES, T_REPRO, Project, _exp_revs,  # noqa: F401
                                      _metric, _params, _ran_and_skipped, _tail, _wait_for_queue, project,
                                      start_queue)

pytestmark = pytest.mark.e2e

# Two experiments that differ in a value each one's metrics record; base.threads=1 for both, as README
# recommends for `-j 2` on 2 cores.
PARALLEL_EPOCHS = (1, 2)
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ", re.MULTILINE)  # utils.setup_logging's asctime


def _log_span(log: str) -> tuple[datetime, datetime]:
    """First and last timestamp of the stages' log lines in `dvc queue logs` output."""
    stamps = [datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f") for s in LOG_TIME.findall(log)]
    assert len(stamps) >= 2, f"no stage log timestamps in:\n{_tail(log)}"
    return min(stamps), max(stamps)


def test_queue_runs_two_experiments_at_once(project):
    head = project.head()
    names = []
    for epochs in PARALLEL_EPOCHS:
        res = project.dvc("exp", "run", "--queue", "-S", "base.threads=1", "-S", f"train_baseline.epochs={epochs}")
        names += QUEUED.findall(res.output)
    assert len(names) == len(PARALLEL_EPOCHS), names

    start = time.monotonic()
    start_queue(project, 2)
    rows = _wait_for_queue(project, names)
    project.timings["dvc queue start -j 2 (2 exps)"] = time.monotonic() - start
    logs = {n: project.dvc("queue", "logs", n, check=False).output for n in names}
    failed = [n for n in names if rows.get(n) != "Success"]
    assert not failed, f"{rows}\n" + "\n".join(f"--- {n} ---\n{_tail(logs[n])}" for n in failed)

    # Both ran every stage that reads `base`, and their stage logs overlap in time.
    for n in names:
        ran = re.findall(r"Running stage '([^']+)'", logs[n])
        assert set(ran) == set(STAGES) - {"fetch", "filter", "split", "preprocess"}, (n, ran)
    spans = {n: _log_span(logs[n]) for n in names}
    overlap = (min(end for _, end in spans.values()) - max(begin for begin, _ in spans.values())).total_seconds()
    assert overlap > 0, f"the experiments ran one after the other: {spans}"

    # Each experiment's params and metrics are its own.
    show = project.dvc("exp", "show", "--json").json()
    by_name = {e["name"]: (b, e, r) for b, e, r in _exp_revs(show)}
    epochs_run = {}
    for n in names:
        base, exp, rev = by_name[n]
        assert base["rev"] == head and rev["error"] is None, (base["rev"], rev["error"])
        p = _params(rev)
        assert p["base"]["threads"] == 1, p["base"]
        tb = _metric(rev, "metrics/train_baseline.json")
        assert tb["epochs_run"] == p["train_baseline"]["epochs"], (n, tb["epochs_run"], p["train_baseline"])
        epochs_run[n] = tb["epochs_run"]
        ev = _metric(rev, "metrics/evaluate.json")
        assert set(registry.model_names()) <= set(ev), sorted(ev)
    assert sorted(epochs_run.values()) == sorted(PARALLEL_EPOCHS), epochs_run
    assert project.porcelain() == "", "queued experiments changed the workspace"


def test_remote_push_then_pull_into_a_clone_reruns_nothing(project, tmp_path):
    """README recipe: `dvc remote add` + `dvc push` in one clone, `git clone` + `dvc pull` in another."""
    head = project.head()
    remote = tmp_path / "dvc-remote"
    try:
        project.dvc("remote", "add", "-d", "shared", str(remote))
        project.commit("DVC remote: a shared folder")
        project.dvc("push", timeout=T_REPRO)
        assert (remote / "files" / "md5").is_dir(), sorted(p.name for p in remote.iterdir())
        assert project.dvc("status", "--cloud", "--json").json() == {}, "dvc push left outputs behind"

        clone = tmp_path / "clone"
        project.git("clone", "-q", str(project.root), str(clone))
        other = Project(clone)
        model = Path("models/train_optimized.keras")
        assert not (clone / model).exists(), "git carried a DVC-cached model"
        other.dvc("pull", timeout=T_REPRO)
        other.assert_clean()
        res = other.dvc("repro", timeout=T_REPRO)
        ran, _ = _ran_and_skipped(res)
        assert ran == [], f"stages re-ran after dvc pull: {ran}\n{res.describe()}"
        assert "Data and pipelines are up to date" in other.dvc("status").output
        for spec in ("models/train_baseline.keras", "models/train_transfer.keras", str(model)):
            assert (clone / spec).read_bytes() == (project.root / spec).read_bytes(), spec

        # The pulled model predicts pulled images; `-m` imports the clone's own package, as in the README.
        images = sorted((clone / "data/raw" / IMAGES_DIR).glob("*.jpg"))[:2]
        assert len(images) == 2, "dvc pull brought no raw images"
        out = tmp_path / "predictions.csv"
        other.run(sys.executable, "-m", "cosmic.commands.predict", "--model", str(model), "--output", str(out),
                  *map(str, images))
        with out.open(newline="") as f:
            rows = list(csv.DictReader(f))
        assert [r["path"] for r in rows] == [str(i) for i in images], rows
        elliptical, spiral = other.params()["base"]["class_names"]
        for r in rows:
            assert r["error"] == "" and 0.0 <= float(r["p_spiral"]) <= 1.0, r
            assert r["label"] == (spiral if float(r["p_spiral"]) > 0.5 else elliptical), r
    finally:
        project.git("reset", "-q", "--hard", head)
        project.restore_head()
    project.assert_clean()
