"""Score a saved Cosmic Classifier model on labelled images laid out one folder per class.

Usage: python -m cosmic.commands.score --model MODEL [--tta 1|8] [--output FILE.json] [--batch-size B] DIR

DIR holds one subfolder per class of the model, named as in its preprocessing record
(DIR/elliptical/*.jpg, DIR/spiral/*.png, ...). Images are decoded and predicted exactly as
`cosmic.commands.predict` does, and scored with the metrics of the evaluate stage; unreadable files are
reported and left out of the metrics.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cosmic.cli import positive_int, program_name
from cosmic.commands.predict import MODEL_FIX, ModelFileError, expand_inputs, load_classifier, predict_files_tta
from cosmic.evaluation.report import decimal, markdown_table, percent
from cosmic.utils import write_json

if TYPE_CHECKING:
    from cosmic.evaluation.metrics import MetricSettings

log = logging.getLogger(__name__)


class LayoutError(ValueError):
    """The data folder is not one non-empty image folder per class of the model."""


def expected_layout(data_dir: Path | str, class_names: Sequence[str]) -> str:
    """Describe the folder layout score expects, for error messages."""
    folders = " and ".join(f"{Path(data_dir) / name}/" for name in class_names)
    return f"expected {folders} holding .jpg/.jpeg/.png images (one folder per class of the model)"


def class_files(data_dir: Path | str, class_names: Sequence[str]) -> tuple[dict[str, list[Path]], list[Path]]:
    """List the images of each class folder of `data_dir`.

    Images are what `cosmic.commands.predict` takes from a folder: .jpg/.jpeg/.png files directly
    inside it (case-insensitive, hidden files skipped), sorted by path.

    Args:
        data_dir: folder with one subfolder per class.
        class_names: the model's class names, i.e. the expected subfolder names.

    Returns:
        (files, ignored): class name -> its image files, and the other (non-hidden)
        subfolders of data_dir, which are logged and not scored.

    Raises:
        LayoutError: naming the path and the expected layout, if data_dir is not a folder or a
            class folder is missing or holds no image.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        what = "is not a folder" if data_dir.exists() else "not found"
        raise LayoutError(f"{data_dir}: data folder {what}; {expected_layout(data_dir, class_names)}")
    subfolders = sorted(p for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = {}
    for name in class_names:
        folder = data_dir / name
        if not folder.is_dir():
            found = ", ".join(p.name for p in subfolders) or "none"
            raise LayoutError(f"{folder}: class folder not found (subfolders found: {found}); "
                              f"{expected_layout(data_dir, class_names)}")
        files[name] = expand_inputs([str(folder)])[0]
        if not files[name]:
            raise LayoutError(f"{folder}: class folder holds no .jpg/.jpeg/.png image; "
                              f"{expected_layout(data_dir, class_names)}")
    ignored = [p for p in subfolders if p.name not in class_names]
    for path in ignored:
        log.warning("%s: not a class of the model (%s); ignored", path, ", ".join(class_names))
    return files, ignored


def score_folder(model_path: Path | str, data_dir: Path | str, tta: int = 1, batch_size: int = 64, *,
                 settings: MetricSettings | None = None) -> dict:
    """Score a saved model on a one-folder-per-class data set.

    Decoding, cropping and prediction are `cosmic.commands.predict`'s, so p(spiral) is what
    `cosmic-predict` prints for the same file (rounded to 6 decimals) and the metrics can be
    reproduced from its output. With tta=8 the plain and the TTA predictions come from one
    decode of each image.

    Args:
        model_path: saved .keras model with its preprocessing record.
        data_dir: folder with one image subfolder per class of the model.
        tta: 1, or 8 to also report metrics of the average over the eight rotations/flips.
        batch_size: images decoded and predicted per step.
        settings: bootstrap resamples, CI level, calibration bins and seed; None: `MetricSettings()`,
            the evaluate stage's in the default run.

    Returns:
        JSON-ready dict: ``model``, ``data_dir``, ``class_names``, ``n_per_class`` (image files
        found), ``n_scored``, ``n_failed``, ``failed`` (list of {path, error}),
        ``ignored_subfolders``, ``settings`` and ``metrics`` (the evaluate metric block of the
        scored images, with a ``tta`` sub-block when tta is 8; None if no image was readable).

    Raises:
        ModelFileError: naming the model file if it cannot be used.
        LayoutError: naming the path if data_dir is not one image folder per class.
        ValueError: if tta is not 1 or 8.
    """
    if tta not in (1, 8):
        raise ValueError(f"tta is {tta!r}; expected 1 (off) or 8 (all rotations/flips)")
    model, crop, size, names = load_classifier(model_path)
    files, ignored = class_files(data_dir, names)
    paths = [path for name in names for path in files[name]]
    labels = [label for label, name in enumerate(names) for _ in files[name]]
    ttas = (1, tta) if tta > 1 else (1,)
    y, p, p_tta, failed = [], [], [], []
    rows = predict_files_tta(model, paths, crop, size, names, ttas, batch_size)
    for label, (plain, *augmented) in zip(labels, rows, strict=True):
        if plain["error"]:
            failed.append({"path": plain["path"], "error": plain["error"]})
            continue
        y.append(label)
        p.append(plain["p_spiral"])
        if augmented:
            p_tta.append(augmented[0]["p_spiral"])
    # Imported here: scikit-learn and TensorFlow are not needed for --help or usage errors.
    from cosmic.evaluation.evaluate import metric_block
    from cosmic.evaluation.metrics import MetricSettings

    settings = settings or MetricSettings()
    metrics = None
    if y:
        metrics = metric_block(y, p, names, settings)
        if tta > 1:
            metrics["tta"] = {"views": tta, **metric_block(y, p_tta, names, settings)}
    return {"model": str(model_path), "data_dir": str(data_dir), "class_names": list(names),
            "n_per_class": {name: len(files[name]) for name in names}, "n_scored": len(y),
            "n_failed": len(failed), "failed": failed, "ignored_subfolders": [str(folder) for folder in ignored],
            "settings": {"tta": tta, "batch_size": batch_size, **dataclasses.asdict(settings)},
            "metrics": metrics}


def summary(result: dict) -> str:
    """A compact Markdown table of a `score_folder` result, aligned for a terminal: one row plain, one with TTA.

    Args:
        result: the dict returned by `score_folder`.

    Returns:
        The text, ending with a newline.
    """
    names = result["class_names"]
    counts = ", ".join(f"{name} {n}" for name, n in result["n_per_class"].items())
    lines = [f"{result['model']} on {result['data_dir']} ({counts}; {result['n_failed']} unreadable)"]
    metrics = result["metrics"]
    if metrics is None:
        return "\n".join(lines + ["no image could be read: no metrics"]) + "\n"
    blocks = [("plain", metrics)]
    if "tta" in metrics:
        blocks.append((f"TTA x{metrics['tta']['views']}", metrics["tta"]))
    level = round(100 * metrics["accuracy_ci"]["level"])
    header = ["view", "n", f"accuracy % [{level}% CI]", "balanced acc %", "ROC AUC",
              *(f"recall {n} %" for n in names), "TN FP FN TP", "ECE"]
    rows = []
    for label, m in blocks:
        ci, cm = m["accuracy_ci"], m["confusion_matrix"]
        interval = "[n/a]" if ci["low"] is None else f"[{percent(ci['low'])}, {percent(ci['high'])}]"
        rows.append([label, str(m["n"]), f"{percent(m['accuracy'])} {interval}", percent(m["balanced_accuracy"]),
                     decimal(m["roc_auc"]), *(percent(m[n]["recall"]) for n in names),
                     f"{cm['tn']} {cm['fp']} {cm['fn']} {cm['tp']}", decimal(m["ece"])])
    lines.append(markdown_table(header, rows, align="l" + "r" * (len(header) - 1), pad=True))
    lines.append(f"positive class {names[1]}: TN FP FN TP are the confusion counts; ECE over "
                 f"{result['settings']['calibration_bins']} bins")
    return "\n".join(lines) + "\n"


def _json_path(value: str) -> Path:
    """argparse type for --output: a .json path."""
    path = Path(value)
    if path.suffix.lower() != ".json":
        raise argparse.ArgumentTypeError(f"{value}: output must end in .json")
    return path


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of `python -m cosmic.commands.score`."""
    parser = argparse.ArgumentParser(
        prog=program_name("score"), description=__doc__.splitlines()[0],
        epilog="Exit status: 0 all images scored, 1 some files could not be read (metrics cover the rest), "
               "2 usage error (bad options, model file, or data folder layout).")
    parser.add_argument("data_dir", type=Path, metavar="DIR",
                        help="folder with one image subfolder per class of the model (e.g. DIR/elliptical, "
                             "DIR/spiral)")
    parser.add_argument("--model", required=True, type=Path,
                        help="saved .keras model (e.g. models/train_optimized.keras)")
    parser.add_argument("--output", type=_json_path, default=None, metavar="FILE.json",
                        help="also write the result (counts, unreadable files, metrics) to FILE.json")
    parser.add_argument("--tta", type=int, choices=(1, 8), default=1,
                        help="1: single view (default); 8: also report the average of the eight rotations/flips")
    parser.add_argument("--batch-size", type=positive_int, default=64,
                        help="images decoded and predicted at a time (default: 64)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command line: score a saved model on a one-folder-per-class data set and print a summary.

    Args:
        argv: arguments without the program name; None reads `sys.argv`.

    Returns:
        0 if every image was scored, 1 if any file could not be read or none could.

    Raises:
        SystemExit: status 2 on usage errors (bad options, model file missing or not a Cosmic
            Classifier model, data folder not laid out one folder per class), naming the culprit.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    # Cheap checks first, so mistakes are reported before TensorFlow is imported.
    if not args.model.is_file():
        parser.error(f"{args.model}: model file not found; {MODEL_FIX}")
    if not args.data_dir.is_dir():
        what = "is not a folder" if args.data_dir.exists() else "not found"
        parser.error(f"{args.data_dir}: data folder {what}; {expected_layout(args.data_dir, ('<class>',))}")
    try:
        result = score_folder(args.model, args.data_dir, tta=args.tta, batch_size=args.batch_size)
    except (ModelFileError, LayoutError) as e:
        parser.error(str(e))
    for failure in result["failed"]:
        print(f"error: {failure['error']}", file=sys.stderr)
    sys.stdout.write(summary(result))
    if args.output is not None:
        write_json(args.output, result)
        print(f"wrote {args.output}", file=sys.stderr)
    return 1 if result["n_failed"] or result["metrics"] is None else 0


if __name__ == "__main__":
    sys.exit(main())
