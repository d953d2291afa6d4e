"""SIGINT while a data stage writes its outputs: nothing half-written, and a re-run equals a clean run."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, tiny_params
from tests.test_catalog import _png_header_only

pytestmark = pytest.mark.slow

# Runs a stage with a real SIGINT delivered to itself at its k-th os.replace, i.e. while it commits
# an output: the moment a half-written file or a mixed old/new output set could appear.
# Ctrl-C in a terminal raises KeyboardInterrupt; the child restores that handler because a runner
# started in the background (nohup, `cmd &`) passes SIGINT on as ignored.
_INTERRUPT_AT_REPLACE = """
import os, runpy, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
stage, k = sys.argv[1], int(sys.argv[2])
real, calls = os.replace, [0]
def replace(src, dst):
    calls[0] += 1
    if calls[0] == k:
        os.kill(os.getpid(), signal.SIGINT)
    real(src, dst)
os.replace = replace
runpy.run_module(f"stages.{stage}", run_name="__main__")
"""

# What each stage owns; plots are compared after the re-run only (matplotlib writes them directly).
OUTPUTS = {"filter": ("data/filtered", "metrics/data.json"), "preprocess": ("data/processed",)}
PLOTS = {"filter": ("plots/data",), "preprocess": ()}


def _run(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, *args], cwd=root, env=env, capture_output=True, text=True,
                          timeout=600)


def _files(root: Path, rels) -> dict[str, str]:
    out = {}
    for rel in rels:
        path = root / rel
        for f in sorted([path] if path.is_file() else path.rglob("*") if path.exists() else []):
            if f.is_file():
                out[str(f.relative_to(root))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """fetch, filter, split and preprocess run uninterrupted on tiny synthetic data."""
    root = tmp_path_factory.mktemp("interrupt")
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    for stage in ("fetch", "filter", "split", "preprocess"):
        result = _run(root, "-m", f"stages.{stage}")
        assert result.returncode == 0, result.stderr
    rels = [r for stage in OUTPUTS for r in OUTPUTS[stage] + PLOTS[stage]]
    return root, _files(root, rels)


@pytest.mark.parametrize("stage, k", [("filter", 1), ("filter", 3), ("preprocess", 1), ("preprocess", 5),
                                      ("preprocess", 10)])
def test_sigint_while_writing_then_rerun_equals_clean_run(reference, tmp_path, stage, k):
    ref_root, ref = reference
    root = tmp_path / "ws"
    shutil.copytree(ref_root, root, symlinks=True)
    for rel in OUTPUTS[stage] + PLOTS[stage]:  # as `dvc repro` would: the stage's outputs are gone
        shutil.rmtree(root / rel, ignore_errors=True) if (root / rel).is_dir() else (root / rel).unlink()

    interrupted = _run(root, "-c", _INTERRUPT_AT_REPLACE, stage, str(k))
    assert interrupted.returncode == 1, interrupted.stderr
    assert f"{stage}: interrupted" in interrupted.stderr and "Traceback" not in interrupted.stderr
    partial = _files(root, OUTPUTS[stage])
    assert partial != _files(ref_root, OUTPUTS[stage])  # really stopped before the end
    for name, digest in partial.items():  # every file present is complete: no half file, no .partial
        assert digest == ref[name], name

    rerun = _run(root, "-m", f"stages.{stage}")
    assert rerun.returncode == 0, rerun.stderr
    assert _files(root, OUTPUTS[stage] + PLOTS[stage]) == _files(ref_root, OUTPUTS[stage] + PLOTS[stage])


def test_decompression_bomb_stops_preprocess_with_a_message(reference, tmp_path):
    ref_root, _ = reference
    root = tmp_path / "ws"
    shutil.copytree(ref_root, root, symlinks=True)
    first = (root / "data/split/train.csv").read_text().splitlines()[1]
    image = root / next(cell for cell in first.split(",") if cell.endswith(".jpg"))
    image.unlink()  # may be a hard link shared with the reference copy
    image.write_bytes(_png_header_only(20000, 20000))
    result = _run(root, "-m", "stages.preprocess")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"preprocess: {image.relative_to(root)}: too many pixels" in result.stderr
    assert "decompression bomb" in result.stderr
    assert not list((root / "data/processed").rglob("*.partial"))
