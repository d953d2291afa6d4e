"""What a cutout looks like, in numbers: sky, size, brightness, colour and shape of the central galaxy.

Used to compare the synthetic generator with real SDSS cutouts (benchmarks/bench_realsky_stats.py).
Every statistic is measured on the full frame resized to `GRID` pixels, so frames of any size
(424-px Kaggle originals, 299-px copies) are measured alike; values are in 0-255 display units.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage

from cosmic.data.imageops import open_rgb

GRID = 128
BORDER = 10  # px of the GRID frame used as sky
CORE = 3  # half-size of the central box of "peak" and "centre colour"
# What each statistic measures, in the order of the comparison table.
STATS = {
    "sky_level": "median sky brightness (frame border)",
    "sky_noise": "sky noise (1.48 MAD of the border)",
    "area": "galaxy area above sky + 1.5 noise (% of the frame)",
    "peak": "central brightness above sky",
    "colour_centre": "central colour R - B",
    "colour_mean": "mean colour R - B over the galaxy",
    "colour_ratio": "colour ln(B / R) of the galaxy's light",
    "axis_ratio": "axis ratio b/a (second moments)",
    "concentration": "share of the light within 3 px of the centre",
}


def frame_stats(image: np.ndarray) -> dict[str, float]:
    """Statistics of the galaxy nearest the centre of one RGB frame.

    The galaxy is the connected region of the lightly smoothed brightness above sky + 1.5
    noise that covers the most pixels of the central 8x8 box.

    Args:
        image: (GRID, GRID, 3) uint8 or float array, the whole frame.

    Returns:
        One value per key of `STATS`; galaxy statistics are NaN when nothing is detected at the centre.

    Raises:
        ValueError: if the array is not (GRID, GRID, 3).
    """
    rgb = np.asarray(image, dtype=float)
    if rgb.shape != (GRID, GRID, 3):
        raise ValueError(f"frame_stats needs a ({GRID}, {GRID}, 3) frame, got shape {rgb.shape}")
    lum = rgb.mean(axis=-1)
    border = np.concatenate([lum[:BORDER].ravel(), lum[-BORDER:].ravel(),
                             lum[BORDER:-BORDER, :BORDER].ravel(), lum[BORDER:-BORDER, -BORDER:].ravel()])
    sky = float(np.median(border))
    # A floor of half a display level keeps the threshold finite on a perfectly flat sky.
    noise = float(1.4826 * np.median(np.abs(border - sky))) + 0.5
    c = GRID // 2
    core = (slice(c - CORE, c + CORE), slice(c - CORE, c + CORE))
    out = {"sky_level": sky, "sky_noise": noise, "peak": float(lum[core].mean() - sky),
           "colour_centre": float((rgb[core][..., 0] - rgb[core][..., 2]).mean())}
    labels, _ = ndimage.label(ndimage.gaussian_filter(lum, 1.0) > sky + 1.5 * noise)
    central = labels[c - 4:c + 4, c - 4:c + 4]
    central = central[central > 0]
    if not central.size:
        return {**out, "area": 0.0, "colour_mean": np.nan, "colour_ratio": np.nan, "axis_ratio": np.nan,
                "concentration": np.nan}
    mask = labels == np.bincount(central).argmax()
    yy, xx = np.nonzero(mask)
    w = np.clip(lum[mask] - sky, 0.0, None) + 1e-6
    mx, my = np.average(xx, weights=w), np.average(yy, weights=w)
    cov = np.cov(np.stack([xx - mx, yy - my]), aweights=w, bias=True)
    minor, major = np.linalg.eigvalsh(cov)
    pixels = rgb[mask]
    # A ratio of summed light, so unlike R - B it does not grow with the galaxy's brightness.
    light = np.clip(pixels - sky, 0.0, None).sum(axis=0) + 1e-6
    return {**out, "area": 100.0 * mask.sum() / mask.size,
            "colour_mean": float((pixels[:, 0] - pixels[:, 2]).mean()),
            "colour_ratio": float(np.log(light[2] / light[0])),
            "axis_ratio": float(np.sqrt(max(minor, 0.0) / max(major, 1e-9))),
            "concentration": float(w[np.hypot(xx - mx, yy - my) < 3].sum() / w.sum())}


def load_frame(path: Path | str) -> np.ndarray:
    """Decode an image file and resize the whole frame to GRID x GRID (uint8 RGB)."""
    img = open_rgb(path, allow_convert=True).resize((GRID, GRID), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def table(paths: Iterable[tuple[str, Path]]) -> pd.DataFrame:
    """`frame_stats` of labelled image files, one row per image with its class in column "class"."""
    return pd.DataFrame([{"class": label, **frame_stats(load_frame(path))} for label, path in paths])


def compare(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Median (10th-90th percentile) of every statistic, per class and per data set.

    Args:
        tables: data-set name (e.g. "real", "synthetic") -> a `table` result.

    Returns:
        DataFrame indexed by statistic description, one "<class>, <data set>" column each,
        cells like "2.5 (1.0-4.0)".
    """
    columns = {}
    for cls in sorted(set().union(*(t["class"].unique() for t in tables.values()))):
        for name, t in tables.items():
            rows = t[t["class"] == cls]
            q = rows[list(STATS)].quantile([0.1, 0.5, 0.9])
            columns[f"{cls}, {name} (n={len(rows)})"] = [
                f"{q.at[0.5, k]:.2f} ({q.at[0.1, k]:.2f}-{q.at[0.9, k]:.2f})" for k in STATS]
    return pd.DataFrame(columns, index=list(STATS.values()))
