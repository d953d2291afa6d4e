"""params.yaml validation: every error names the key and quotes the bad value."""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import subprocess
import sys

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cosmic import params
from cosmic.params import ParamError
from tests.conftest import REPO

RAW = yaml.safe_load((REPO / "params.yaml").read_text())
SECTIONS = params.SECTIONS


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
        ("base", "crop_size", 4, r"'base.crop_size' is 4"),
        ("base", "class_names", ["a"], r"'base.class_names' is \['a'\]"),
        ("base", "deterministic", "yes", r"'base.deterministic' is 'yes'; expected true or false"),
        ("base", "threads", -1, r"'base.threads' is -1; expected an integer in \[0, 1024\]"),
        ("base", "threads", 1.5, r"'base.threads' is 1.5; expected an integer"),
        ("fetch", "source", "web", r"'fetch.source' is 'web'; expected one of synthetic, kaggle"),
        ("fetch", "synthetic.n_images", 0, r"'fetch.synthetic.n_images' is 0"),
        ("fetch", "synthetic.n_images", 5, r"'fetch.synthetic.n_images' is 5; expected at least 40: fewer leave "
                                           r"too few galaxies of each class after filter to split"),
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
        ("augment", "noise_std", [0.2, 0.1], r"'augment.noise_std'"),
        ("augment", "flip_p", 2, r"'augment.flip_p' is 2"),
        ("train_baseline", "augment", "albumentations", r"'train_baseline.augment' is 'albumentations'; "
                                                        r"expected one of none, basic"),
        ("train_optimized", "augment", "mixup", r"'train_optimized.augment' is 'mixup'"),
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


def _write(tmp_path, text: str):
    path = tmp_path / "params.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_committed_params_file_loads_with_its_key_check():
    assert params.load(REPO / "params.yaml") == RAW


@pytest.mark.parametrize(
    "section, key, typo, suggestion",
    [
        ("train_baseline", "epochs", "epoch", "train_baseline.epochs"),
        ("base", "domain_randomization.noise", "nosie", "base.domain_randomization.noise"),
        ("tune", "space.dense_units", "dense_unit", "tune.space.dense_units"),
    ],
)
def test_unknown_key_names_it_and_suggests_the_closest(tmp_path, section, key, typo, suggestion):
    raw = copy.deepcopy(RAW)
    target = raw[section]
    *parents, _ = key.split(".")
    for p in parents:
        target = target[p]
    target[typo] = 30
    path = _write(tmp_path, yaml.safe_dump(raw))
    full = ".".join([section, *parents, typo])
    with pytest.raises(ParamError, match=rf"unknown key '{full}'; did you mean '{suggestion}'\?"):
        params.load(path)


def test_unknown_section_is_named(tmp_path):
    raw = copy.deepcopy(RAW)
    raw["trian_baseline"] = {"epochs": 30}
    with pytest.raises(ParamError, match=r"unknown key 'trian_baseline'; did you mean 'train_baseline'\?"):
        params.load(_write(tmp_path, yaml.safe_dump(raw)))


def test_extra_filters_blocks_are_valid_keys():
    raw = _with("tune", "space.filters_block4", [16])
    params.check_keys(raw)
    assert len(params.tune(raw).space.filters) == 4


@pytest.mark.parametrize("text, value", [("1e-3", 0.001), ("2E-4", 0.0002), ("1.0e-3", 0.001), ("5e-1", 0.5)])
def test_exponent_floats_without_yaml11_form_are_numbers(tmp_path, text, value):
    src = (REPO / "params.yaml").read_text()
    src = src.replace("  learning_rate: 0.001\n  batch_size: 64\n  epochs: 12",
                      f"  learning_rate: {text}\n  batch_size: 64\n  epochs: 12", 1)
    raw = params.load(_write(tmp_path, src))
    assert params.train_baseline(raw).learning_rate == value


