"""Paths recorded in metrics and reports do not depend on who runs the pipeline or where."""

from __future__ import annotations

from pathlib import Path

import keras
import pytest

from cosmic.learning.weights import display_path, mobilenet_weights_filename, resolve_mobilenet_weights


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home" / "someone"
    home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    return home


def test_inside_the_repository_is_relative(home, monkeypatch):
    repo = home / "src" / "cosmic"
    repo.mkdir(parents=True)
    assert display_path(repo / "data" / "external" / "weights" / "w.h5", repo) == "data/external/weights/w.h5"
    assert display_path(repo, repo) == "."
    monkeypatch.chdir(repo)  # the stages run from the repository root
    assert display_path("data/x.csv") == "data/x.csv" and display_path(repo / "models") == "models"


def test_under_home_is_abbreviated(tmp_path, home):
    repo = tmp_path / "clone"
    assert display_path(home / ".keras" / "models", repo) == "~/.keras/models"
    assert display_path(home, repo) == "~"
    assert display_path("~/.keras/models/w.h5", repo) == "~/.keras/models/w.h5"


def test_elsewhere_stays_absolute(tmp_path, home):
    assert display_path(tmp_path / "shared" / "w.h5", tmp_path / "clone") == (tmp_path / "shared" / "w.h5").as_posix()


def test_missing_weights_note_has_no_absolute_or_home_path(tmp_path, home, monkeypatch):
    """The note that evaluate copies into metrics/report.md names the Keras cache as ~/.keras/models."""
    monkeypatch.delenv("KERAS_HOME", raising=False)
    (tmp_path / "clone").mkdir()
    monkeypatch.chdir(tmp_path / "clone")

    def refuse(*args, **kwargs):
        raise OSError(f"URL fetch failure: no network at {home}")

    monkeypatch.setattr(keras.utils, "get_file", refuse)
    choice = resolve_mobilenet_weights("imagenet", 1.0, 96, "random", repo_dir=Path("data/external/weights"))
    note = choice.as_record()["weights_note"]
    assert "~/.keras/models/" in note and "data/external/weights/" + mobilenet_weights_filename(1.0, 96) in note
    assert str(home) not in note and str(tmp_path) not in note and "/home" not in note


def test_weights_found_in_the_keras_cache_are_recorded_under_home(tmp_path, home, monkeypatch):
    monkeypatch.delenv("KERAS_HOME", raising=False)
    (tmp_path / "clone").mkdir()
    monkeypatch.chdir(tmp_path / "clone")
    name = mobilenet_weights_filename(0.35, 96)
    cached = home / ".keras" / "models" / name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"stand-in")
    choice = resolve_mobilenet_weights("imagenet", 0.35, 96, "error", repo_dir=tmp_path / "weights", download=False)
    assert choice.path == str(cached) and choice.as_record()["weights_source"] == f"~/.keras/models/{name}"
