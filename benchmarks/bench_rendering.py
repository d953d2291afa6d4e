"""How each saved model's figures on real galaxies move when the same galaxies are rendered differently.

Usage: python benchmarks/bench_rendering.py --real DIR [--models models/] [--perturb none scale0.6 noise1.5 ...]
                                            [--tta 1 8] [--output FILE.md]

DIR holds real galaxies one folder per class (DIR/elliptical, DIR/spiral). Every image is re-rendered
once per perturbation into a temporary folder, and each model is scored there with
`cosmic.commands.score.score_folder`, exactly as `cosmic-score` would:

- `scaleS`: the galaxy S times its size in the frame (S < 1 zooms out, as a survey with larger pixels
  or a wider cutout would show it), frame size kept: the shrunk frame gets back the sky noise that
  shrinking averaged away, and the new border is its own outer sky mirrored (S >= 0.34).
- `noiseF`: sky noise F times the frame's own (a shallower survey).
- `gammaG`: another display stretch: every pixel v becomes 255 (v / 255)^G (G < 1 lifts faint light).

The table gives, per model and perturbation, ROC AUC, balanced accuracy and both class recalls, and
their change against the unperturbed images.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/machine.py, bench_realsky.py
from bench_realsky import model_files  # noqa: E402
from machine import cpu_description  # noqa: E402
from cosmic import paths  # noqa: E402
from cosmic.data.imageops import open_rgb  # noqa: E402
from cosmic.cli import positive_int  # noqa: E402
from cosmic.commands.predict import IMAGE_EXTENSIONS, write_atomic  # noqa: E402
from cosmic.evaluation.report import decimal, markdown_table, percent  # noqa: E402
from cosmic.commands.score import score_folder  # noqa: E402

DEFAULT_PERTURBATIONS = ("none", "scale0.8", "scale0.6", "scale0.5", "noise1.5", "gamma0.7")
COLUMNS = ("model", "rendering", "ROC AUC", "bal. acc. %", "spiral recall %", "elliptical recall %", "TTA×8 AUC",
           "TTA×8 bal. acc. %", "Δ AUC", "Δ bal. acc. (points)")
_PATTERN = re.compile(r"none|(scale|noise|gamma)([0-9]*\.?[0-9]+)")
# Outer band of the frame taken as sky, as a fraction of its side.
BORDER = 0.08


def parse_perturbation(text: str) -> tuple[str, float]:
    """('none', 1.0), ('scale', S), ('noise', F) or ('gamma', G), from the command-line spelling.

    Raises:
        argparse.ArgumentTypeError: naming the bad value and the accepted forms.
    """
    m = _PATTERN.fullmatch(text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r}: expected none, scaleS (0.34 <= S <= 1), noiseF (F >= 1) or gammaG")
    if text == "none":
        return "none", 1.0
    kind, value = m.group(1), float(m.group(2))
    if (kind == "scale" and not 0.34 <= value <= 1) or (kind == "noise" and value < 1) or (kind == "gamma" and value <= 0):
        raise argparse.ArgumentTypeError(f"{text!r}: expected 0.34 <= S <= 1 for scale, F >= 1 for noise, G > 0 for gamma")
    return kind, value


def sky(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel median and robust standard deviation (1.4826 MAD) of the frame's outer band."""
    h, w, _ = pixels.shape
    b = max(1, int(round(BORDER * min(h, w))))
    band = np.concatenate([pixels[:b].reshape(-1, 3), pixels[-b:].reshape(-1, 3),
                           pixels[b:-b, :b].reshape(-1, 3), pixels[b:-b, -b:].reshape(-1, 3)]).astype(np.float64)
    median = np.median(band, axis=0)
    return median, np.maximum(1.4826 * np.median(np.abs(band - median), axis=0), 0.5)


