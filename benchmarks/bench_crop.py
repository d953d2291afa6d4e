"""What the adaptive crop costs next to decoding the JPEG, per image, and how often it falls back.

Usage: python benchmarks/bench_crop.py [--images DIR] [--n N] [--factor F] [--repeats R]

DIR (default: data/raw/images_training_rev1, the fetched data) is searched recursively for .jpg/.png
files. On each of the first N in name order, in turn and R times over: the JPEG decode, the fixed
centre crop + resize, the Petrosian radius alone, and the adaptive crop (radius + crop + resize).
Prints the best pass in milliseconds per image, each as a multiple of the decode, and the share of
images where no central source was found.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/machine.py
from machine import cpu_description  # noqa: E402
from cosmic import paths  # noqa: E402
from cosmic.data.imageops import Crop, crop_resize, open_rgb, petrosian_radius  # noqa: E402
from cosmic.cli import positive_int  # noqa: E402
from cosmic.commands.predict import IMAGE_EXTENSIONS  # noqa: E402
from cosmic.evaluation.report import markdown_table  # noqa: E402

SIZE = 64


def best_ms_per_image(steps: dict, files: list[Path], repeats: int) -> dict[str, float]:
    """Milliseconds per image of each step, the fastest of `repeats` passes.

    The steps run in turn on each image, so a machine that gets busier or quieter mid-run
    slows them alike and their ratios hold.

    Args:
        steps: name -> work(path, image), image being the file decoded beforehand.
        files: the image files.
        repeats: passes over all files.
    """
    images = [open_rgb(f) for f in files]
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(repeats):
        spent = dict.fromkeys(steps, 0.0)
        for path, img in zip(files, images):
            for name, work in steps.items():
                start = time.perf_counter()
                work(path, img)
                spent[name] += time.perf_counter() - start
        best = {name: min(best[name], spent[name]) for name in steps}
    return {name: 1000 * t / len(files) for name, t in best.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=Path, default=paths.RAW_DIR / "images_training_rev1")
    ap.add_argument("--n", type=positive_int, default=500, help="images timed (default 500)")
    ap.add_argument("--factor", type=float, default=6.0, help="adaptive crop side / Petrosian radius")
    ap.add_argument("--repeats", type=positive_int, default=3)
    args = ap.parse_args(argv)
    files = sorted(p for p in args.images.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[:args.n]
    if not files:
        ap.error(f"{args.images}: no .jpg/.png images found (run 'make repro' first, or see --images)")
    fixed, adaptive = Crop(0.5), Crop(0.5, args.factor)
    ms = best_ms_per_image({"decode JPEG": lambda path, img: open_rgb(path),
                            "fixed crop + resize": lambda path, img: crop_resize(img, fixed, SIZE),
                            "Petrosian radius": lambda path, img: petrosian_radius(img),
                            "adaptive crop + resize": lambda path, img: crop_resize(img, adaptive, SIZE)},
                           files, args.repeats)
    images = [open_rgb(f) for f in files]
    missed = sum(petrosian_radius(img) is None for img in images)
    print(f"{len(files)} images of {args.images}; CPU: {cpu_description()}; one process, best of {args.repeats}\n")
    print(markdown_table(["step", "ms per image", "× decode"],
                         [[name, f"{value:.2f}", f"{value / ms['decode JPEG']:.2f}"] for name, value in ms.items()],
                         "lrr"))
    print(f"\nno central source found (fixed crop used): {missed} of {len(files)} ({100 * missed / len(files):.1f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
