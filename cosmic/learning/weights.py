"""Find MobileNetV2 ImageNet weights offline first, and say plainly when there are none."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import keras

from cosmic import paths
from cosmic.utils import StageError

log = logging.getLogger(__name__)

KERAS_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
IMAGENET_SIZES = (96, 128, 160, 192, 224)


class WeightsError(StageError, RuntimeError):
    """Pretrained weights were asked for and cannot be had."""


@dataclass(frozen=True)
class WeightsChoice:
    """Which weights the transfer model starts from, and why; recorded in the saved model."""

    path: str | None
    pretrained: bool
    source: str
    reason: str

    def as_record(self) -> dict:
        return {"pretrained": self.pretrained, "weights_source": self.source, "weights_note": self.reason}


def display_path(path: Path | str, repo: Path | str | None = None) -> str:
    """`path` as recorded in metrics and reports: relative inside the repository, `~/...` under $HOME.

    Committed outputs must not depend on who runs the pipeline or where the clone is; only a
    path outside both (a setting the user chose) stays absolute.
    """
    path = Path(os.path.abspath(Path(path).expanduser()))
    repo = Path(os.path.abspath(repo if repo is not None else Path.cwd()))
    if path.is_relative_to(repo):
        return path.relative_to(repo).as_posix() or "."
    home = Path(os.path.abspath(Path.home()))
    if path.is_relative_to(home):
        rest = path.relative_to(home).as_posix()
        return "~" if rest == "." else "~/" + rest
    return path.as_posix()


def mobilenet_weights_filename(alpha: float, input_size: int) -> str:
    """File name Keras uses for MobileNetV2's no-top ImageNet weights."""
    return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{input_size}_no_top.h5"


def keras_cache_dir() -> Path:
    """Keras's download cache for application weights (honours KERAS_HOME)."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def resolve_mobilenet_weights(spec: str, alpha: float, input_size: int, on_missing: str,
                              repo_dir: Path = paths.WEIGHTS_DIR, download: bool = True) -> WeightsChoice:
    """Resolve `train_transfer.weights` to a file, looking offline before any download.

    "imagenet" is looked for in `repo_dir`, then in the Keras cache, then downloaded with
    Keras's own loader; "none" means random initialisation; anything else is a file path.

    Args:
        spec: "imagenet", "none" or a path to a no-top .h5 weights file.
        alpha: MobileNetV2 width multiplier.
        input_size: MobileNetV2 input side.
        on_missing: "random" (warn and start from random weights) or "error".
        repo_dir: folder in the repository where users drop weight files.
        download: try Keras's download when the file is not found offline.

    Raises:
        WeightsError: when weights are missing and on_missing is "error".
    """
    if spec == "none":
        return WeightsChoice(None, False, "none", "train_transfer.weights is 'none'")
    if spec != "imagenet":
        if Path(spec).is_file():
            return WeightsChoice(str(spec), True, display_path(spec), "weights file given in params")
        return _missing(f"weights file {display_path(spec)} (train_transfer.weights) not found", on_missing)
    if input_size not in IMAGENET_SIZES:
        return _missing(f"no ImageNet weights exist for input_size {input_size} (only {IMAGENET_SIZES})",
                        on_missing)
    name = mobilenet_weights_filename(alpha, input_size)
    for candidate in (Path(repo_dir) / name, keras_cache_dir() / name):
        if candidate.is_file():
            return WeightsChoice(str(candidate), True, display_path(candidate), "ImageNet weights found offline")
    if download:
        try:
            got = keras.utils.get_file(name, KERAS_WEIGHTS_URL + name, cache_subdir="models")
            return WeightsChoice(got, True, "download", "ImageNet weights downloaded by Keras")
        except Exception as e:  # Keras wraps network failures in several exception types
            # The error text depends on the machine's network, so it goes to the log, not the metrics.
            log.warning("download of %s failed: %s", name, str(e).splitlines()[0][:300])
            failure = "download failed"
    else:
        failure = "download disabled"
    target = display_path(Path(repo_dir) / name)
    return _missing(
        f"ImageNet weights {name} not found in {display_path(repo_dir)}/ or "
        f"{display_path(keras_cache_dir())}/ and {failure}. "
        f"Put the file at {target} (then `dvc add {target}`), or set train_transfer.weights to a file path",
        on_missing,
    )


def _missing(message: str, on_missing: str) -> WeightsChoice:
    if on_missing == "error":
        raise WeightsError(message + " (train_transfer.on_missing_weights=error)")
    log.warning("!" * 72)
    log.warning("NO PRETRAINED WEIGHTS: %s", message)
    log.warning("train_transfer continues from RANDOM initialisation (on_missing_weights=random); "
                "its metrics record pretrained: false")
    log.warning("!" * 72)
    return WeightsChoice(None, False, "random", message)
