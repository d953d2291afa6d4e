"""benchmarks/bench_rendering.py: re-rendered real galaxies (scale, sky noise, stretch) and its table."""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pytest

from tests.conftest import REPO
from tests.test_score import N_PER_CLASS, _save_tiny_model, master_dir  # noqa: F401  (fixture)

sys.path.insert(0, str(REPO / "benchmarks"))
import bench_rendering as br  # noqa: E402


def _frame(seed: int = 0, size: int = 120) -> np.ndarray:
    """Sky (level 20, noise 4 per channel) with a bright round galaxy in the centre."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - size / 2
    galaxy = 200 * np.exp(-(xx ** 2 + yy ** 2) / (2 * 10.0 ** 2))
    x = 20 + rng.normal(0, 4, (size, size, 3)) + galaxy[..., None]
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _second_moment(pixels: np.ndarray) -> float:
    """Flux-weighted rms radius of the light clearly above the sky (so that its noise does not count)."""
    grey = pixels.mean(axis=2) - 20
    light = grey * (grey > 60)
    yy, xx = np.mgrid[:light.shape[0], :light.shape[1]] - light.shape[0] / 2
    return float(np.sqrt((light * (xx ** 2 + yy ** 2)).sum() / light.sum()))


def test_sky_is_read_from_the_border():
    median, sigma = br.sky(_frame())
    assert np.allclose(median, 20, atol=1) and np.allclose(sigma, 4, atol=0.6)


def test_scale_shrinks_the_galaxy_and_keeps_the_sky():
    frame, rng = _frame(), np.random.default_rng(1)
    small = br.render(frame, "scale", 0.6, rng)
    assert small.shape == frame.shape and small.dtype == np.uint8
    assert _second_moment(small) == pytest.approx(0.6 * _second_moment(frame), rel=0.15)
    median, sigma = br.sky(small)
    assert np.allclose(median, 20, atol=1.5) and np.allclose(sigma, 4, atol=1.0)


def test_noise_and_gamma():
    frame = _frame()
    noisy = br.render(frame, "noise", 2.0, np.random.default_rng(2))
    assert np.allclose(br.sky(noisy)[1], 8, rtol=0.2)  # twice the frame's own sky noise
    lifted = br.render(frame, "gamma", 0.7, np.random.default_rng(3))
    assert (lifted.astype(int) >= frame).all() and (lifted > frame).any()
    assert br.render(frame, "none", 1.0, np.random.default_rng(4)) is frame


@pytest.mark.parametrize("text", ["scale0.2", "scale1.5", "noise0.5", "gamma0", "blur2", "scale"])
def test_bad_perturbations_are_named(text):
    with pytest.raises(argparse.ArgumentTypeError, match=repr(text)):
        br.parse_perturbation(text)
    assert br.parse_perturbation("scale0.6") == ("scale", 0.6) and br.parse_perturbation("none") == ("none", 1.0)


def test_table_has_each_model_and_rendering(master_dir, tmp_path, capsys):  # noqa: F811
    models = tmp_path / "models"
    _save_tiny_model(models / "train_baseline.keras", 0)
    assert br.main(["--real", str(master_dir), "--models", str(models), "--perturb", "scale0.5", "noise1.5",
                    "--tta", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| train_baseline")]
    assert [r.split("|")[2].strip() for r in rows] == ["none", "scale 0.5", "noise 1.5"]
    cells = [[c.strip() for c in r.split("|")[1:-1]] for r in rows]
    assert cells[0][-2:] == ["", ""]  # no change against itself
    assert all(c[-2][0] in "+-" and c[-1][0] in "+-" for c in cells[1:])
