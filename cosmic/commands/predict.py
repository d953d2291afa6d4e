"""Classify new galaxy images as elliptical or spiral with a saved Cosmic Classifier model.

Usage: python -m cosmic.commands.predict --model MODEL [--output FILE] [--tta N] [--batch-size B] PATH...

PATH may be an image file, a folder (its .jpg/.jpeg/.png files, not recursive) or a glob
pattern (quoted patterns are expanded here). Each image gets the crop (fixed, or adaptive to the
galaxy's size) and resize recorded in the model file, so predictions match what the model saw in training.
"""

from __future__ import annotations

import argparse
import csv
import glob
import io
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from cosmic.cli import import_tensorflow_quietly, positive_int, program_name
from cosmic.data.imageops import Crop, ImageError, cut_resize, open_converted
from cosmic.learning.modelio import MODEL_FIX, load_model
from cosmic.params import CROPS
from cosmic.registry import THRESHOLD
from cosmic.evaluation.tta import predict_proba
from cosmic.utils import OutputError, atomic_path

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
OUTPUT_FORMATS = (".csv", ".json")
COLUMNS = ("id", "path", "p_spiral", "label", "error")
DECIMALS = 6
# A canonical non-negative integer (no sign, no leading zeros), as in Kaggle's <GalaxyID>.jpg.
_GALAXY_ID = re.compile(r"0|[1-9][0-9]*")




class ModelFileError(ValueError):
    """The model file is missing, unloadable or lacks a usable preprocessing record."""


def expand_inputs(patterns: Iterable[str]) -> tuple[list[Path], list[str]]:
    """Expand PATH arguments into a sorted, de-duplicated list of files.

    An existing folder contributes its .jpg/.jpeg/.png files (case-insensitive, not
    recursive, hidden files skipped like a glob would). An existing path is used as is. Any
    other argument is expanded with `glob.glob` (``**`` allowed); matched folders are
    expanded like folder arguments, so a quoted pattern gives what the shell would have. A
    non-existing path without glob characters is kept, so it is reported as unreadable
    rather than silently dropped.

    Args:
        patterns: files, folders and glob patterns.

    Returns:
        (files, unmatched): the files sorted by path string, and the patterns that
        contributed no existing file.
    """
    files: dict[str, Path] = {}
    unmatched: list[str] = []
    for pattern in patterns:
        if os.path.lexists(pattern) or not glob.has_magic(pattern):
            candidates = [pattern]
        else:
            candidates = sorted(glob.glob(pattern, recursive=True))
        found = []
        for candidate in candidates:
            path = Path(os.path.normpath(candidate))
            found.extend(_folder_images(path) if path.is_dir() else [path])
        if not any(p.exists() for p in found):
            unmatched.append(pattern)
        for path in found:
            # Key on the absolute path so "a/1.jpg" and "./a/1.jpg" count once.
            files.setdefault(os.path.normcase(os.path.abspath(path)), path)
    return sorted(files.values(), key=str), unmatched


def _folder_images(folder: Path) -> list[Path]:
    """The image files directly inside `folder`, skipping hidden ones (e.g. macOS ._ files)."""
    return [p for p in folder.iterdir()
            if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()]


def galaxy_id(path: Path | str) -> int | str:
    """The row id of an image: its GalaxyID for Kaggle names like 100008.jpg, else its file name."""
    path = Path(path)
    return int(path.stem) if _GALAXY_ID.fullmatch(path.stem) else path.name


def check_record(record: dict, model_path: Path | str) -> tuple[Crop, int, tuple[str, str]]:
    """Validate the preprocessing record of a saved model.

    Args:
        record: the JSON record from `cosmic.learning.modelio.read_preprocessing`.
        model_path: the model file, for the error message.

    Returns:
        (crop, image_size, class_names); a record without "crop" (models saved before the adaptive
        crop existed) means the fixed crop.

    Raises:
        ModelFileError: naming the file if a field is missing or out of range.
    """
    try:
        fraction = float(record["crop_fraction"])
        mode = record.get("crop", "fixed")
        factor = float(record["crop_factor"]) if mode == "adaptive" else None
        size = record["image_size"]
        names = record["class_names"]
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{model_path}: preprocessing record is incomplete ({e!r})") from None
    if not 0 < fraction <= 1 or mode not in CROPS or (factor is not None and not factor > 0) \
            or not isinstance(size, int) or size < 1 \
            or not isinstance(names, list) or len(names) != 2 or not all(isinstance(n, str) for n in names):
        raise ModelFileError(f"{model_path}: preprocessing record is invalid: crop={mode!r}, crop_fraction={fraction}, "
                             f"crop_factor={factor}, image_size={size!r}, class_names={names!r}")
    return Crop(fraction, factor), size, tuple(names)


