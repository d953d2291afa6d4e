"""params.yaml validation: every error names the key and quotes the bad value."""

from __future__ import annotations

import copy

import pytest
import yaml

from cosmic import params
from cosmic.params import ParamError
from tests.conftest import REPO

RAW = yaml.safe_load((REPO / "params.yaml").read_text())
SECTIONS = {"base": params.base, "fetch": params.fetch, "filter": params.filter_, "split": params.split,
            "preprocess": params.preprocess, "train_baseline": params.train_baseline,
            "train_transfer": params.train_transfer, "tune": params.tune,
            "train_optimized": params.train_optimized, "evaluate": params.evaluate}


def test_committed_params_are_valid_and_complete():
    assert set(RAW) == set(SECTIONS)
    for name, read in SECTIONS.items():
        read(RAW)


def _with(section: str, key: str, value):
    raw = copy.deepcopy(RAW)
    target = raw[section]
    *parents, last = key.split(".")
    for p in parents:
        target = target[p]
    target[last] = value
    return raw


@pytest.mark.parametrize(
    "section, key, value, message",
    [
        ("base", "seed", -1, r"'base.seed' is -1"),
        ("base", "image_size", 300, r"'base.image_size' is 300 but 'base.crop_size' is 212"),
        ("base", "crop_size", 500, r"'base.crop_size' is 500"),
        ("base", "class_names", ["a"], r"'base.class_names' is \['a'\]"),
        ("base", "deterministic", "yes", r"'base.deterministic' is 'yes'; expected true or false"),
        ("fetch", "source", "web", r"'fetch.source' is 'web'; expected one of synthetic, kaggle"),
        ("fetch", "synthetic.n_images", 0, r"'fetch.synthetic.n_images' is 0"),
        ("filter", "threshold", 1.0, r"'filter.threshold' is 1.0"),
        ("filter", "on_invalid", "skip", r"'filter.on_invalid' is 'skip'"),
        ("split", "test", 0.3, r"sum to 1.15; expected 1"),
        ("split", "val", 0, r"'split.val' is 0"),
        ("train_baseline", "filters", [32, "x"], r"'train_baseline.filters' is \[32, 'x'\]"),
        ("train_baseline", "dropout", 1.5, r"'train_baseline.dropout' is 1.5"),
        ("train_baseline", "learning_rate", 0, r"'train_baseline.learning_rate' is 0"),
        ("train_baseline", "epochs", 2.5, r"'train_baseline.epochs' is 2.5; expected an integer"),
        ("train_transfer", "alpha", 0.9, r"'train_transfer.alpha' is 0.9"),
        ("train_transfer", "on_missing_weights", "skip", r"'train_transfer.on_missing_weights' is 'skip'"),
        ("tune", "tuner", "grid", r"'tune.tuner' is 'grid'; expected one of random, bayesian, hyperband"),
        ("tune", "space.learning_rate.min", 0.1, r"'tune.space.learning_rate.min' is 0.1"),
        ("train_optimized", "augment.noise_std", [0.2, 0.1], r"'train_optimized.augment.noise_std'"),
        ("train_optimized", "augment.flip_p", 2, r"'train_optimized.augment.flip_p' is 2"),
        ("evaluate", "tta", 4, r"'evaluate.tta' is 4; expected 1 \(off\) or 8"),
    ],
)
def test_bad_values_are_named(section, key, value, message):
    with pytest.raises(ParamError, match=message):
        SECTIONS[section](_with(section, key, value))


def test_missing_key_and_section_are_named():
    raw = copy.deepcopy(RAW)
    del raw["train_baseline"]["patience"]
    with pytest.raises(ParamError, match="'train_baseline.patience' is missing"):
        params.train_baseline(raw)
    with pytest.raises(ParamError, match="section 'evaluate' is missing"):
        params.evaluate({})


def test_missing_params_file(tmp_path):
    with pytest.raises(ParamError, match="params file not found"):
        params.load(tmp_path / "params.yaml")
