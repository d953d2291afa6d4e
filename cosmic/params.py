"""Read and validate params.yaml once, at the edge, into frozen dataclasses.

Each dataclass field declares its key once: what the value must be and a one-line help (`integer`,
`number`, `choice`, ... below). A section is read by walking its dataclass's fields and `SCHEMA` is
derived from them; only the checks between keys or sections are written out, beside each section.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


PARAMS_FILE = Path("params.yaml")
TUNERS = ("random", "bayesian", "hyperband")
STRATEGIES = ("default", "mirrored", "multi_worker")
# base.cpu_isa: keys of cosmic.learning.determinism.CPU_ISA (params must not import it: determinism imports params).
CPU_ISAS = ("avx512", "avx2")
# base.crop: what cosmic.data.imageops.crop_of builds (params must not import imageops: every stage reads params).
CROPS = ("fixed", "adaptive")
MOBILENET_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
# Fewer synthetic galaxies leave too few of a class after filter for a train/val/test split with both
# classes in every part; named here, not as an empty class two stages later. Measured with the default
# threshold and split fractions: seeds 0-59 all split from 26 images on.
MIN_SYNTHETIC_IMAGES = 40
# The stages that list the `augment` section in dvc.yaml may use it; the others choose from the first two.
_BASIC_AUGMENTS = ("none", "basic")
_ALL_AUGMENTS = (*_BASIC_AUGMENTS, "albumentations")
_ALBUMENTATIONS_STAGES = ("tune", "train_optimized")


class ParamError(ValueError):
    """A value in params.yaml is missing or invalid.

    Attributes:
        key: the full dotted key at fault ("train_baseline.epochs"), None when no single key is.
    """

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


class _Loader(yaml.SafeLoader):
    """YAML loader that also reads exponent floats without a dot or exponent sign (1e-3, 2E4)."""


# YAML 1.1 (PyYAML) needs "1.0e-3"; YAML 1.2 (DVC's ruamel.yaml, `dvc exp run -S`) reads 1e-3 as
# a float, so PyYAML would see a string where DVC and the user see a number.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load(path: Path | str = PARAMS_FILE, text: str | None = None) -> dict:
    """Load the raw params mapping from a YAML file (or its `text`, already read) and reject keys no stage reads.

    Raises:
        ParamError: if the file is missing, is not valid UTF-8 YAML, is not a mapping, or has
            an unknown key (the message suggests the closest valid one).
    """
    path = Path(path)
    if text is None and not path.is_file():
        raise ParamError(f"{path}: params file not found (run from the repository root)")
    try:
        raw = yaml.load(read_text(path) if text is None else text, Loader=_Loader)  # noqa: S506  (a SafeLoader)
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ParamError(f"{path}: not valid YAML{at}: {problem}") from None
    if not isinstance(raw, dict):
        raise ParamError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    check_keys(raw, path)
    return raw


def read_text(path: Path | str = PARAMS_FILE) -> str:
    """The text of a params file.

    Raises:
        ParamError: naming the first byte that is not UTF-8.
    """
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ParamError(f"{path}: not UTF-8 text (byte {e.start}: {e.object[e.start:e.start + 1]!r}); "
                         "save it as UTF-8") from None


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
                raise ParamError(f"{path}: unknown key '{name}'{hint}", name)
            if isinstance(schema[key], dict) and isinstance(value, Mapping):
                walk(value, schema[key], name + ".")

    walk(raw, SCHEMA, "")


def help_of(key: str) -> str | None:
    """The one-line help of a full dotted key ("train_baseline.epochs"); None for a key no stage reads."""
    declared = _DECLARED.get(key) or _DECLARED.get(re.sub(r"[0-9]+$", "<N>", key))
    return declared.help if declared else None


# --- How a field declares its key ---------------------------------------------------------------------------

def _fail(key: str, value: Any, expected: str) -> ParamError:
    return ParamError(f"params.yaml: '{key}' is {value!r}; expected {expected}", key)


def _get(mapping: Mapping[str, Any], where: str, key: str) -> Any:
    """The value of `key` in `mapping`, the mapping at dotted `where`; a dotted key goes through sub-mappings."""
    *parents, leaf = key.split(".")
    for parent in parents:
        mapping, where = _sub(mapping, where, parent), f"{where}.{parent}"
    if leaf not in mapping:
        raise ParamError(f"params.yaml: '{where}.{leaf}' is missing", f"{where}.{leaf}")
    return mapping[leaf]


def _sub(mapping: Mapping[str, Any], where: str, key: str) -> Mapping[str, Any]:
    value = _get(mapping, where, key)
    if not isinstance(value, Mapping):
        raise ParamError(f"params.yaml: section '{where}.{key}' is missing or not a mapping", f"{where}.{key}")
    return value


Check = tuple[Callable[[Any], bool], str]  # a test of a value, and what its error says is expected


@dataclass(frozen=True)
class _Key:
    """One value: the checks it must pass, in order, and what for; its field holds `convert` of it."""

    help: str
    checks: tuple[Check, ...]
    convert: Callable[[Any], Any] = lambda v: v
    key: str | None = None  # its name when not the field's; dotted: in a sub-mapping

    def read(self, mapping: Mapping[str, Any], where: str, name: str) -> Any:
        key = self.key or name
        value = _get(mapping, where, key)
        for ok, expected in self.checks:
            if not ok(value):
                raise _fail(f"{where}.{key}", value, expected)
        return self.convert(value)


@dataclass(frozen=True)
class _AugmentKind(_Key):
    """A stage's `augment` kind; `_augmentation` adds the `augment` section that it may name."""

    checks: tuple[Check, ...] = ()  # by stage, in `read`
    key: str = "augment"

    def read(self, mapping: Mapping[str, Any], where: str, name: str) -> Augmentation:
        kinds = _ALL_AUGMENTS if where in _ALBUMENTATIONS_STAGES else _BASIC_AUGMENTS
        return Augmentation(_Key(self.help, (_one_of(kinds),), key=self.key).read(mapping, where, name), None)


