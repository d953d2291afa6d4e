"""Real vs synthetic cutouts side by side: a statistics table and a figure of each class.

Usage: python benchmarks/bench_realsky_stats.py [--real ../shared/realsky-dev] [--catalog data/filtered/catalog.csv]
                                                [--n 800] [--figure plots/realsky/real_vs_synthetic.png]

Real galaxies come from a one-folder-per-class set (REAL/elliptical, REAL/spiral); synthetic ones from
the filter stage's catalog of the default data (labels at the pipeline's agreement cut). Prints the
median (10th-90th percentile) of each statistic of `cosmic.data.imagestats` per class and data set, and
draws rows of real and synthetic galaxies of each class as the models see them (centre crop).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from cosmic import paths

from cosmic.data import imagestats
from cosmic.data.imageops import Crop, load_crop_resize
from cosmic.evaluation.report import markdown_table
from cosmic.commands.score import LayoutError, class_files

CLASS_NAMES = ("elliptical", "spiral")
CROP_FRACTION = 0.5  # the pipeline's default 212-px crop of the 424-px frame
TILE = 96


def real_paths(real_dir: Path) -> list[tuple[str, Path]]:
    """(class, file) of every image of the real one-folder-per-class set."""
    files, _ = class_files(real_dir, CLASS_NAMES)
    return [(name, path) for name in CLASS_NAMES for path in files[name]]


def synthetic_paths(catalog_csv: Path, n_per_class: int, seed: int) -> list[tuple[str, Path]]:
    """(class, file) of a seeded sample of at most `n_per_class` labelled galaxies per class of the catalog."""
    catalog = pd.read_csv(catalog_csv)
    out = []
    for label, name in enumerate(CLASS_NAMES):
        rows = catalog[catalog["label"] == label]
        rows = rows.sample(min(n_per_class, len(rows)), random_state=seed).sort_values("image_path")
        out += [(name, Path(p)) for p in rows["image_path"]]
    return out


def figure(real: list[tuple[str, Path]], synthetic: list[tuple[str, Path]], per_row: int, seed: int,
           path: Path) -> None:
    """Rows real/synthetic elliptical, real/synthetic spiral of random centre crops, with row titles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    rows = []
    for name in CLASS_NAMES:
        for source, items in (("real SDSS", real), ("synthetic", synthetic)):
            files = [p for c, p in items if c == name]
            pick = rng.choice(len(files), min(per_row, len(files)), replace=False)
            tiles = [load_crop_resize(files[i], Crop(CROP_FRACTION), TILE) for i in sorted(pick)]
            rows.append((f"{source} {name}", np.concatenate(tiles, axis=1)))
    fig, axes = plt.subplots(len(rows), 1, figsize=(per_row * 1.1, len(rows) * 1.25))
    for ax, (title, strip) in zip(axes, rows):
        ax.imshow(strip)
        ax.set_title(title, fontsize=10, loc="left")
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    # No timestamp in the file, so re-running on the same data gives the same bytes.
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Measure both sets, print the comparison table and write the figure."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", type=Path, default=Path("../shared/realsky-dev"),
                    help="folder with elliptical/ and spiral/ real images (default: ../shared/realsky-dev)")
    ap.add_argument("--catalog", type=Path, default=paths.CATALOG,
                    help="the filter stage's catalog of the synthetic data (default: data/filtered/catalog.csv)")
    ap.add_argument("--n", type=int, default=800, help="synthetic galaxies per class to measure (default: 800)")
    ap.add_argument("--per-row", type=int, default=10, help="galaxies per row of the figure (default: 10)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the samples (default: 0)")
    ap.add_argument("--figure", type=Path, default=paths.PLOTS_DIR / "realsky" / "real_vs_synthetic.png")
    ap.add_argument("--output", type=Path, default=None, help="also write the table as Markdown")
    args = ap.parse_args(argv)
    if not args.catalog.is_file():
        ap.error(f"{args.catalog}: catalog not found; run 'dvc repro filter' first")
    try:
        real = real_paths(args.real)
    except LayoutError as e:
        ap.error(str(e))
    synthetic = synthetic_paths(args.catalog, args.n, args.seed)
    table = imagestats.compare({"real": imagestats.table(real), "synthetic": imagestats.table(synthetic)})
    text = (f"Real SDSS ({args.real}) vs synthetic ({args.catalog}); whole frame at {imagestats.GRID} px, "
            "0-255 display units; median (10th-90th percentile)\n\n"
            + markdown_table(["statistic", *table.columns], [[name, *row] for name, row in table.iterrows()],
                             pad=True) + "\n")
    sys.stdout.write(text)
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
    figure(real, synthetic, args.per_row, args.seed, args.figure)
    print(f"figure: {args.figure}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