def load_classifier(model_path: Path | str):
    """Load a saved model and the preprocessing it was trained with.

    Imports Keras here, so `--help` and usage errors do not pay TensorFlow's import time.

    Returns:
        (model, crop, image_size, class_names).

    Raises:
        ModelFileError: naming the file if it is missing, not a Cosmic Classifier model, or
            its input/output shapes do not match the record.
    """
    import_tensorflow_quietly()

    try:
        model, record = load_model(model_path)
    except (FileNotFoundError, ValueError) as e:
        raise ModelFileError(str(e)) from None
    crop, size, names = check_record(record, model_path)
    in_shape, out_shape = tuple(model.input_shape), tuple(model.output_shape)
    if in_shape[1:] != (size, size, 3) or out_shape[1:] != (1,):
        raise ModelFileError(f"{model_path}: model maps {in_shape} -> {out_shape}, expected "
                             f"(None, {size}, {size}, 3) -> (None, 1) from its preprocessing record")
    return model, crop, size, names


def predict_files(model, paths: Sequence[Path], crop: Crop, size: int, class_names: Sequence[str],
                  tta: int = 1, batch_size: int = 64) -> Iterator[dict]:
    """Predict p(spiral) for image files, decoding only `batch_size` images at a time.

    Args:
        model: Keras model taking (n, size, size, 3) pixels in [0, 255].
        paths: image files; grayscale/RGBA/palette/CMYK/16-bit images are converted to 8-bit RGB.
        crop: how each frame is cut, from the model's record.
        size: side the crop is resized to, from the model's record.
        class_names: (name of class 0, name of class 1).
        tta: 1, or 8 to average the eight rotations/flips.
        batch_size: images decoded and predicted per step.

    Returns:
        An iterator of rows in `paths` order with keys `COLUMNS` and "note" (what was converted, or
        that an adaptive crop found no central source and used the fixed crop; else ""); a file that cannot be read has p_spiral and label None and an error message
        naming it.

    Raises:
        ValueError: if tta is not 1 or 8.
    """
    for (row,) in predict_files_tta(model, paths, crop, size, class_names, (tta,), batch_size):
        yield row


def predict_files_tta(model, paths: Sequence[Path], crop: Crop, size: int, class_names: Sequence[str],
                      ttas: Sequence[int] = (1, 8), batch_size: int = 64) -> Iterator[tuple[dict, ...]]:
    """Predict p(spiral) for image files with several TTA settings, decoding each image once.

    Args:
        model, paths, crop, size, class_names, batch_size: as for `predict_files`.
        ttas: the TTA settings to predict with, each 1 or 8.

    Returns:
        An iterator, in `paths` order, of one tuple per file holding its `predict_files` row
        for each setting in `ttas` order; an unreadable file gets its error row in every place.

    Raises:
        ValueError: if a setting in ttas is not 1 or 8.
    """
    for tta in ttas:
        if tta not in (1, 8):
            raise ValueError(f"tta is {tta!r}; expected 1 (off) or 8 (all rotations/flips)")
    for start in range(0, len(paths), batch_size):
        chunk = paths[start:start + batch_size]
        arrays: list[np.ndarray] = []
        errors: dict[int, str] = {}
        notes: dict[int, str] = {}
        for i, path in enumerate(chunk):
            try:
                img, converted = open_converted(path)
                side, measured = crop.side(img)
                arrays.append(cut_resize(img, side, size))
                fallback = "" if measured or crop.factor is None else \
                    f"{path}: no central source found, so the fixed centre crop was used"
                notes[i] = "; ".join(n for n in (converted, fallback) if n)
            except ImageError as e:
                errors[i] = str(e)
        images = np.stack(arrays) if arrays else None
        probs = [iter(predict_proba(model, images, tta=tta, batch_size=batch_size) if arrays else [])
                 for tta in ttas]
        for i, path in enumerate(chunk):
            yield tuple(_row(path, errors.get(i, ""), None if i in errors else next(p), class_names,
                             notes.get(i, "")) for p in probs)


def _row(path: Path, error: str, p: float | None, class_names: Sequence[str], note: str = "") -> dict:
    """The output row of one file: its prediction, or None values and the error if it was unreadable."""
    row = {"id": galaxy_id(path), "path": str(path), "p_spiral": None, "label": None, "error": error,
           "note": note}
    if p is not None:
        p = round(float(p), DECIMALS)
        # Label from the printed value, so a row never shows 0.5 next to "spiral".
        row["p_spiral"], row["label"] = p, class_names[int(p > THRESHOLD)]
    return row