def _numbered(mapping: Mapping[str, Any], prefix: str) -> list[str]:
    """The keys `<prefix><N>` of `mapping`, ordered by the number N."""
    found = (re.fullmatch(re.escape(prefix) + "([0-9]+)", k) for k in mapping if isinstance(k, str))
    return [m[0] for m in sorted((m for m in found if m), key=lambda m: (int(m[1]), m[0]))]


@dataclass(frozen=True)
class _Numbered:
    """The values of every key `<prefix><N>` (at least one), each an `item`, ordered by N."""

    prefix: str
    item: _Key

    @property
    def help(self) -> str:
        return self.item.help

    def read(self, mapping: Mapping[str, Any], where: str, name: str) -> tuple:
        keys = _numbered(mapping, self.prefix)
        if not keys:
            raise ParamError(f"params.yaml: '{where}' needs at least one '{self.prefix}<N>' list", where)
        return tuple(self.item.read(mapping, where, key) for key in keys)


@dataclass(frozen=True)
class _Mapping:
    """Values read from a sub-mapping, or `inline` from the parent's own keys, and passed to `build` by name."""

    help: str
    items: dict[str, Any]  # the declaration of each value, by name
    build: Callable[..., Any]
    key: str | None = None  # the sub-mapping's name when not the field's
    inline: bool = False
    gate: _Key | None = None  # a boolean in the sub-mapping: false -> None, and nothing else in it is read

    def read(self, mapping: Mapping[str, Any], where: str, name: str) -> Any:
        if not self.inline:
            mapping, where = _sub(mapping, where, self.key or name), f"{where}.{self.key or name}"
            if self.gate is not None and not self.gate.read(mapping, where, ""):
                return None
        return self.build(**{name: item.read(mapping, where, name) for name, item in self.items.items()})


