"""benchmarks/bench_crop.py: the adaptive crop's cost next to the decode, and its fallback count."""

from __future__ import annotations

import re
import sys

from PIL import Image

from tests.conftest import REPO
from tests.test_crop import galaxy

sys.path.insert(0, str(REPO / "benchmarks"))
import bench_crop  # noqa: E402


def test_prints_each_step_against_the_decode_and_counts_fallbacks(tmp_path, capsys):
    galaxy(15).save(tmp_path / "a.jpg")
    galaxy(25, seed=1).save(tmp_path / "b.png")
    Image.new("RGB", (424, 424), (20, 20, 20)).save(tmp_path / "c.jpg")
    assert bench_crop.main(["--images", str(tmp_path), "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"3 images of {tmp_path}")
    for step in ("decode JPEG", "fixed crop + resize", "Petrosian radius", "adaptive crop + resize"):
        assert re.search(rf"^\| {re.escape(step)} \| \d+\.\d\d \| \d+\.\d\d \|$", out, re.M), step
    assert "| decode JPEG |" in out and re.search(r"\| decode JPEG \| [\d.]+ \| 1\.00 \|", out)
    assert "no central source found (fixed crop used): 1 of 3 (33.3 %)" in out
