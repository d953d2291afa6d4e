"""Read and validate params.yaml once, at the edge, into frozen dataclasses."""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml


PARAMS_FILE = Path("params.yaml")
TUNERS = ("random", "bayesian", "hyperband")
STRATEGIES = ("default", "mirrored", "multi_worker")
# base.cpu_isa: keys of cosmic.learning.determinism.CPU_ISA (params must not import it: determinism imports params).
CPU_ISAS = ("avx512", "avx2")
# base.crop: what cosmic.data.imageops.crop_of builds (params must not import imageops: every stage reads params).
CROPS = ("fixed", "adaptive")


class ParamError(ValueError):
    """A value in params.yaml is missing or invalid."""


class _Loader(yaml.SafeLoader):
    """YAML loader that also reads exponent floats without a dot or exponent sign (1e-3, 2E4)."""


# YAML 1.1 (PyYAML) needs "1.0e-3"; YAML 1.2 (DVC's ruamel.yaml, `dvc exp run -S`) reads 1e-3 as
# a float, so PyYAML would see a string where DVC and the user see a number.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)

# Every key params.yaml may hold: a nested dict is a nested mapping, None a leaf value.
_FIT = dict.fromkeys(("batch_size", "patience", "class_weight", "augment"))
SCHEMA: dict[str, Any] = {
    "base": {**dict.fromkeys(("seed", "crop", "crop_size", "crop_factor", "image_size", "class_names", "deterministic", "cpu_isa",
                              "threads",
                              "strategy", "mixed_precision", "recall_balance")),
             "domain_randomization": dict.fromkeys(("enabled", "zoom", "gamma", "colour_gain", "brightness",
                                                    "blur", "noise", "saturation"))},
    "fetch": {"source": None, "kaggle_dir": None, "synthetic": dict.fromkeys(("n_images", "seed", "workers"))},
    "filter": dict.fromkeys(("threshold", "on_invalid", "check_images", "n_sample_images")),
    "split": dict.fromkeys(("train", "val", "test")),
    "preprocess": {"chunk_size": None},
    "augment": dict.fromkeys(("flip_p", "rotate_p", "rotate_limit", "brightness_contrast_p", "brightness_limit",
                              "contrast_limit", "noise_p", "noise_std")),
    "train_baseline": {**_FIT, **dict.fromkeys(("filters", "kernel_size", "dense_units", "dropout", "epochs",
                                                "learning_rate"))},
    "train_transfer": {**_FIT, **dict.fromkeys((
        "input_size", "weights", "on_missing_weights", "alpha", "dropout", "learning_rate", "head_epochs",
        "fine_tune_layers", "fine_tune_lr", "fine_tune_epochs"))},
    "tune": {**dict.fromkeys(("tuner", "max_trials", "epochs_per_trial", "batch_size", "augment", "objective",
                              "kernel_size", "workers", "timeout")),
             "space": {"dense_units": None, "dropout": dict.fromkeys(("min", "max", "step")),
                       "learning_rate": dict.fromkeys(("min", "max", "sampling"))}},
    "train_optimized": {**_FIT, "epochs": None},
    "evaluate": dict.fromkeys(("tta", "bootstrap_resamples", "ci_level", "calibration_bins", "batch_size",
                               "n_examples")),
}
# tune.space holds any number of filters_block<N> lists besides its fixed keys.
_PATTERN_KEYS = {"tune.space": re.compile(r"filters_block[0-9]+")}


def load(path: Path | str = PARAMS_FILE) -> dict:
    """Load the raw params mapping from a YAML file and reject keys no stage reads.

    Raises:
        ParamError: if the file is missing, is not valid UTF-8 YAML, is not a mapping, or has
            an unknown key (the message suggests the closest valid one).
    """
    path = Path(path)
    if not path.is_file():
        raise ParamError(f"{path}: params file not found (run from the repository root)")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506  (a SafeLoader)
    except UnicodeDecodeError as e:
        raise ParamError(f"{path}: not UTF-8 text (byte {e.start}: {e.object[e.start:e.start + 1]!r}); "
                         "save it as UTF-8") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ParamError(f"{path}: not valid YAML{at}: {problem}") from None
    if not isinstance(raw, dict):
        raise ParamError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    check_keys(raw, path)
    return raw