def format_rows(rows: Sequence[dict], fmt: str) -> str:
    """Render rows as CSV (empty cells for missing values) or as a JSON list of records.

    Args:
        rows: rows from `predict_files`.
        fmt: ".csv" or ".json".

    Returns:
        The text, ending with a newline.
    """
    if fmt == ".json":
        return json.dumps([{k: row[k] for k in COLUMNS} for row in rows], indent=2, allow_nan=False) + "\n"
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        p = row["p_spiral"]
        writer.writerow([row["id"], row["path"], "" if p is None else f"{p:.{DECIMALS}f}",
                         row["label"] or "", row["error"]])
    return buf.getvalue()


def write_atomic(path: Path, text: str) -> None:
    """Write text via a temporary file, so an interrupted or failed write leaves no output at all."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def check_output(path: Path) -> str | None:
    """Why --output cannot be written (a folder, under a regular file, not writable), or None.

    Creates the missing parent folders, as the final write would.
    """
    if path.is_dir():
        return f"{path}: is a folder; expected a .csv or .json file path"
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                return f"{path}: {parent} is a regular file, not a folder; expected a path in a folder"
            break
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return f"{path}: cannot create its folder ({e.strerror})"
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f"{path}: not writable"
    return None


def _output_path(value: str) -> Path:
    """argparse type for --output: a .csv or .json path."""
    path = Path(value)
    if path.suffix.lower() not in OUTPUT_FORMATS:
        raise argparse.ArgumentTypeError(f"{value}: output must end in .csv or .json")
    return path


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of `python -m cosmic.commands.predict`."""
    parser = argparse.ArgumentParser(
        prog=program_name("predict"), description=__doc__.splitlines()[0],
        epilog="Exit status: 0 all images predicted, 1 some files could not be read, 2 usage error.")
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="image file, folder (non-recursive .jpg/.jpeg/.png) or glob pattern")
    parser.add_argument("--model", required=True, type=Path,
                        help="saved .keras model (e.g. models/train_optimized.keras)")
    parser.add_argument("--output", type=_output_path, default=None,
                        help="write FILE.csv or FILE.json (list of records) instead of CSV on stdout")
    parser.add_argument("--tta", type=int, choices=(1, 8), default=1,
                        help="1: single view (default); 8: average the eight rotations/flips")
    parser.add_argument("--batch-size", type=positive_int, default=64,
                        help="images decoded and predicted at a time (default: 64)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command line: classify images with a saved model and write one row per file.

    Args:
        argv: arguments without the program name; None reads `sys.argv`.

    Returns:
        0 if every file was predicted, 1 if any file could not be read.

    Raises:
        SystemExit: status 2 on usage errors (bad options, model file missing or not a Cosmic
            Classifier model, no input file matched), with a message naming the culprit.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    # Cheap checks first, so mistakes are reported before TensorFlow is imported.
    if not args.model.is_file():
        parser.error(f"{args.model}: model file not found; {MODEL_FIX}")
    if args.output is not None:
        problem = check_output(args.output)  # before any prediction, so no work is lost to a bad path
        if problem:
            parser.error(problem)
    paths, unmatched = expand_inputs(args.paths)
    if not any(p.exists() for p in paths):
        parser.error("no input files match: " + ", ".join(args.paths))
    for pattern in unmatched:
        if glob.has_magic(pattern) or os.path.isdir(pattern):
            print(f"warning: {pattern}: no image files match", file=sys.stderr)
    try:
        model, crop, size, names = load_classifier(args.model)
    except ModelFileError as e:
        parser.error(str(e))

    rows = []
    for row in predict_files(model, paths, crop, size, names, tta=args.tta, batch_size=args.batch_size):
        if row["error"]:
            print(f"error: {row['error']}", file=sys.stderr)
        elif row["note"]:
            print(f"note: {row['note']}", file=sys.stderr)
        rows.append(row)
    n_failed = sum(bool(row["error"]) for row in rows)
    if args.output is None:
        sys.stdout.write(format_rows(rows, ".csv"))
    else:
        try:
            write_atomic(args.output, format_rows(rows, args.output.suffix.lower()))
        except OutputError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        except OSError as e:
            print(f"error: cannot write {args.output}: {e}", file=sys.stderr)
            return 2
        print(f"wrote {len(rows)} rows to {args.output}: {len(rows) - n_failed} predicted, {n_failed} unreadable",
              file=sys.stderr)
    return 1 if n_failed else 0


if __name__ == "__main__":
    sys.exit(main())
