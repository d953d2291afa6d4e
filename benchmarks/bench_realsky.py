"""Accuracy of every saved model on real SDSS galaxies, as one Markdown table.

Usage: python benchmarks/bench_realsky.py [--real ../shared/realsky-dev] [--models models/] [--tta 1 8]
                                          [--trained-on "synthetic data"] [--output FILE.md|FILE.json]

Scores each models/*.keras with `cosmic.commands.score.score_folder` on a one-folder-per-class set of real
galaxies (REAL/elliptical/*.jpg, REAL/spiral/*.jpg), in one process so TensorFlow loads once.
Frames of any size work: each model crops them as its file records (fixed fraction or adaptive to the galaxy).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# Must be set before TensorFlow is first imported to hide its C++ info banners.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/machine.py
from machine import cpu_description  # noqa: E402
from cosmic import paths, registry  # noqa: E402
from cosmic.cli import positive_int  # noqa: E402
from cosmic.commands.predict import ModelFileError, write_atomic  # noqa: E402
from cosmic.evaluation.report import decimal, markdown_table, percent  # noqa: E402
from cosmic.commands.score import LayoutError, expected_layout, score_folder  # noqa: E402
from cosmic.utils import write_json  # noqa: E402

COLUMNS = ("model", "n", "accuracy % (95% CI)", "balanced acc %", "ROC AUC", "spiral recall %",
           "elliptical recall %", "TTA×8 accuracy", "TTA×8 balanced acc", "TTA×8 AUC", "TTA×8 spiral recall",
           "TTA×8 elliptical recall")


def model_files(models_dir: Path) -> list[Path]:
    """The *.keras files of models_dir: the pipeline's three models in stage order, then any other by name."""
    found = sorted(models_dir.glob("*.keras"))
    order = {m.stage: i for i, m in enumerate(registry.MODELS)}
    return sorted(found, key=lambda p: (order.get(p.stem, len(order)), p.name))


def table_row(name: str, result: dict) -> list[str]:
    """One Markdown table row (cells in `COLUMNS` order) of a `score_folder` result."""
    m = result["metrics"]
    if m is None:
        return [name, "0"] + ["n/a"] * (len(COLUMNS) - 2)
    elliptical, spiral = result["class_names"]
    ci = m["accuracy_ci"]
    interval = "" if ci["low"] is None else f" ({percent(ci['low'])}–{percent(ci['high'])})"
    tta = m.get("tta")
    return [name, str(m["n"]), percent(m["accuracy"]) + interval, percent(m["balanced_accuracy"]),
            decimal(m["roc_auc"]), percent(m[spiral]["recall"]), percent(m[elliptical]["recall"]),
            *(("–",) * 5 if tta is None else (percent(tta["accuracy"]), percent(tta["balanced_accuracy"]),
                                              decimal(tta["roc_auc"]), percent(tta[spiral]["recall"]),
                                              percent(tta[elliptical]["recall"])))]


def markdown(header: str, rows: list[list[str]]) -> str:
    """The header line and a Markdown table of the rows, ending with a newline."""
    return f"{header}\n\n{markdown_table(COLUMNS, rows, align='l' + 'r' * (len(COLUMNS) - 1))}\n"


def main(argv: list[str] | None = None) -> int:
    """Score every model on the real galaxies and print the table.

    Returns:
        0, or 1 if some images could not be read (they are listed on stderr and left out).

    Raises:
        SystemExit: status 2 if the real-galaxy folder or the models are missing or unusable.
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", type=Path, default=Path("../shared/realsky-dev"),
                    help="folder with elliptical/ and spiral/ image subfolders (default: ../shared/realsky-dev)")
    ap.add_argument("--models", type=Path, default=paths.MODELS_DIR,
                    help="folder of *.keras models (default: models)")
    ap.add_argument("--tta", type=int, nargs="+", choices=(1, 8), default=[1, 8],
                    help="1: plain predictions only; 1 8 (default): also the eight rotations/flips averaged")
    ap.add_argument("--batch-size", type=positive_int, default=64,
                    help="images decoded and predicted at a time (default: 64)")
    ap.add_argument("--trained-on", default="synthetic data",
                    help="what the models were trained on, for the header line (default: synthetic data)")
    ap.add_argument("--output", type=Path, default=None,
                    help="also write the table (FILE.md) or every model's full score result (FILE.json)")
    args = ap.parse_args(argv)
    if not args.real.is_dir():
        ap.error(f"{args.real}: real-galaxy folder not found (see --real); "
                 f"{expected_layout(args.real, ('elliptical', 'spiral'))}")
    models = model_files(args.models) if args.models.is_dir() else []
    if not models:
        ap.error(f"{args.models}: no *.keras models found (run 'dvc repro' or 'dvc pull', or see --models)")

    results = {}
    for path in models:
        try:
            results[path.stem] = score_folder(path, args.real, tta=max(args.tta), batch_size=args.batch_size)
        except (ModelFileError, LayoutError) as e:
            ap.error(str(e))
        for failure in results[path.stem]["failed"]:
            print(f"error: {failure['error']}", file=sys.stderr)
    first = next(iter(results.values()))
    n_images = sum(first["n_per_class"].values())
    header = (f"Trained on {args.trained_on}, tested on real SDSS galaxies "
              f"({args.real.resolve().name}, {n_images} images); "
              f"CPU: {cpu_description()}")
    text = markdown(header, [table_row(name, r) for name, r in results.items()])
    sys.stdout.write(text)
    if args.output is not None:
        if args.output.suffix.lower() == ".json":
            write_json(args.output, {"header": header, "results": results})
        else:
            write_atomic(args.output, text)
    return 1 if any(r["n_failed"] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