def check_keys(raw: Mapping[str, Any], path: Path | str = PARAMS_FILE) -> None:
    """Reject keys that no stage reads, so a typo never silently runs the default.

    Raises:
        ParamError: naming the first unknown key and the closest valid key at that level.
    """
    def walk(mapping: Mapping[str, Any], schema: Mapping[str, Any], prefix: str) -> None:
        pattern = _PATTERN_KEYS.get(prefix.rstrip("."))
        for key, value in mapping.items():
            name = f"{prefix}{key}"
            if key not in schema:
                if pattern is not None and isinstance(key, str) and pattern.fullmatch(key):
                    continue
                close = difflib.get_close_matches(str(key), [str(k) for k in schema], n=1, cutoff=0.5)
                hint = f"; did you mean '{prefix}{close[0]}'?" if close else \
                    f"; valid keys here: {', '.join(prefix + k for k in schema)}"
                raise ParamError(f"{path}: unknown key '{name}'{hint}")
            if isinstance(schema[key], dict) and isinstance(value, Mapping):
                walk(value, schema[key], name + ".")

    walk(raw, SCHEMA, "")


def _finite(v: int | float) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:  # an integer beyond the float range
        return False


class _Section:
    """Typed access to one params section; every error names the full key."""

    def __init__(self, raw: Mapping[str, Any], name: str):
        value = raw.get(name) if isinstance(raw, Mapping) else None
        if not isinstance(value, Mapping):
            raise ParamError(f"params.yaml: section '{name}' is missing or not a mapping")
        self.raw, self.name = value, name

    def key(self, key: str) -> str:
        return f"{self.name}.{key}"

    def get(self, key: str) -> Any:
        if key not in self.raw:
            raise ParamError(f"params.yaml: '{self.key(key)}' is missing")
        return self.raw[key]

    def fail(self, key: str, value: Any, expected: str) -> ParamError:
        return ParamError(f"params.yaml: '{self.key(key)}' is {value!r}; expected {expected}")

    def integer(self, key: str, low: int | None = None, high: int | None = None) -> int:
        v = self.get(key)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(key, v, "an integer")
        if (low is not None and v < low) or (high is not None and v > high):
            raise self.fail(key, v, f"an integer in [{low}, {high if high is not None else 'inf'}]")
        return v

    def number(self, key: str, low: float | None = None, high: float | None = None,
               low_open: bool = False) -> float:
        v = self.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not _finite(v):
            raise self.fail(key, v, "a finite number")
        if (low is not None and (v < low or (low_open and v == low))) or (high is not None and v > high):
            lo = "(" if low_open else "["
            raise self.fail(key, v, f"a number in {lo}{low}, {high if high is not None else 'inf'}]")
        return float(v)

    def boolean(self, key: str) -> bool:
        v = self.get(key)
        if not isinstance(v, bool):
            raise self.fail(key, v, "true or false")
        return v

    def choice(self, key: str, options: tuple[str, ...]) -> str:
        v = self.get(key)
        if v not in options:
            raise self.fail(key, v, "one of " + ", ".join(options))
        return v

    def string(self, key: str) -> str:
        v = self.get(key)
        if not isinstance(v, str) or not v:
            raise self.fail(key, v, "a non-empty string")
        return v

    def int_list(self, key: str, low: int = 1) -> tuple[int, ...]:
        v = self.get(key)
        if (not isinstance(v, list) or not v
                or any(isinstance(x, bool) or not isinstance(x, int) or x < low for x in v)):
            raise self.fail(key, v, f"a non-empty list of integers >= {low}")
        return tuple(v)


