"""Training throughput (images/s) per model, with and without augmentation, on this machine.

Usage: python benchmarks/bench_training.py [--image-size 64] [--n 1024] [--batch-size 64] [--epochs 3]

Times full epochs of model.fit (median of --epochs, after one warm-up epoch) on random uint8
images, through the same tf.data pipeline and models the stages use.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cosmic import params
from cosmic.learning.augment import AlbumentationsBatch, basic_augment
from cosmic.learning.datasets import make_dataset
from cosmic.learning.models import build_baseline, build_transfer, resolve_scaling
from cosmic.data.packing import Arrays
from cosmic.learning.training import compile_model, set_determinism


def throughput(model, arrays: Arrays, batch_size: int, epochs: int, augment) -> float:
    """Median images/s over `epochs` timed epochs, after a warm-up epoch (tracing, caches)."""
    ds = make_dataset(arrays, batch_size, shuffle=True, seed=0, augment=augment)
    model.fit(ds, epochs=1, verbose=0, shuffle=False)
    rates = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.fit(ds, epochs=1, verbose=0, shuffle=False)
        rates.append(len(arrays.labels) / (time.perf_counter() - start))
    return float(np.median(rates))


def pipeline_only(arrays: Arrays, batch_size: int, augment) -> float:
    ds = make_dataset(arrays, batch_size, shuffle=True, seed=0, augment=augment)
    for _ in ds:
        pass
    start = time.perf_counter()
    for _ in ds:
        pass
    return len(arrays.labels) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    raw = params.load()
    set_determinism(0, False)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "images.npy"
        images = np.lib.format.open_memmap(path, "w+", np.uint8, (args.n, args.image_size, args.image_size, 3))
        images[:] = rng.integers(0, 256, images.shape, dtype=np.uint8)
        images.flush()
        arrays = Arrays(np.load(path, mmap_mode="r"), rng.integers(0, 2, args.n).astype(np.uint8),
                        np.arange(args.n))
        alb = AlbumentationsBatch(params.albumentations(raw)).tf_apply
        tb = params.train_baseline(raw)
        tt = params.train_transfer(raw)
        tune = params.tune(raw)
        rows = []
        for aug_name, aug in (("none", None), ("basic", basic_augment), ("albumentations", alb)):
            rows.append({"model": "input pipeline only", "augment": aug_name,
                         "images_per_s": pipeline_only(arrays, args.batch_size, aug)})
        builders = {
            "baseline": lambda: build_baseline(args.image_size, tb.cnn.filters, tb.cnn.kernel_size,
                                               tb.cnn.dense_units, tb.cnn.dropout),
            # The optimized CNN is this CNN with the tuned sizes and tune.input_scaling (galaxy by default).
            f"baseline, {tune.input_scaling} scaling": lambda: build_baseline(
                args.image_size, tb.cnn.filters, tb.cnn.kernel_size, tb.cnn.dense_units, tb.cnn.dropout,
                scaling=tune.input_scaling),
            "transfer (head, pretrained)": lambda: build_transfer(args.image_size, tt.input_size, tt.alpha,
                                                                  tt.dropout)[0],
            # From random weights, input_scaling auto scales each image by its galaxy; ImageNet's scaling beside it.
            "transfer (scratch)": lambda: build_transfer(
                args.image_size, tt.input_size, tt.alpha, tt.dropout, freeze_base=False,
                scaling=resolve_scaling(tt.input_scaling, pretrained=False))[0],
            "transfer (scratch, imagenet scaling)": lambda: build_transfer(args.image_size, tt.input_size, tt.alpha,
                                                                           tt.dropout, freeze_base=False)[0],
        }
        for name, build in builders.items():
            for aug_name, aug in (("none", None), ("basic", basic_augment), ("albumentations", alb)):
                model = build()
                compile_model(model, 1e-3)
                rows.append({"model": name, "augment": aug_name,
                             "images_per_s": throughput(model, arrays, args.batch_size, args.epochs, aug)})
    table = pd.DataFrame(rows)
    table["images_per_s"] = table["images_per_s"].round(1)
    for name, group in table.groupby("model", sort=False):
        none = group.loc[group["augment"] == "none", "images_per_s"].iloc[0]
        table.loc[group.index, "vs_none"] = (group["images_per_s"] / none).round(3)
    print(f"image_size={args.image_size} n={args.n} batch={args.batch_size} epochs={args.epochs}")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