def render(pixels: np.ndarray, kind: str, value: float, rng: np.random.Generator) -> np.ndarray:
    """One image (H, W, 3 uint8) re-rendered by one perturbation."""
    if kind == "none":
        return pixels
    x = pixels.astype(np.float64)
    median, sigma = sky(pixels)
    if kind == "scale":
        h, w, _ = pixels.shape
        sh, sw = max(1, round(h * value)), max(1, round(w * value))
        small = np.asarray(Image.fromarray(pixels).resize((sw, sh), Image.Resampling.LANCZOS), dtype=np.float64)
        # Shrinking averages about 1/S^2 pixels into one, so it lowers the noise by about S.
        small += rng.normal(0.0, 1.0, small.shape) * sigma * np.sqrt(max(0.0, 1 - value * value))
        top, left = (h - sh) // 2, (w - sw) // 2
        # The border is the shrunk frame's own outer sky, mirrored: real noise, stars and gradients.
        x = np.pad(small, ((top, h - sh - top), (left, w - sw - left), (0, 0)), mode="symmetric")
    elif kind == "noise":
        x += rng.normal(0.0, 1.0, x.shape) * sigma * np.sqrt(value * value - 1)
    else:
        x = 255.0 * (np.clip(x, 0, 255) / 255.0) ** value
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def render_folder(real: Path, out: Path, kind: str, value: float, seed: int = 0) -> None:
    """Re-render every image of real/<class>/ into out/<class>/ (JPEG, quality 95), seeded per image."""
    folders = sorted(p for p in real.iterdir() if p.is_dir() and not p.name.startswith("."))
    for c, folder in enumerate(folders):
        (out / folder.name).mkdir(parents=True)
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        for i, path in enumerate(files):
            rng = np.random.default_rng([seed, c, i])
            pixels = np.asarray(open_rgb(path), dtype=np.uint8)
            Image.fromarray(render(pixels, kind, value, rng)).save(out / folder.name / f"{path.stem}.jpg", quality=95)


def _row(model: str, name: str, m: dict, ref: dict | None, names: tuple[str, str]) -> list[str]:
    """The cells (in `COLUMNS` order) of one model on one rendering; the deltas are against `ref`."""
    ell, spi = names
    cells = [model, name, decimal(m["roc_auc"]), percent(m["balanced_accuracy"]), percent(m[spi]["recall"]),
             percent(m[ell]["recall"])]
    tta = m.get("tta")
    cells += [decimal(tta["roc_auc"]), percent(tta["balanced_accuracy"])] if tta else ["–", "–"]
    if ref is None:
        cells += ["", ""]
    else:
        cells += [f"{m['roc_auc'] - ref['roc_auc']:+.3f}", f"{100 * (m['balanced_accuracy'] - ref['balanced_accuracy']):+.1f}"]
    return cells


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", type=Path, required=True, help="folder with elliptical/ and spiral/ image subfolders")
    ap.add_argument("--models", type=Path, default=paths.MODELS_DIR, help="folder of *.keras models (default: models)")
    ap.add_argument("--perturb", type=parse_perturbation, nargs="+",
                    default=[parse_perturbation(p) for p in DEFAULT_PERTURBATIONS],
                    help=f"renderings to score (default: {' '.join(DEFAULT_PERTURBATIONS)})")
    ap.add_argument("--tta", type=int, choices=(1, 8), default=8, help="8 (default): also the TTA×8 figures")
    ap.add_argument("--batch-size", type=positive_int, default=64)
    ap.add_argument("--output", type=Path, default=None, help="also write the table to FILE.md")
    args = ap.parse_args(argv)
    if not args.real.is_dir():
        ap.error(f"{args.real}: real-galaxy folder not found")
    models = model_files(args.models) if args.models.is_dir() else []
    if not models:
        ap.error(f"{args.models}: no *.keras models found (run 'make repro' or 'dvc pull', or see --models)")
    perturbations = list(dict.fromkeys([("none", 1.0), *args.perturb]))
    results: dict[tuple[str, str], dict] = {}
    names = None
    with tempfile.TemporaryDirectory() as tmp:
        for kind, value in perturbations:
            label = "none" if kind == "none" else f"{kind} {value:g}"
            folder = args.real if kind == "none" else Path(tmp) / label.replace(" ", "")
            if kind != "none":
                render_folder(args.real, folder, kind, value)
            for path in models:
                r = score_folder(path, folder, tta=args.tta, batch_size=args.batch_size)
                names = tuple(r["class_names"])
                results[(path.stem, label)] = r["metrics"]
                print(f"scored {path.stem} on {label}", file=sys.stderr, flush=True)
    n = sum(1 for p in args.real.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    rows = []
    for path in models:
        ref = results[(path.stem, "none")]
        for (model, label), m in results.items():
            if model == path.stem:
                rows.append(_row(model, label, m, None if label == "none" else ref, names))
    text = (f"Real galaxies re-rendered ({n} images of {args.real.name}); CPU: {cpu_description()}\n\n"
            f"{markdown_table(COLUMNS, rows, align='ll' + 'r' * (len(COLUMNS) - 2))}\n")
    sys.stdout.write(text)
    if args.output is not None:
        write_atomic(args.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