def _declared(m: _Mapping, where: str) -> Iterator[tuple[str, Any]]:
    """(full dotted key, declaration) of every key `m` reads from the mapping at `where`, sub-mappings too."""
    for name, item in m.items.items():
        if isinstance(item, _Numbered):
            yield f"{where}.{item.prefix}<N>", item
        elif isinstance(item, _Mapping):
            sub = where if item.inline else f"{where}.{item.key or name}"
            if not item.inline:
                yield sub, item
            if item.gate is not None:
                yield f"{sub}.{item.gate.key}", item.gate
            yield from _declared(item, sub)
        else:
            yield f"{where}.{item.key or name}", item


def _declare(declaration: Any) -> Any:
    return dataclasses.field(metadata={__name__: declaration})


def _of(cls: type, help: str = "", **how: Any) -> _Mapping:
    """The declaration of a dataclass: its fields' declarations, read into `cls`."""
    return _Mapping(help, {f.name: f.metadata[__name__] for f in dataclasses.fields(cls)}, cls, **how)


def _read(cls: type, raw: Mapping[str, Any], name: str) -> Any:
    section = raw.get(name) if isinstance(raw, Mapping) else None
    if not isinstance(section, Mapping):
        raise ParamError(f"params.yaml: section '{name}' is missing or not a mapping", name)
    return _of(cls, inline=True).read(section, name, name)


def _leaf(help: str, *checks: Check, convert: Callable[[Any], Any] = lambda v: v, key: str | None = None) -> Any:
    return _declare(_Key(help, checks, convert, key))


def _one_of(options: tuple[str, ...]) -> Check:
    return (lambda v: v in options), "one of " + ", ".join(options)


def _finite(v: Any) -> bool:
    """A finite int or float (not a bool)."""
    try:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    except OverflowError:  # an integer beyond the float range
        return False


