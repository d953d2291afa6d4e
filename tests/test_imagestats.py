"""Cutout statistics on frames whose sky, size, colour and shape are known."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cosmic.data import imagestats
from cosmic.data.imagestats import GRID, STATS, compare, frame_stats, load_frame, table


def _frame(q: float = 1.0, sigma: float = 8.0, colour: tuple[float, float, float] = (200, 150, 100),
           sky: float = 5.0, noise: float = 2.0, seed: int = 0) -> np.ndarray:
    """A Gaussian galaxy of axis ratio q (major axis along x) on a noisy sky."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:GRID, :GRID] - GRID / 2 + 0.5
    blob = np.exp(-0.5 * ((xx / sigma) ** 2 + (yy / (q * sigma)) ** 2))
    rgb = sky + blob[..., None] * np.asarray(colour) + rng.normal(0, noise, (GRID, GRID, 3))
    return np.clip(rgb, 0, 255)


def test_sky_level_and_noise_are_measured_on_the_border():
    s = frame_stats(_frame(sky=20.0, noise=3.0))
    assert s["sky_level"] == pytest.approx(20.0, abs=0.5)
    # Noise of the mean of three channels, plus the half-level floor.
    assert s["sky_noise"] == pytest.approx(3.0 / np.sqrt(3) + 0.5, rel=0.15)


def test_axis_ratio_and_area_follow_the_shape():
    round_, flat = frame_stats(_frame(q=1.0)), frame_stats(_frame(q=0.4))
    assert round_["axis_ratio"] == pytest.approx(1.0, abs=0.05)
    assert flat["axis_ratio"] == pytest.approx(0.4, abs=0.06)
    assert flat["area"] < round_["area"]
    assert frame_stats(_frame(sigma=12.0))["area"] > round_["area"]


def test_colour_sign_and_concentration():
    red, blue = frame_stats(_frame(colour=(200, 120, 60))), frame_stats(_frame(colour=(60, 120, 200)))
    assert red["colour_centre"] > 100 and red["colour_mean"] > 0
    assert blue["colour_centre"] < -100 and blue["colour_mean"] < 0
    assert frame_stats(_frame(sigma=3.0))["concentration"] > frame_stats(_frame(sigma=12.0))["concentration"]


def test_colour_ratio_is_the_light_ratio_whatever_the_brightness():
    bright, faint = frame_stats(_frame(colour=(200, 150, 100))), frame_stats(_frame(colour=(100, 75, 50)))
    assert bright["colour_ratio"] == pytest.approx(np.log(0.5), abs=0.03)
    assert faint["colour_ratio"] == pytest.approx(bright["colour_ratio"], abs=0.03)
    assert bright["colour_mean"] > 1.5 * faint["colour_mean"]


def test_empty_sky_has_no_galaxy():
    s = frame_stats(_frame(colour=(0, 0, 0)))
    assert s["area"] == 0.0 and np.isnan(s["axis_ratio"]) and np.isnan(s["colour_ratio"])


def test_wrong_shape_is_an_error():
    with pytest.raises(ValueError, match=r"\(128, 128, 3\).*\(64, 64, 3\)"):
        frame_stats(np.zeros((64, 64, 3)))


def test_table_and_compare_on_files_of_any_size(tmp_path):
    items = []
    for i, (cls, size) in enumerate([("elliptical", 424), ("elliptical", 299), ("spiral", 424), ("spiral", 299)]):
        path = tmp_path / f"{i}.jpg"
        Image.fromarray(_frame(seed=i).astype(np.uint8)).resize((size, size)).save(path, quality=90)
        items.append((cls, path))
    assert load_frame(items[1][1]).shape == (GRID, GRID, 3)
    t = table(items)
    assert list(t["class"]) == ["elliptical", "elliptical", "spiral", "spiral"]
    assert set(STATS) <= set(t.columns)
    out = compare({"real": t, "synthetic": t})
    assert list(out.index) == list(imagestats.STATS.values())
    assert list(out.columns) == ["elliptical, real (n=2)", "elliptical, synthetic (n=2)",
                                 "spiral, real (n=2)", "spiral, synthetic (n=2)"]
    # Each cell is "median (10th-90th percentile)" of its class's rows, to two decimals.
    cell = re.compile(r"(-?\d+\.\d\d) \((-?\d+\.\d\d)-(-?\d+\.\d\d)\)")
    for cls in ("elliptical", "spiral"):
        rows = t[t["class"] == cls]
        for key, description in STATS.items():
            text = out.at[description, f"{cls}, real (n=2)"]
            assert out.at[description, f"{cls}, synthetic (n=2)"] == text
            match = cell.fullmatch(text)
            assert match, f"{description}, {cls}: {text!r}"
            median, low, high = map(float, match.groups())
            assert low <= median <= high
            assert (median, low, high) == pytest.approx(
                (rows[key].median(), rows[key].quantile(0.1), rows[key].quantile(0.9)), abs=0.006)


def test_bench_realsky_stats_prints_the_table_and_draws_the_figure(tmp_path, capsys):
    import importlib.util
    import shutil

    from cosmic.data.synthetic import generate

    repo = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("bench_stats", repo / "benchmarks" / "bench_realsky_stats.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    frame = generate(tmp_path / "raw", 10, 3, workers=1)
    catalog = pd.DataFrame({"label": np.arange(10) % 2, "image_path": [
        str(tmp_path / "raw" / "images_training_rev1" / f"{i}.jpg") for i in frame["GalaxyID"]]})
    catalog.to_csv(tmp_path / "catalog.csv", index=False)
    sample = sorted((repo / "tests" / "data" / "kaggle-real-sample" / "images_training_rev1").glob("*.jpg"))
    for i, path in enumerate(sample[:6]):
        (tmp_path / "real" / ("elliptical", "spiral")[i % 2]).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, tmp_path / "real" / ("elliptical", "spiral")[i % 2] / path.name)
    figure, table_md = tmp_path / "fig.png", tmp_path / "stats.md"
    assert bench.main(["--real", str(tmp_path / "real"), "--catalog", str(tmp_path / "catalog.csv"), "--n", "4",
                       "--per-row", "3", "--figure", str(figure), "--output", str(table_md)]) == 0
    out = capsys.readouterr().out
    assert out == table_md.read_text()
    assert "elliptical, real (n=3)" in out and "spiral, synthetic (n=4)" in out
    assert all(description in out for description in STATS.values())
    rows = out.splitlines()[2:]
    assert rows[0].startswith("| statistic ") and len(rows) == 2 + len(STATS)
    assert len({len(row) for row in rows}) == 1, "the table's columns line up in a terminal"
    with Image.open(figure) as im:
        assert im.size[0] > 3 * 96 and im.size[1] > 4 * 96
