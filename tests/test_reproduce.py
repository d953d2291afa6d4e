"""cosmic.commands.reproduce: byte-identical, within the committed run's noise, or not reproduced."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess

import pytest

from cosmic.commands import reproduce
from tests.conftest import REPO

COMMITTED = json.loads((REPO / "metrics" / "evaluate.json").read_text())
PER_CLASS = json.loads((REPO / "metrics" / "split.json").read_text())["test"]["per_class"]


def test_intervals_contain_the_estimate_and_shrink_with_more_galaxies():
    lo, hi = reproduce.auc_interval(0.945, 264, 270)
    assert lo < 0.945 < hi and 0.01 < hi - 0.945 < 0.03
    lo4, hi4 = reproduce.auc_interval(0.945, 4 * 264, 4 * 270)
    assert hi4 - lo4 == pytest.approx((hi - lo) / 2, rel=0.05)
    blo, bhi = reproduce.balanced_accuracy_interval(0.88, 270, 0.88, 264)
    # One binomial proportion of 0.88 over 534 galaxies: half-width 1.96 * sqrt(.88 * .12 / 534).
    assert (bhi - blo) / 2 == pytest.approx(1.96 * (0.88 * 0.12 / 534) ** 0.5, rel=0.01)
    assert reproduce.auc_interval(1.0, 10, 10) == (1.0, 1.0)


def test_the_same_metrics_are_inside_with_no_move():
    results = reproduce.checks(COMMITTED, COMMITTED, PER_CLASS)
    models = {k for k, v in COMMITTED.items() if isinstance(v, dict) and "test" in v}
    assert {c.model for c in results} == models and len(results) == 3 * len(models)
    assert all(c.inside and c.share == 0 for c in results)
    assert "REPRODUCED WITHIN NOISE: all 9 test metrics" in reproduce.render(results)


def test_a_move_beyond_the_interval_is_named():
    current = copy.deepcopy(COMMITTED)
    t = current["baseline"]["test"]
    t["accuracy"] = COMMITTED["baseline"]["test"]["accuracy_ci_low"] - 0.01
    t["roc_auc"] += 0.005  # well inside Hanley-McNeil's half-width of ~0.02
    results = {(c.model, c.metric): c for c in reproduce.checks(COMMITTED, current, PER_CLASS)}
    assert not results["baseline", "accuracy"].inside and results["baseline", "accuracy"].share > 1
    assert results["baseline", "roc_auc"].inside and 0 < results["baseline", "roc_auc"].share < 0.5
    text = reproduce.render(list(results.values()))
    assert "OUTSIDE" in text and "NOT REPRODUCED: 1 of 9 test metrics" in text


def test_a_missing_model_is_an_error():
    current = {k: v for k, v in COMMITTED.items() if k != "transfer"}
    with pytest.raises(ValueError, match="model 'transfer' of the committed metrics/evaluate.json is missing"):
        reproduce.checks(COMMITTED, current, PER_CLASS)


def _git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.mark.skipif(not shutil.which("git"), reason="needs git")
def test_main_reports_each_outcome_with_its_exit_code(tmp_path, monkeypatch, capsys):
    (tmp_path / "metrics").mkdir()
    for name in ("evaluate.json", "split.json"):
        shutil.copy(REPO / "metrics" / name, tmp_path / "metrics" / name)
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "run")
    monkeypatch.chdir(tmp_path)
    assert reproduce.main([]) == 0 and "REPRODUCED byte for byte" in capsys.readouterr().out

    current = copy.deepcopy(COMMITTED)
    current["optimized"]["test"]["roc_auc"] -= 0.002
    (tmp_path / "metrics" / "evaluate.json").write_text(json.dumps(current))
    assert reproduce.main([]) == 0
    assert "REPRODUCED WITHIN NOISE" in capsys.readouterr().out

    current["optimized"]["test"]["balanced_accuracy"] -= 0.1
    (tmp_path / "metrics" / "evaluate.json").write_text(json.dumps(current))
    assert reproduce.main([]) == 1
    out = capsys.readouterr().out
    assert "optimized  balanced_accuracy" in out and "OUTSIDE" in out and "NOT REPRODUCED" in out

    assert reproduce.main(["--rev", "nosuchrev"]) == 2
    assert "cannot compare with nosuchrev" in capsys.readouterr().err