def integer(low: int, high: int | None = None, *, help: str) -> Any:
    """An integer in [low, high]; no upper bound when `high` is None."""
    return _leaf(help, (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
                 (lambda v: low <= v and (high is None or v <= high),
                  f"an integer in [{low}, {'inf' if high is None else high}]"))


def number(low: float, high: float, *, low_open: bool = False, help: str) -> Any:
    """A finite number in [low, high], or (low, high] when `low_open`; held as a float."""
    return _leaf(help, (_finite, "a finite number"), (lambda v: (low < v if low_open else low <= v) and v <= high,
                                                      f"a number in {'(' if low_open else '['}{low}, {high}]"),
                 convert=float)


def boolean(*, help: str, key: str | None = None) -> Any:
    """true or false."""
    return _leaf(help, (lambda v: isinstance(v, bool), "true or false"), key=key)


def choice(options: tuple[str, ...], *, help: str, key: str | None = None) -> Any:
    """One of `options`."""
    return _leaf(help, _one_of(options), key=key)


def string(*, help: str, convert: Callable[[str], Any] = str) -> Any:
    """A non-empty string, held as `convert` of it."""
    return _leaf(help, (lambda v: isinstance(v, str) and v != "", "a non-empty string"), convert=convert)


def int_list(low: int = 1, *, help: str) -> Any:
    """A non-empty list of integers >= `low`, held as a tuple."""
    return _leaf(help, (lambda v: isinstance(v, list) and v != [] and all(
        isinstance(x, int) and not isinstance(x, bool) and x >= low for x in v),
        f"a non-empty list of integers >= {low}"), convert=tuple)


def pair(low: float, high: float, *, help: str) -> Any:
    """[a, b] with low <= a <= b <= high, held as a tuple of floats."""
    return _leaf(help, (lambda v: isinstance(v, list) and len(v) == 2 and all(map(_finite, v))
                        and low <= v[0] <= v[1] <= high, f"[low, high] with {low} <= low <= high <= {high}"),
                 convert=lambda v: (float(v[0]), float(v[1])))


def nested(cls: type, *, help: str, key: str | None = None, gate: Any = None) -> Any:
    """A dataclass read from the sub-mapping `key` (default: the field's name); None when its `gate` is false."""
    return _declare(_of(cls, help, key=key, gate=None if gate is None else gate.metadata[__name__]))


def inline(cls: type, *, help: str) -> Any:
    """A dataclass whose keys are its parent's."""
    return _declare(_of(cls, help, inline=True))


def group(*, help: str, **items: Any) -> Any:
    """A tuple of the values of a sub-mapping's keys, declared in order as `items`."""
    return _declare(_Mapping(help, {k: v.metadata[__name__] for k, v in items.items()}, lambda **v: tuple(v.values())))


def numbered(prefix: str, item: Any) -> Any:
    """A tuple of the values of the keys `<prefix><N>` (any N, at least one), each an `item`."""
    return _declare(_Numbered(prefix, item.metadata[__name__]))


# --- The sections -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DomainRandomization:
    """Strengths of the per-image variations of `augment.domain_randomize` (what real frames vary in)."""

    zoom: tuple[float, float] = pair(0.5, 2, help="[low, high] scale of the galaxy in the crop")
    gamma: float = number(0, 1, help="largest |log| of the display-stretch exponent G: v -> 255 (v / 255)^G")
    colour_gain: float = number(0, 1, help="std of the log gain of each channel (white balance)")
    brightness: float = number(0, 1, help="largest |log| of the overall brightness factor")
    blur: float = number(0, 1, help="largest weight of a 3x3 binomial blur (seeing)")
    noise: float = number(0, 64, help="largest std of added pixel noise, in 0-255 units (sky depth)")
    saturation: float = number(0, 1, help="colour saturation scaled by a factor in [1 - s, 1 + s]")


@dataclass(frozen=True)
class Base:
    """What every stage shares: the seed, the crop, the classes and how TensorFlow runs."""

    seed: int = integer(0, 2**31 - 1, help="seed of every random choice of the pipeline")
    crop: str = choice(CROPS, help="how each frame is cut before resizing (cosmic.data.imageops.crop_of)")
    # Its upper bound, the frame size of the data, is checked where images are cropped (imageops).
    crop_size: int = integer(8, help="side of the fixed crop (and adaptive fallback), in pixels of the frame")
    # Below 2 the crop would cut the galaxy inside its Petrosian radius; above 20 a typical galaxy
    # would be a few pixels of the model's input.
    crop_factor: float = number(2, 20, help="side of the adaptive crop / the galaxy's Petrosian radius")
    image_size: int = integer(8, 1024, help="side in pixels of the images the models see")
    class_names: tuple[str, str] = _leaf(
        "the classes, [elliptical-like, spiral-like]", (lambda v: isinstance(v, list) and len(v) == 2 and all(
            isinstance(n, str) and n for n in v) and v[0] != v[1], "two distinct names, [elliptical-like, spiral-like]"),
        convert=tuple)
    deterministic: bool = boolean(help="op determinism, fixed threads and capped oneDNN kernels: bit-identical runs")
    cpu_isa: str = choice(CPU_ISAS, help="instruction-set cap of TensorFlow's kernels under `deterministic`")
    domain: DomainRandomization | None = nested(DomainRandomization, key="domain_randomization",
                                                help="random variations of what real frames vary in",
                                                gate=boolean(key="enabled", help="false: no domain randomisation"))
    threads: int = integer(0, 1024, help="TensorFlow's intra- and inter-op threads; 0: its default")
    strategy: str = choice(STRATEGIES, help="tf.distribute strategy of the training stages")
    mixed_precision: bool = boolean(help="mixed_float16 with a float32 output layer, on a GPU only")
    recall_balance: bool = boolean(help="shift each trained model's output bias to equal validation recall")


def base(raw: Mapping[str, Any]) -> Base:
    """Validate the `base` section."""
    b = _read(Base, raw, "base")
    if b.image_size > b.crop_size:
        raise ParamError(f"params.yaml: 'base.image_size' is {b.image_size} but 'base.crop_size' is {b.crop_size}; "
                         "the model input cannot be larger than the crop it is resized from", "base.image_size")
    return b


@dataclass(frozen=True)
class Synthetic:
    n_images: int = integer(1, help="galaxies generated when fetch.source is synthetic")
    seed: int = integer(0, 2**31 - 1, help="seed of the generator")
    workers: int = integer(1, 256, help="generator processes")


@dataclass(frozen=True)
class Fetch:
    source: str = choice(("synthetic", "kaggle"), help="synthetic (generated) or kaggle (the files in kaggle_dir)")
    kaggle_dir: Path = string(convert=Path, help="directory of the Kaggle Galaxy Zoo data")
    synthetic: Synthetic = nested(Synthetic, help="the generated data set")


def fetch(raw: Mapping[str, Any]) -> Fetch:
    """Validate the `fetch` section."""
    f = _read(Fetch, raw, "fetch")
    if f.source == "synthetic" and f.synthetic.n_images < MIN_SYNTHETIC_IMAGES:
        raise _fail("fetch.synthetic.n_images", f.synthetic.n_images,
                    f"at least {MIN_SYNTHETIC_IMAGES}: fewer leave too few galaxies of each class after filter "
                    "to split them into train/val/test")
    return f


@dataclass(frozen=True)
class Filter:
    threshold: float = number(0.5, 1.0, help="elliptical: Class1.1 > threshold; spiral: Class1.2 > threshold")
    on_invalid: str = choice(("drop", "error"), help="what a row whose image is missing or invalid does")
    check_images: bool = boolean(help="decode every image (catches truncated, grayscale or wrong-size files)")
    n_sample_images: int = integer(0, 64, help="images per class in plots/data/samples.png")


def filter_(raw: Mapping[str, Any]) -> Filter:
    """Validate the `filter` section."""
    f = _read(Filter, raw, "filter")
    if f.threshold >= 1.0:
        raise _fail("filter.threshold", f.threshold, "a number in [0.5, 1) (a fraction must exceed it)")
    return f


@dataclass(frozen=True)
class Split:
    train: float = number(0.0, 1.0, low_open=True, help="fraction of the galaxies in the training split")
    val: float = number(0.0, 1.0, low_open=True, help="fraction in the validation split")
    test: float = number(0.0, 1.0, low_open=True, help="fraction in the test split")


def split(raw: Mapping[str, Any]) -> Split:
    """Validate the `split` section: three fractions in (0, 1) summing to 1."""
    s = _read(Split, raw, "split")
    total = s.train + s.val + s.test
    if abs(total - 1.0) > 1e-6:
        raise ParamError(f"params.yaml: split fractions train={s.train}, val={s.val}, test={s.test} "
                         f"sum to {total:g}; expected 1")
    return s


@dataclass(frozen=True)
class Preprocess:
    chunk_size: int = integer(1, help="images decoded and written per step (bounds memory)")


def preprocess(raw: Mapping[str, Any]) -> Preprocess:
    """Validate the `preprocess` section."""
    return _read(Preprocess, raw, "preprocess")


@dataclass(frozen=True)
class Albumentations:
    """Probabilities and strengths of the albumentations pipeline (the `augment` section)."""

    flip_p: float = number(0, 1, help="probability of each of the horizontal and vertical flips")
    rotate_p: float = number(0, 1, help="probability of a rotation")
    rotate_limit: float = number(0, 180, help="largest rotation, in degrees")
    brightness_contrast_p: float = number(0, 1, help="probability of a brightness and contrast change")
    brightness_limit: float = number(0, 1, help="largest brightness change")
    contrast_limit: float = number(0, 1, help="largest contrast change")
    noise_p: float = number(0, 1, help="probability of Gaussian noise")
    noise_std: tuple[float, float] = pair(0, 1, help="[low, high] std of that noise, a fraction of the 0-255 range")


def albumentations(raw: Mapping[str, Any]) -> Albumentations:
    """Validate the `augment` section, shared by the stages whose augmentation is "albumentations"."""
    return _read(Albumentations, raw, "augment")


@dataclass(frozen=True)
class Augmentation:
    """A stage's own augmentation: none, basic (flips and 90-degree rotations) or albumentations."""

    kind: str
    albumentations: Albumentations | None  # the `augment` section, read only when kind is "albumentations"


def _augmentation(raw: Mapping[str, Any], kind: str) -> Augmentation:
    """The augmentation of `kind`, with the `augment` section, read only when `kind` is albumentations."""
    return Augmentation(kind, albumentations(raw) if kind == "albumentations" else None)


@dataclass(frozen=True)
class Fit:
    """How every training stage fits its model; epochs and learning rates are each stage's own schedule."""

    batch_size: int = integer(1, 4096, help="global training batch size")
    patience: int = integer(1, help="epochs without improvement of the validation loss before stopping")
    class_weight: bool = boolean(help="weight the loss by the inverse frequency of each class")
    augmentation: Augmentation = _declare(_AugmentKind("none | basic (flips and 90-degree rotations) | albumentations"))


@dataclass(frozen=True)
class CNN:
    """Arguments of `models.build_baseline`."""

    filters: tuple[int, ...] = int_list(help="Conv2D filters of each Conv2D+MaxPooling block")
    kernel_size: int = integer(1, 15, help="Conv2D kernel side")
    dense_units: int = integer(1, help="units of the dense layer")
    dropout: float = number(0.0, 0.95, help="dropout rate before the output")


@dataclass(frozen=True)
class TrainBaseline:
    cnn: CNN = inline(CNN, help="the CNN")
    epochs: int = integer(1, help="most epochs of training")
    learning_rate: float = number(0, 1, low_open=True, help="Adam's learning rate")
    fit: Fit = inline(Fit, help="how the model is fitted")


def _check_depth(raw: Mapping[str, Any], b: Base | None, what: str, n_blocks: int) -> None:
    """Reject more Conv2D+MaxPooling blocks than halvings of base.image_size (Keras fails at 0 px)."""
    size = (b if b is not None else base(raw)).image_size
    deepest = size.bit_length() - 1  # floor(log2(size)): each 2x2 pooling must leave >= 1 pixel
    if n_blocks > deepest:
        raise ParamError(
            f"params.yaml: {what} gives {n_blocks} conv blocks but 'base.image_size' {size} can be halved by "
            f"2x2 pooling only {deepest} times; expected at most {deepest} blocks (or a larger image_size)"
        )


def train_baseline(raw: Mapping[str, Any], base: Base | None = None) -> TrainBaseline:
    """Validate the `train_baseline` section; `base`, the validated `base` section, is read from `raw` when None."""
    p = _read(TrainBaseline, raw, "train_baseline")
    _check_depth(raw, base, f"'train_baseline.filters' {list(p.cnn.filters)}", len(p.cnn.filters))
    return p


@dataclass(frozen=True)
class TrainTransfer:
    input_size: int = integer(32, 512, help="MobileNetV2 input side (ImageNet weights exist for 96-224)")
    weights: str = string(help="imagenet | none | the path of a .h5 weights file")
    on_missing_weights: str = choice(("random", "error"), help="weights not found offline: random init or fail")
    alpha: float = number(0.0, 2.0, low_open=True, help="MobileNetV2 width multiplier")
    dropout: float = number(0.0, 0.95, help="dropout rate before the output")
    input_scaling: str = choice(("auto", "galaxy", "per_image", "imagenet"),
                                help="auto: galaxy from random weights, imagenet with pretrained ones")
    learning_rate: float = number(0, 1, low_open=True, help="learning rate of the head, backbone frozen")
    head_epochs: int = integer(1, help="most epochs of training the head")
    fine_tune_layers: int = integer(0, help="top backbone layers unfrozen for fine-tuning")
    fine_tune_lr: float = number(0, 1, low_open=True, help="learning rate of fine-tuning")
    fine_tune_epochs: int = integer(0, help="most epochs of fine-tuning")
    fit: Fit = inline(Fit, help="how the model is fitted")


def train_transfer(raw: Mapping[str, Any]) -> TrainTransfer:
    """Validate the `train_transfer` section."""
    p = _read(TrainTransfer, raw, "train_transfer")
    if p.alpha not in MOBILENET_ALPHAS:
        raise _fail("train_transfer.alpha", p.alpha, "one of " + ", ".join(map(str, MOBILENET_ALPHAS)))
    return p


@dataclass(frozen=True)
class SearchSpace:
    filters: tuple[tuple[int, ...], ...] = numbered("filters_block", int_list(help="Conv2D filters tried in block N"))
    dense_units: tuple[int, ...] = int_list(help="dense-layer units tried")
    dropout: tuple[float, float, float] = group(
        min=number(0, 0.95, help="lowest dropout rate tried"), max=number(0, 0.95, help="highest dropout rate tried"),
        step=number(0, 1, low_open=True, help="step between the dropout rates tried"), help="dropout rates tried")
    learning_rate: tuple[float, float] = group(
        min=number(0, 1, low_open=True, help="lowest learning rate tried"),
        max=number(0, 1, low_open=True, help="highest learning rate tried"), help="learning rates tried")
    lr_sampling: str = choice(("log", "linear"), key="learning_rate.sampling", help="how learning rates are drawn")


@dataclass(frozen=True)
class Tune:
    tuner: str = choice(TUNERS, help="KerasTuner search algorithm")
    max_trials: int = integer(1, help="hyperparameter sets tried")
    epochs_per_trial: int = integer(1, help="epochs of training per trial")
    objective: str = choice(("val_accuracy", "val_loss", "val_auc"), help="validation metric the search optimises")
    kernel_size: int = integer(1, 15, help="Conv2D kernel side of every trial")
    input_scaling: str = choice(("unit", "galaxy"), help="unit: pixels / 255; galaxy: minus the sky, over the "
                                "galaxy's central brightness")
    space: SearchSpace = nested(SearchSpace, help="the hyperparameters searched")
    batch_size: int = integer(1, 4096, help="training batch size of every trial")
    augmentation: Augmentation = _declare(_AugmentKind("none | basic | albumentations (the `augment` section)"))
    workers: int = integer(1, 256, help="1: the search in the stage's process; N >= 2: KerasTuner chief + N workers")
    timeout: int = integer(1, help="seconds a distributed search (workers >= 2) may take before the stage fails")


def tune(raw: Mapping[str, Any], base: Base | None = None) -> Tune:
    """Validate the `tune` section; `base`, the validated `base` section, is read from `raw` when None."""
    p = _read(Tune, raw, "tune")
    blocks = _numbered(raw["tune"]["space"], "filters_block")
    _check_depth(raw, base, f"'tune.space' ({', '.join(blocks)})", len(blocks))
    for name, (low, high) in (("dropout", p.space.dropout[:2]), ("learning_rate", p.space.learning_rate)):
        if low > high:
            raise _fail(f"tune.space.{name}.min", low, f"<= tune.space.{name}.max ({high})")
    return dataclasses.replace(p, augmentation=_augmentation(raw, p.augmentation.kind))


@dataclass(frozen=True)
class TrainOptimized:
    epochs: int = integer(1, help="most epochs of training")
    fit: Fit = inline(Fit, help="how the model is fitted (the learning rate comes from the tuner)")


def train_optimized(raw: Mapping[str, Any]) -> TrainOptimized:
    """Validate the `train_optimized` section (the learning rate comes from the tuner)."""
    p = _read(TrainOptimized, raw, "train_optimized")
    return dataclasses.replace(p, fit=dataclasses.replace(p.fit, augmentation=_augmentation(
        raw, p.fit.augmentation.kind)))


@dataclass(frozen=True)
class Evaluate:
    tta: int = integer(1, 8, help="1: off; 8: predictions averaged over the eight rotations/flips of the square")
    bootstrap_resamples: int = integer(100, help="bootstrap resamples of the test split per confidence interval")
    ci_level: float = number(0.5, 0.999, help="confidence level of the bootstrap intervals")
    calibration_bins: int = integer(2, 100, help="equal-width bins of the expected calibration error")
    batch_size: int = integer(1, 4096, help="prediction batch size")
    n_examples: int = integer(1, 32, help="images per row of the qualitative grid")


def evaluate(raw: Mapping[str, Any]) -> Evaluate:
    """Validate the `evaluate` section."""
    p = _read(Evaluate, raw, "evaluate")
    if p.tta not in (1, 8):
        raise _fail("evaluate.tta", p.tta, "1 (off) or 8 (the eight rotations/flips)")
    return p


# --- Every section ------------------------------------------------------------------------------------------

# Each section of params.yaml: its dataclass and the function that validates it. A stage's own
# section bears the stage's name.
_SECTIONS: dict[str, tuple[type, Callable[..., Any]]] = {
    "base": (Base, base), "fetch": (Fetch, fetch), "filter": (Filter, filter_), "split": (Split, split),
    "preprocess": (Preprocess, preprocess), "augment": (Albumentations, albumentations),
    "train_baseline": (TrainBaseline, train_baseline), "train_transfer": (TrainTransfer, train_transfer),
    "tune": (Tune, tune), "train_optimized": (TrainOptimized, train_optimized), "evaluate": (Evaluate, evaluate),
}
SECTIONS: dict[str, Callable[..., Any]] = {name: validate for name, (_, validate) in _SECTIONS.items()}
# Every key params.yaml may hold, with its declaration; "<N>" stands for any number.
_DECLARED: dict[str, Any] = {key: d for name, (cls, _) in _SECTIONS.items() for key, d in _declared(_of(cls), name)}


def _schema() -> tuple[dict[str, Any], dict[str, re.Pattern[str]]]:
    """The keys of `_DECLARED` as nested mappings (None: a value), and the numbered keys' patterns by mapping."""
    schema: dict[str, Any] = {name: {} for name in _SECTIONS}
    patterns = {}
    for key, declaration in _DECLARED.items():
        *parents, leaf = key.split(".")
        node = schema
        for parent in parents:
            node = node.setdefault(parent, {})
        if leaf.endswith("<N>"):
            patterns[".".join(parents)] = re.compile(re.escape(leaf[:-3]) + "[0-9]+")
        else:
            node.setdefault(leaf, {} if isinstance(declaration, _Mapping) else None)
    return schema, patterns


SCHEMA, _PATTERN_KEYS = _schema()


@dataclass(frozen=True)
class StageParams:
    """The params of one stage: `base` and the stage's own section."""

    base: Base
    own: Any  # the dataclass of the section named like the stage; None for a stage without one


def read(stage: str, path: Path | str = PARAMS_FILE, text: str | None = None) -> StageParams:
    """Load the params file once and validate `base` once and the section of `stage`.

    Args:
        stage: a dvc.yaml stage; its params section, if it has one, is `own`.
        path: the params file, named in errors.
        text: the file's content when the caller already read it (the workspace claim did), so
            the stage runs with exactly what it claimed; None reads `path`.

    Raises:
        ParamError: naming the first problem (see `load` and the section functions).
    """
    raw = load(path, text)
    b = base(raw)
    validate = SECTIONS.get(stage)
    if validate in (train_baseline, tune):  # their depth check needs base.image_size
        return StageParams(b, validate(raw, b))
    return StageParams(b, None if validate is None else validate(raw))
