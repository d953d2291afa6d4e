"""Synthetic data generator: images/s with 1 and 2 workers, class mix at the 0.8 threshold, cutout shapes.

Usage: python benchmarks/bench_synthetic.py [--n-images 400] [--seed 2013] [--threshold 0.8] [--n-shapes 200]

Generates the same data set into a temporary folder with workers=1 and workers=2 (the outputs must
be byte-identical), then measures the galaxy in each cutout the way SExtractor would (isophotal
second moments on the grey JPEG) to compare with the real set: semi-major axis median 33 px
(5-95 %: 25-46), axis ratio median 0.68 (0.31-0.94), centre offset median 4.4 px.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage

from cosmic.data import kaggle_format as kf
from cosmic.data.synthetic import generate


def timed_generate(out_dir: Path, n_images: int, seed: int, workers: int) -> tuple[pd.DataFrame, float, float]:
    """Generate a data set; return it with the wall-clock images/s and the images per CPU-second.

    The CPU figure (this process plus its finished worker processes) does not depend on how
    busy the machine is, unlike the wall-clock rate.
    """
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    start, cpu_start = time.perf_counter(), time.process_time()
    frame = generate(out_dir, n_images, seed, workers=workers)
    wall = time.perf_counter() - start
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (time.process_time() - cpu_start + children_after.ru_utime - children.ru_utime
           + children_after.ru_stime - children.ru_stime)
    return frame, n_images / wall, n_images / cpu


def same_output(a: Path, b: Path) -> bool:
    """True if two generated folders hold byte-identical CSVs and images."""
    names = sorted(p.name for p in (a / kf.IMAGES_DIR).iterdir())
    if names != sorted(p.name for p in (b / kf.IMAGES_DIR).iterdir()):
        return False
    _, mismatch, errors = filecmp.cmpfiles(a / kf.IMAGES_DIR, b / kf.IMAGES_DIR, names, shallow=False)
    return not mismatch and not errors and filecmp.cmp(a / kf.SOLUTIONS_CSV, b / kf.SOLUTIONS_CSV, shallow=False)


def measure_shape(path: Path) -> tuple[float, float, float] | None:
    """Semi-major axis, axis ratio and centre offset (px) of the central source of a cutout.

    Args:
        path: JPEG cutout.

    Returns:
        (a, b/a, offset from (212, 212)) from intensity-weighted second moments of the
        1.5-sigma isophote around the centre, or None if nothing is detected.
    """
    grey = np.asarray(Image.open(path).convert("L"), dtype=float)
    border = np.ones(grey.shape, dtype=bool)
    border[30:-30, 30:-30] = False
    edge = grey[border]
    sky, noise = np.median(edge), edge.std()
    labels, count = ndimage.label(ndimage.gaussian_filter(grey, 2.0) > sky + 1.5 * noise)
    if count == 0:
        return None
    centre = (kf.IMAGE_SIZE // 2, kf.IMAGE_SIZE // 2)
    label = labels[centre]
    if label == 0:
        # Nearest detected segment to the centre.
        _, (rows, cols) = ndimage.distance_transform_edt(labels == 0, return_indices=True)
        label = labels[rows[centre], cols[centre]]
    ys, xs = np.nonzero(labels == label)
    w = np.clip(grey[ys, xs] - sky, 0.0, None)
    if w.sum() <= 0:
        return None
    xc, yc = np.average(xs, weights=w), np.average(ys, weights=w)
    cov = np.cov(np.vstack([xs - xc, ys - yc]), aweights=w, bias=True)
    minor, major = np.sqrt(np.clip(np.linalg.eigvalsh(cov), 0.0, None))
    return float(major), float(minor / major), float(np.hypot(xc - centre[1], yc - centre[0]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-images", type=int, default=400)
    ap.add_argument("--seed", type=int, default=2013)
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--n-shapes", type=int, default=200, help="cutouts to measure (0: skip)")
    args = ap.parse_args()
    print(f"{args.n_images} images, seed {args.seed}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for workers in (1, 2):
            out = Path(tmp) / f"workers{workers}"
            frame, rate, per_cpu = timed_generate(out, args.n_images, args.seed, workers)
            runs[workers] = out
            print(f"workers={workers}: {rate:7.1f} images/s wall clock ({per_cpu:6.1f} images per CPU-second)")
        print(f"identical output for workers=1 and workers=2: {same_output(runs[1], runs[2])}")

        elliptical = frame["Class1.1"] > args.threshold
        spiral = frame["Class1.2"] > args.threshold
        kept = int((elliptical | spiral).sum())
        print(f"threshold {args.threshold}: kept {kept}/{len(frame)} ({kept / len(frame):.1%}); "
              f"elliptical {elliptical.sum()} ({elliptical.sum() / max(kept, 1):.1%} of kept), "
              f"spiral {spiral.sum()} ({spiral.sum() / max(kept, 1):.1%} of kept)")
        star = frame["Class1.3"]
        print(f"Class1.3 (star/artifact): median {star.median():.3f}, 90th pct {star.quantile(0.9):.3f}, "
              f"max {star.max():.3f}")

        if args.n_shapes:
            ids = frame[kf.ID_COLUMN].head(args.n_shapes)
            shapes = [measure_shape(runs[2] / kf.IMAGES_DIR / f"{i}.jpg") for i in ids]
            values = np.array([s for s in shapes if s is not None])
            for name, column in zip(("semi-major axis [px]", "axis ratio b/a", "centre offset [px]"), values.T):
                p5, p50, p95 = np.percentile(column, [5, 50, 95])
                print(f"{name:22s} median {p50:6.2f}   5-95 %: {p5:6.2f} - {p95:6.2f}   (n={len(column)})")


if __name__ == "__main__":
    main()