def _check_depth(raw: Mapping[str, Any], what: str, n_blocks: int) -> None:
    """Reject more Conv2D+MaxPooling blocks than halvings of base.image_size (Keras fails at 0 px)."""
    size = base(raw).image_size
    deepest = size.bit_length() - 1  # floor(log2(size)): each 2x2 pooling must leave >= 1 pixel
    if n_blocks > deepest:
        raise ParamError(
            f"params.yaml: {what} gives {n_blocks} conv blocks but 'base.image_size' {size} can be halved by "
            f"2x2 pooling only {deepest} times; expected at most {deepest} blocks (or a larger image_size)"
        )


def _nested(parent: _Section, key: str) -> _Section:
    return _Section({parent.key(key): parent.get(key)}, parent.key(key))


@dataclass(frozen=True)
class DomainRandomization:
    """Strengths of the per-image variations of `augment.domain_randomize` (what real frames vary in)."""

    zoom: tuple[float, float]
    gamma: float
    colour_gain: float
    brightness: float
    blur: float
    noise: float
    saturation: float


@dataclass(frozen=True)
class Base:
    seed: int
    crop: str  # fixed | adaptive: how every frame is cut before resizing (cosmic.data.imageops.crop_of)
    crop_size: int
    crop_factor: float
    image_size: int
    class_names: tuple[str, str]
    deterministic: bool
    cpu_isa: str  # instruction-set cap of TensorFlow's kernels under `deterministic` (cosmic/learning/determinism.py)
    domain: DomainRandomization | None  # None: domain randomisation is off
    threads: int  # TensorFlow's intra- and inter-op threads; 0: its default (cosmic/learning/determinism.py)
    strategy: str = "default"  # tf.distribute strategy of the training stages (cosmic/learning/distributed.py)
    mixed_precision: bool = False
    recall_balance: bool = False  # shift each trained model's output bias to equal validation recall


def _domain(s: _Section) -> DomainRandomization | None:
    d = _nested(s, "domain_randomization")
    if not d.boolean("enabled"):
        return None
    zoom = d.get("zoom")
    if not (isinstance(zoom, list) and len(zoom) == 2
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in zoom)
            and 0.5 <= zoom[0] <= zoom[1] <= 2.0):
        raise d.fail("zoom", zoom, "[low, high] with 0.5 <= low <= high <= 2")
    return DomainRandomization(zoom=(float(zoom[0]), float(zoom[1])), gamma=d.number("gamma", 0, 1),
                               colour_gain=d.number("colour_gain", 0, 1),
                               brightness=d.number("brightness", 0, 1), blur=d.number("blur", 0, 1),
                               noise=d.number("noise", 0, 64), saturation=d.number("saturation", 0, 1))


def base(raw: Mapping[str, Any]) -> Base:
    """Validate the `base` section."""
    s = _Section(raw, "base")
    # The upper bound, the frame size of the data, is checked where images are cropped (imageops).
    crop = s.integer("crop_size", 8)
    size = s.integer("image_size", 8, 1024)
    if size > crop:
        raise ParamError(
            f"params.yaml: 'base.image_size' is {size} but 'base.crop_size' is {crop}; "
            "the model input cannot be larger than the crop it is resized from"
        )
    names = s.get("class_names")
    if not (isinstance(names, list) and len(names) == 2 and all(isinstance(n, str) and n for n in names)
            and names[0] != names[1]):
        raise s.fail("class_names", names, "two distinct names, [elliptical-like, spiral-like]")
    mode = s.choice("crop", CROPS)
    # Below 2 the crop would cut the galaxy inside its Petrosian radius; above 20 a typical galaxy
    # would be a few pixels of the model's input.
    factor = s.number("crop_factor", 2, 20)
    return Base(s.integer("seed", 0, 2**31 - 1), mode, crop, factor, size, tuple(names), s.boolean("deterministic"),
                s.choice("cpu_isa", CPU_ISAS), _domain(s),
                s.integer("threads", 0, 1024), s.choice("strategy", STRATEGIES), s.boolean("mixed_precision"),
                s.boolean("recall_balance"))