@pytest.mark.parametrize(
    "text, message",
    [
        ("base:\n  seed: [1, 2\n", r"not valid YAML at line \d+, column \d+"),
        ("base:\n\tseed: 1\n", r"not valid YAML"),
        ("- just\n- a list\n", r"expected a mapping of sections, got list"),
    ],
)
def test_malformed_params_file_is_a_param_error(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(ParamError, match=message) as err:
        params.load(path)
    assert str(path) in str(err.value)


def test_latin1_params_file_is_a_param_error(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_bytes("base:\n  class_names: [elliptique, spirale\xe9]\n".encode("latin-1"))
    with pytest.raises(ParamError, match="not UTF-8"):
        params.load(path)


def test_a_stage_names_a_latin1_params_file_in_one_line(tmp_path):
    # The stage reads params.yaml first in its workspace claim, before the params are validated.
    (tmp_path / "params.yaml").write_bytes("base:\n  seed: 42  # caf\xe9\n".encode("latin-1"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-m", "stages.fetch"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert "fetch: params.yaml: not UTF-8 text (byte 23: b'\\xe9'); save it as UTF-8" in run.stderr.splitlines()
    assert "ran for" not in run.stderr  # a failed stage logs no run time


def test_filters_deeper_than_the_image_allows_are_rejected():
    # 64 px can be halved 6 times: a 7th block would make Keras fail inside training.
    params.train_baseline(_with("train_baseline", "filters", [8] * 6))
    with pytest.raises(ParamError, match=r"'train_baseline.filters' .* 7 conv blocks .* only 6 times"):
        params.train_baseline(_with("train_baseline", "filters", [8] * 7))
    raw = _with("base", "image_size", 8)
    for n in (4, 5, 6, 7):
        raw["tune"]["space"][f"filters_block{n}"] = [8]
    with pytest.raises(ParamError, match=r"'tune.space' \(filters_block1.*7 conv blocks .* only 3 times"):
        params.tune(raw)


def test_huge_integer_is_not_a_finite_number():
    with pytest.raises(ParamError, match="'train_baseline.dropout' is .*expected a finite number"):
        params.train_baseline(_with("train_baseline", "dropout", 10**400))


# Property-based: any edit of a valid params mapping is accepted or rejected with a ParamError.
_LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.lists(st.integers(-3, 300), max_size=8),
    st.lists(st.floats(-2, 3, allow_nan=False), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


def _paths(mapping, prefix=()):
    for key, value in mapping.items():
        yield prefix + (key,)
        if isinstance(value, dict):
            yield from _paths(value, prefix + (key,))


_ALL_PATHS = sorted(_paths(RAW))


@settings(max_examples=80, deadline=None)
@given(edits=st.lists(st.tuples(st.sampled_from(_ALL_PATHS), _LEAVES), min_size=1, max_size=3),
       extra=st.one_of(st.none(), st.tuples(st.sampled_from(sorted(RAW)), st.text(min_size=1, max_size=10))))
def test_any_edit_is_accepted_or_a_param_error(edits, extra):
    raw = copy.deepcopy(RAW)
    for path, value in edits:
        target = raw
        for key in path[:-1]:
            if not isinstance(target.get(key), dict):
                break
            target = target[key]
        else:
            target[path[-1]] = value
    if extra is not None and isinstance(raw[extra[0]], dict):  # an edit may have replaced the section
        raw[extra[0]][extra[1]] = 1
    try:
        params.check_keys(raw)
        results = [read(raw) for read in SECTIONS.values()]
    except ParamError as e:
        assert str(e).startswith("params.yaml: ")
        return
    assert results[0].image_size <= results[0].crop_size


@settings(max_examples=60, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("abc: -[]{}\n\t'\"#1e.5,&*!|>%@`")), max_size=60))
def test_any_yaml_text_loads_or_is_a_param_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("p") / "params.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        raw = params.load(path)
    except ParamError as e:
        assert str(path) in str(e)
        return
    assert isinstance(raw, dict)


def test_schema_lists_exactly_the_committed_keys():
    """A key added to params.yaml must be added to params.SCHEMA (and read by its section)."""
    def keys(mapping, prefix=""):
        return {k for key, v in mapping.items()
                for k in ({prefix + key} | (keys(v, f"{prefix}{key}.") if isinstance(v, dict) else set()))}

    committed = {k for k in keys(RAW) if not k.startswith("tune.space.filters_block")}
    assert committed == keys(params.SCHEMA)


def test_the_augment_section_is_read_only_by_stages_that_choose_albumentations():
    raw = copy.deepcopy(RAW)
    raw["tune"]["augment"] = raw["train_optimized"]["augment"] = "albumentations"
    assert params.tune(raw).augmentation == params.train_optimized(raw).fit.augmentation == params.Augmentation(
        "albumentations", params.albumentations(raw))
    assert params.train_baseline(raw).fit.augmentation == params.Augmentation("basic", None)
    raw["augment"]["flip_p"] = 2
    params.train_baseline(raw)  # does not read the section (nor list it in dvc.yaml)
    raw["tune"]["augment"] = "basic"
    assert params.tune(raw).augmentation == params.Augmentation("basic", None)
    with pytest.raises(ParamError, match="'augment.flip_p' is 2"):
        params.train_optimized(raw)


def test_schema_is_derived_from_the_dataclasses():
    """Each section's keys are its dataclass fields' (nested dataclasses: nested mappings), not a hand-written list."""
    assert list(params.SCHEMA) == list(params.SECTIONS)
    assert set(params.SCHEMA["fetch"]["synthetic"]) == {f.name for f in dataclasses.fields(params.Synthetic)}
    assert set(params.SCHEMA["evaluate"]) == {f.name for f in dataclasses.fields(params.Evaluate)}
    assert set(params.SCHEMA["train_optimized"]) == {"epochs", "batch_size", "patience", "class_weight", "augment"}


def _section_classes():
    seen, todo = set(), [params.Base, params.Fetch, params.Filter, params.Split, params.Preprocess,
                         params.Albumentations, params.TrainBaseline, params.TrainTransfer, params.Tune,
                         params.TrainOptimized, params.Evaluate]
    while todo:
        cls = todo.pop()
        seen.add(cls)
        todo += [d.build for f in dataclasses.fields(cls) if isinstance(d := f.metadata[params.__name__], params._Mapping)
                 and isinstance(d.build, type) and d.build not in seen]
    return seen


def test_every_key_has_help_and_no_field_has_a_dead_default():
    assert all(declaration.help for declaration in params._DECLARED.values())
    for key in ("base.domain_randomization.enabled", "tune.space.learning_rate.sampling", "train_baseline.augment"):
        assert params.help_of(key)
    assert params.help_of("tune.space.filters_block12") == params.help_of("tune.space.filters_block1")
    assert params.help_of("tune.space.nope") is None
    # Every key of the committed params.yaml must be there: a default would never run, so no field has one.
    classes = _section_classes()
    assert {params.CNN, params.Fit, params.SearchSpace, params.Synthetic, params.DomainRandomization} <= classes
    for cls in classes:
        for f in dataclasses.fields(cls):
            assert f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING, f"{cls}.{f.name}"


@pytest.mark.parametrize(
    "key, bad_type, bad_type_message, out_of_range, range_message",
    [
        ("train_baseline.epochs", 2.5, "an integer", 0, r"an integer in \[1, inf\]"),
        ("base.threads", "2", "an integer", 1025, r"an integer in \[0, 1024\]"),
        ("train_baseline.dropout", "x", "a finite number", 0.96, r"a number in \[0.0, 0.95\]"),
        ("split.train", [0.5], "a finite number", 0.0, r"a number in \(0.0, 1.0\]"),
        ("base.deterministic", 1, "true or false", None, None),
        ("fetch.source", 1, "one of synthetic, kaggle", None, None),
        ("train_transfer.weights", 3, "a non-empty string", "", "a non-empty string"),
        ("train_baseline.filters", 32, r"a non-empty list of integers >= 1", [32, 0], r"a non-empty list of integers"),
        ("augment.noise_std", 0.1, r"\[low, high\] with 0 <= low <= high <= 1", [0.5, 2], r"\[low, high\] with 0"),
        ("fetch.synthetic.seed", "s", "an integer", -1, r"an integer in \[0, 2147483647\]"),
        ("tune.space.dropout.step", None, "a finite number", 0, r"a number in \(0, 1\]"),
        ("tune.space.learning_rate.sampling", 1, "one of log, linear", None, None),
        ("tune.space.filters_block2", "16", "a non-empty list of integers >= 1", [], "a non-empty list"),
        ("base.domain_randomization.zoom", 1, r"\[low, high\] with 0.5", [0.4, 1], r"\[low, high\] with 0.5"),
    ],
)
def test_each_kind_names_the_full_key_and_what_it_expects(key, bad_type, bad_type_message, out_of_range,
                                                          range_message):
    section, rest = key.split(".", 1)
    validate = params.SECTIONS[section]
    raw = copy.deepcopy(RAW)
    target = raw[section]
    *parents, last = rest.split(".")
    for p in parents:
        target = target[p]
    if not last.startswith("filters_block"):  # any number of those may be missing
        del target[last]
        with pytest.raises(ParamError, match=rf"^params.yaml: '{key}' is missing$") as missing:
            validate(raw)
        assert missing.value.key == key
    for value, message in ((bad_type, bad_type_message), (out_of_range, range_message)):
        if message is not None:
            target[last] = value
            with pytest.raises(ParamError, match=rf"^params.yaml: '{key}' is {re.escape(repr(value))}; "
                                                 rf"expected {message}") as bad:
                validate(raw)
            assert bad.value.key == key


def test_filters_blocks_are_ordered_by_their_number():
    raw = copy.deepcopy(RAW)
    space = raw["tune"]["space"]
    space["filters_block10"], space["filters_block2"] = [10], [2]
    space.update(filters_block1=[1], filters_block3=[3], filters_block4=[4])
    params.check_keys(raw)
    assert params.tune(raw).space.filters == ((1,), (2,), (3,), (4,), (10,))
    raw["base"]["image_size"] = 8  # 3 halvings: the depth error lists the blocks in the same order
    with pytest.raises(ParamError, match=r"\(filters_block1, filters_block2, filters_block3, filters_block4, "
                                         r"filters_block10\) gives 5 conv blocks"):
        params.tune(raw)


def test_a_section_without_filters_blocks_is_named():
    raw = copy.deepcopy(RAW)
    raw["tune"]["space"] = {k: v for k, v in raw["tune"]["space"].items() if not k.startswith("filters_block")}
    with pytest.raises(ParamError, match=r"'tune.space' needs at least one 'filters_block<N>' list"):
        params.tune(raw)


@pytest.mark.parametrize("stage", ["train_baseline", "tune", "fetch", "evaluate", "train_optimized"])
def test_read_validates_base_once_and_the_stage_section(monkeypatch, stage):
    calls = []
    validate_base = params.base
    monkeypatch.setattr(params, "base", lambda raw: calls.append(1) or validate_base(raw))
    got = params.read(stage, REPO / "params.yaml")
    assert calls == [1]
    assert got == params.StageParams(validate_base(RAW), params.SECTIONS[stage](RAW))


def test_read_of_a_stage_without_a_section_and_of_a_bad_file(tmp_path):
    assert params.read("report", REPO / "params.yaml").own is None
    raw = _with("base", "image_size", 8)  # 3 halvings: train_baseline's 3 blocks fit, tune's 7 do not
    raw["tune"]["space"].update({f"filters_block{n}": [8] for n in range(4, 8)})
    with pytest.raises(ParamError, match=r"7 conv blocks"):
        params.read("tune", _write(tmp_path, yaml.safe_dump(raw)))
    assert params.read("train_baseline", _write(tmp_path, yaml.safe_dump(raw))).own == params.train_baseline(raw)


def test_filter_section_is_read_by_the_filter_stage():
    assert params.read("filter", REPO / "params.yaml").own == params.filter_(RAW)
    assert params.SECTIONS["filter"] is params.filter_ and params.SECTIONS["augment"] is params.albumentations
