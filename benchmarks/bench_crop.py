"""What the adaptive crop costs next to decoding the JPEG, per image, and how often it falls back.

Usage: python benchmarks/bench_crop.py [--images DIR] [--n N] [--factor F] [--repeats R]

DIR (default: data/raw/images_training_rev1, the fetched data) is searched recursively for .jpg/.png
files; the first N in name order are decoded once into memory, then timed R times each: the decode
alone, the fixed centre crop + resize, and the adaptive crop (Petrosian radius + crop + resize). The
best of the R passes is reported, in milliseconds per image, with the adaptive crop's cost as a
multiple of the decode, and the share of images where no central source was found.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/machine.py
from machine import cpu_description  # noqa: E402
from cosmic import paths  # noqa: E402
from cosmic.imageops import Crop, crop_resize, open_rgb, petrosian_radius  # noqa: E402
from cosmic.predict import IMAGE_EXTENSIONS, positive_int  # noqa: E402

SIZE = 64


def best_ms_per_image(work, items: list, repeats: int) -> float:
    """Fastest of `repeats` passes of work(item) over items, in milliseconds per item."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for item in items:
            work(item)
        best = min(best, time.perf_counter() - start)
    return 1000 * best / len(items)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=Path, default=paths.RAW_DIR / "images_training_rev1")
    ap.add_argument("--n", type=positive_int, default=500, help="images timed (default 500)")
    ap.add_argument("--factor", type=float, default=4.5, help="adaptive crop side / Petrosian radius")
    ap.add_argument("--repeats", type=positive_int, default=3)
    args = ap.parse_args(argv)
    files = sorted(p for p in args.images.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[:args.n]
    if not files:
        ap.error(f"{args.images}: no .jpg/.png images found (run 'make repro' first, or see --images)")
    images = [open_rgb(f) for f in files]
    fixed, adaptive = Crop(0.5), Crop(0.5, args.factor)
    decode = best_ms_per_image(open_rgb, files, args.repeats)
    rows = [("decode JPEG", decode),
            ("fixed crop + resize", best_ms_per_image(lambda img: crop_resize(img, fixed, SIZE), images, args.repeats)),
            ("Petrosian radius", best_ms_per_image(petrosian_radius, images, args.repeats)),
            ("adaptive crop + resize", best_ms_per_image(lambda img: crop_resize(img, adaptive, SIZE), images,
                                                         args.repeats))]
    missed = sum(petrosian_radius(img) is None for img in images)
    print(f"{len(files)} images of {args.images}; CPU: {cpu_description()}; one process, best of {args.repeats}\n")
    print("| step | ms per image | × decode |\n|---|---:|---:|")
    for name, ms in rows:
        print(f"| {name} | {ms:.2f} | {ms / decode:.2f} |")
    print(f"\nno central source found (fixed crop used): {missed} of {len(files)} ({100 * missed / len(files):.1f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