@dataclass(frozen=True)
class Synthetic:
    n_images: int
    seed: int
    workers: int


@dataclass(frozen=True)
class Fetch:
    source: str
    kaggle_dir: Path
    synthetic: Synthetic


# Fewer synthetic galaxies leave too few of a class after filter for a train/val/test split with both
# classes in every part; named here, not as an empty class two stages later. Measured with the default
# threshold and split fractions: seeds 0-59 all split from 26 images on.
MIN_SYNTHETIC_IMAGES = 40


def fetch(raw: Mapping[str, Any]) -> Fetch:
    """Validate the `fetch` section."""
    s = _Section(raw, "fetch")
    syn = _nested(s, "synthetic")
    source, n_images = s.choice("source", ("synthetic", "kaggle")), syn.integer("n_images", 1)
    if source == "synthetic" and n_images < MIN_SYNTHETIC_IMAGES:
        raise syn.fail("n_images", n_images,
                       f"at least {MIN_SYNTHETIC_IMAGES}: fewer leave too few galaxies of each class after filter "
                       "to split them into train/val/test")
    return Fetch(
        source=source,
        kaggle_dir=Path(s.string("kaggle_dir")),
        synthetic=Synthetic(n_images, syn.integer("seed", 0, 2**31 - 1), syn.integer("workers", 1, 256)),
    )


@dataclass(frozen=True)
class Filter:
    threshold: float
    on_invalid: str
    check_images: bool
    n_sample_images: int


def filter_(raw: Mapping[str, Any]) -> Filter:
    """Validate the `filter` section."""
    s = _Section(raw, "filter")
    t = s.number("threshold", 0.5, 1.0)
    if t >= 1.0:
        raise s.fail("threshold", t, "a number in [0.5, 1) (a fraction must exceed it)")
    return Filter(t, s.choice("on_invalid", ("drop", "error")), s.boolean("check_images"),
                  s.integer("n_sample_images", 0, 64))


@dataclass(frozen=True)
class Split:
    train: float
    val: float
    test: float


def split(raw: Mapping[str, Any]) -> Split:
    """Validate the `split` section: three fractions in (0, 1) summing to 1."""
    s = _Section(raw, "split")
    fr = {k: s.number(k, 0.0, 1.0, low_open=True) for k in ("train", "val", "test")}
    total = sum(fr.values())
    if abs(total - 1.0) > 1e-6:
        raise ParamError(
            f"params.yaml: split fractions train={fr['train']}, val={fr['val']}, test={fr['test']} "
            f"sum to {total:g}; expected 1"
        )
    return Split(**fr)


@dataclass(frozen=True)
class Preprocess:
    chunk_size: int


def preprocess(raw: Mapping[str, Any]) -> Preprocess:
    """Validate the `preprocess` section."""
    return Preprocess(_Section(raw, "preprocess").integer("chunk_size", 1))


@dataclass(frozen=True)
class Albumentations:
    """Probabilities and strengths of the albumentations pipeline (the `augment` section)."""

    flip_p: float
    rotate_p: float
    rotate_limit: float
    brightness_contrast_p: float
    brightness_limit: float
    contrast_limit: float
    noise_p: float
    noise_std: tuple[float, float]


def albumentations(raw: Mapping[str, Any]) -> Albumentations:
    """Validate the `augment` section, shared by the stages whose augmentation is "albumentations"."""
    a = _Section(raw, "augment")
    noise = a.get("noise_std")
    if not (isinstance(noise, list) and len(noise) == 2
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in noise)
            and 0 <= noise[0] <= noise[1] <= 1):
        raise a.fail("noise_std", noise, "[low, high] with 0 <= low <= high <= 1")
    return Albumentations(
        flip_p=a.number("flip_p", 0, 1), rotate_p=a.number("rotate_p", 0, 1),
        rotate_limit=a.number("rotate_limit", 0, 180),
        brightness_contrast_p=a.number("brightness_contrast_p", 0, 1),
        brightness_limit=a.number("brightness_limit", 0, 1), contrast_limit=a.number("contrast_limit", 0, 1),
        noise_p=a.number("noise_p", 0, 1), noise_std=(float(noise[0]), float(noise[1])),
    )


