"""cosmic-check-params: params.yaml and `-S` overrides checked in seconds, each problem on one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cosmic import params

from cosmic.commands import check_params
from tests.conftest import REPO

PARAMS = REPO / "params.yaml"


def test_the_committed_params_are_valid(capsys):
    assert check_params.main(["--params", str(PARAMS)]) == 0
    assert "valid (11 sections checked)" in capsys.readouterr().out


def test_every_schema_section_has_its_validator():
    assert set(check_params.VALIDATORS) == set(params.SCHEMA)


def test_overrides_are_read_as_yaml_like_dvc():
    raw = params.load(PARAMS)
    check_params.apply_override(raw, "train_baseline.epochs=3")
    check_params.apply_override(raw, "train_baseline.learning_rate=1e-4")
    check_params.apply_override(raw, "train_baseline.filters=[16, 32]")
    check_params.apply_override(raw, "base.deterministic=false")
    assert raw["train_baseline"]["epochs"] == 3 and raw["train_baseline"]["learning_rate"] == 1e-4
    assert raw["train_baseline"]["filters"] == [16, 32] and raw["base"]["deterministic"] is False
    assert check_params.problems(raw, PARAMS) == []


def test_each_problem_is_named_once(capsys):
    code = check_params.main(["--params", str(PARAMS), "-S", "train_baseline.epochs=0", "-S", "tune.max_trials=-1",
                              "-S", "base.cpu_isa=avx3"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("'base.cpu_isa' is 'avx3'; expected one of avx512, avx2") == 1
    assert "3 override(s):" in err and "problem(s)" in err
    code = check_params.main(["--params", str(PARAMS), "-S", "train_baseline.epochs=0", "-S", "tune.max_trials=-1"])
    err = capsys.readouterr().err
    assert code == 1 and "'train_baseline.epochs' is 0" in err and "'tune.max_trials' is -1" in err


@pytest.mark.parametrize(("assignment", "message"), [
    ("split.tain=0.5", "unknown key 'split.tain'; did you mean 'split.train'?"),
    ("base.seed.x=1", "-S 'base.seed.x=1': 'base.seed' is not a section"),
    ("epochs", "-S 'epochs': expected section.key=value"),
])
def test_bad_overrides_are_named(assignment, message, capsys):
    assert check_params.main(["--params", str(PARAMS), "-S", assignment]) == 1
    assert message in capsys.readouterr().err


def test_runs_without_tensorflow():
    code = ("import sys; from cosmic.commands import check_params; check_params.main([]);"
            "assert 'tensorflow' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_problem_is_followed_by_the_help_of_its_key(capsys):
    assert check_params.main(["--params", str(PARAMS), "-S", "tune.space.dropout.step=0"]) == 1
    err = capsys.readouterr().err
    assert "'tune.space.dropout.step' is 0; expected a number in (0, 1]" in err
    assert f"tune.space.dropout.step: {params.help_of('tune.space.dropout.step')}\n" in err