@dataclass(frozen=True)
class Augmentation:
    """A stage's own augmentation: none, basic (flips and 90-degree rotations) or albumentations."""

    kind: str
    albumentations: Albumentations | None  # the `augment` section, read only when kind is "albumentations"


def _augmentation(raw: Mapping[str, Any], s: _Section, kinds: tuple[str, ...]) -> Augmentation:
    kind = s.choice("augment", kinds)
    return Augmentation(kind, albumentations(raw) if kind == "albumentations" else None)


@dataclass(frozen=True)
class Fit:
    """How every training stage fits its model; epochs and learning rates are each stage's own schedule."""

    batch_size: int
    patience: int
    class_weight: bool
    augmentation: Augmentation


def _fit(raw: Mapping[str, Any], s: _Section, augment_kinds: tuple[str, ...]) -> Fit:
    return Fit(s.integer("batch_size", 1, 4096), s.integer("patience", 1), s.boolean("class_weight"),
               _augmentation(raw, s, augment_kinds))


# The stages that list the `augment` section in dvc.yaml may use it; the others choose from the first two.
_BASIC_AUGMENTS = ("none", "basic")
_ALL_AUGMENTS = (*_BASIC_AUGMENTS, "albumentations")


@dataclass(frozen=True)
class CNN:
    """Arguments of `models.build_baseline`."""

    filters: tuple[int, ...]
    kernel_size: int
    dense_units: int
    dropout: float


@dataclass(frozen=True)
class TrainBaseline:
    cnn: CNN
    epochs: int
    learning_rate: float
    fit: Fit


def train_baseline(raw: Mapping[str, Any]) -> TrainBaseline:
    """Validate the `train_baseline` section."""
    s = _Section(raw, "train_baseline")
    cnn = CNN(s.int_list("filters"), s.integer("kernel_size", 1, 15), s.integer("dense_units", 1),
              s.number("dropout", 0.0, 0.95))
    _check_depth(raw, f"'{s.key('filters')}' {list(cnn.filters)}", len(cnn.filters))
    return TrainBaseline(cnn, s.integer("epochs", 1), s.number("learning_rate", 0, 1, True),
                         _fit(raw, s, _BASIC_AUGMENTS))


@dataclass(frozen=True)
class TrainTransfer:
    input_size: int
    weights: str
    on_missing_weights: str
    alpha: float
    dropout: float
    learning_rate: float
    head_epochs: int
    fine_tune_layers: int
    fine_tune_lr: float
    fine_tune_epochs: int
    fit: Fit


MOBILENET_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)


def train_transfer(raw: Mapping[str, Any]) -> TrainTransfer:
    """Validate the `train_transfer` section."""
    s = _Section(raw, "train_transfer")
    alpha = s.number("alpha", 0.0, 2.0, True)
    if alpha not in MOBILENET_ALPHAS:
        raise s.fail("alpha", alpha, "one of " + ", ".join(map(str, MOBILENET_ALPHAS)))
    return TrainTransfer(
        input_size=s.integer("input_size", 32, 512),
        weights=s.string("weights"),
        on_missing_weights=s.choice("on_missing_weights", ("random", "error")),
        alpha=alpha,
        dropout=s.number("dropout", 0.0, 0.95),
        learning_rate=s.number("learning_rate", 0, 1, True),
        head_epochs=s.integer("head_epochs", 1),
        fine_tune_layers=s.integer("fine_tune_layers", 0),
        fine_tune_lr=s.number("fine_tune_lr", 0, 1, True),
        fine_tune_epochs=s.integer("fine_tune_epochs", 0),
        fit=_fit(raw, s, _BASIC_AUGMENTS),
    )


@dataclass(frozen=True)
class SearchSpace:
    filters: tuple[tuple[int, ...], ...]
    dense_units: tuple[int, ...]
    dropout: tuple[float, float, float]
    learning_rate: tuple[float, float]
    lr_sampling: str


@dataclass(frozen=True)
class Tune:
    tuner: str
    max_trials: int
    epochs_per_trial: int
    objective: str
    kernel_size: int
    space: SearchSpace
    batch_size: int
    augmentation: Augmentation
    workers: int = 1  # >= 2: KerasTuner chief + this many worker processes (cosmic/learning/distributed.py)
    timeout: int = 7200  # seconds for a distributed search, chief and workers included


def tune(raw: Mapping[str, Any]) -> Tune:
    """Validate the `tune` section."""
    s = _Section(raw, "tune")
    sp = _nested(s, "space")
    blocks = sorted(k for k in sp.raw if isinstance(k, str) and k.startswith("filters_block"))
    if not blocks:
        raise ParamError("params.yaml: 'tune.space' needs at least one 'filters_block<N>' list")
    filters = tuple(sp.int_list(k) for k in blocks)
    _check_depth(raw, f"'{sp.name}' ({', '.join(blocks)})", len(blocks))
    dr, lr = _nested(sp, "dropout"), _nested(sp, "learning_rate")
    d = (dr.number("min", 0, 0.95), dr.number("max", 0, 0.95), dr.number("step", 0, 1, True))
    if d[0] > d[1]:
        raise dr.fail("min", d[0], f"<= {dr.name}.max ({d[1]})")
    lrs = (lr.number("min", 0, 1, True), lr.number("max", 0, 1, True))
    if lrs[0] > lrs[1]:
        raise lr.fail("min", lrs[0], f"<= {lr.name}.max ({lrs[1]})")
    space = SearchSpace(filters, sp.int_list("dense_units"), d, lrs, lr.choice("sampling", ("log", "linear")))
    objective = s.choice("objective", ("val_accuracy", "val_loss", "val_auc"))
    return Tune(s.choice("tuner", TUNERS), s.integer("max_trials", 1), s.integer("epochs_per_trial", 1), objective,
                s.integer("kernel_size", 1, 15), space, s.integer("batch_size", 1, 4096),
                _augmentation(raw, s, _ALL_AUGMENTS), s.integer("workers", 1, 256), s.integer("timeout", 1))


@dataclass(frozen=True)
class TrainOptimized:
    epochs: int
    fit: Fit


def train_optimized(raw: Mapping[str, Any]) -> TrainOptimized:
    """Validate the `train_optimized` section (the learning rate comes from the tuner)."""
    s = _Section(raw, "train_optimized")
    return TrainOptimized(s.integer("epochs", 1), _fit(raw, s, _ALL_AUGMENTS))


@dataclass(frozen=True)
class Evaluate:
    tta: int
    bootstrap_resamples: int
    ci_level: float
    calibration_bins: int
    batch_size: int
    n_examples: int


def evaluate(raw: Mapping[str, Any]) -> Evaluate:
    """Validate the `evaluate` section."""
    s = _Section(raw, "evaluate")
    tta = s.integer("tta", 1, 8)
    if tta not in (1, 8):
        raise s.fail("tta", tta, "1 (off) or 8 (the eight rotations/flips)")
    return Evaluate(tta, s.integer("bootstrap_resamples", 100), s.number("ci_level", 0.5, 0.999),
                    s.integer("calibration_bins", 2, 100), s.integer("batch_size", 1, 4096),
                    s.integer("n_examples", 1, 32))


@dataclass(frozen=True)
class StageParams:
    base: Base
    own: Any


SECTIONS = {"fetch": fetch, "filter": filter_, "split": split, "preprocess": preprocess,
            "train_baseline": train_baseline, "train_transfer": train_transfer, "tune": tune,
            "train_optimized": train_optimized, "evaluate": evaluate}


def read(stage: str, path: Path | str = PARAMS_FILE, text: str | None = None) -> StageParams:
    raw = load(path)
    return StageParams(base(raw), SECTIONS[stage](raw) if stage in SECTIONS else None)
