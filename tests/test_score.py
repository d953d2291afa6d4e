"""Tests for cosmic.commands.score and benchmarks/bench_realsky.py on a tiny saved model and generated class folders."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml
from PIL import Image

from cosmic.evaluation import metrics as M
from cosmic.evaluation.evaluate import metric_block
from cosmic.data.imageops import Crop, crop_fraction
from cosmic.learning.modelio import preprocessing_record, save_model
from cosmic.learning.models import build_baseline
from cosmic.commands.predict import load_classifier, predict_files, predict_files_tta
from cosmic.commands.score import main, score_folder

ROOT = Path(__file__).resolve().parents[1]
SIZE = 16
CROP = 212
NAMES = ("elliptical", "spiral")
N_PER_CLASS = 4


def _save_tiny_model(path: Path, seed: int) -> Path:
    """A tiny baseline model saved with its preprocessing record, as the training stages save theirs."""
    keras.utils.set_random_seed(seed)
    save_model(build_baseline(SIZE, filters=(4,), dense_units=4), path,
               preprocessing_record(Crop(crop_fraction(CROP)), SIZE, NAMES))
    return path


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    return _save_tiny_model(tmp_path_factory.mktemp("model") / "m.keras", seed=0)


def _write_image(path: Path, seed: int, size: int = 96) -> None:
    """Noise with a bright centre whose brightness and colour vary with the seed."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 120, (size, size, 3), dtype=np.uint8)
    pixels[size // 3:2 * size // 3, size // 3:2 * size // 3] += rng.integers(0, 130, 3, dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=95)


@pytest.fixture(scope="module")
def master_dir(tmp_path_factory) -> Path:
    """DIR/elliptical and DIR/spiral with a few JPEGs each (and a non-image file to skip)."""
    root = tmp_path_factory.mktemp("scored")
    for c, name in enumerate(NAMES):
        (root / name).mkdir()
        for i in range(N_PER_CLASS):
            _write_image(root / name / f"{100 * (c + 1) + i}.jpg", seed=10 * c + i)
    (root / "spiral" / "notes.txt").write_text("not an image; skipped like cosmic.commands.predict skips it")
    (root / "labels.csv").write_text("files beside the class folders are ignored\n")
    return root


@pytest.fixture
def data_dir(master_dir, tmp_path) -> Path:
    """A private copy of the class folders that a test may break."""
    return Path(shutil.copytree(master_dir, tmp_path / "data"))


def _run(argv: list[str]) -> int:
    """main()'s exit status, including argparse's SystemExit."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def _reference(model_path: Path, data_dir: Path, tta: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Labels and cosmic.commands.predict's p(spiral) of the readable images of each class folder, in folder order."""
    model, crop, size, names = load_classifier(model_path)
    y, p = [], []
    for label, name in enumerate(names):
        files = sorted((f for f in (data_dir / name).iterdir() if f.suffix == ".jpg"), key=str)
        for row in predict_files(model, files, crop, size, names, tta=tta):
            if not row["error"]:
                y.append(label)
                p.append(row["p_spiral"])
    return np.array(y), np.array(p)


DEFAULTS = M.MetricSettings()


def test_default_metric_settings_are_the_default_runs_evaluate_settings():
    """cosmic-score's intervals are comparable to the evaluate stage's only while these agree."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    fields = [f.name for f in dataclasses.fields(M.MetricSettings)]
    expected = {name: raw["base"]["seed"] if name == "seed" else raw["evaluate"][name] for name in fields}
    assert dataclasses.asdict(DEFAULTS) == expected, "update cosmic.evaluation.metrics.MetricSettings to match params.yaml"


def _expected_block(y: np.ndarray, p: np.ndarray) -> dict:
    """classification_metrics plus the bootstrap interval, computed directly from cosmic.evaluation.metrics."""
    expected = M.classification_metrics(y, p, NAMES, n_bins=DEFAULTS.calibration_bins)
    low, high = M.bootstrap_ci(y, (p > 0.5).astype(int), n_resamples=DEFAULTS.bootstrap_resamples,
                               level=DEFAULTS.ci_level, seed=DEFAULTS.seed)
    return {**expected, "accuracy_ci": {"low": low, "high": high, "level": DEFAULTS.ci_level}}


def test_metrics_equal_classification_metrics_on_predict_output(model_path, data_dir):
    result = score_folder(model_path, data_dir)
    y, p = _reference(model_path, data_dir)
    assert len(y) == 2 * N_PER_CLASS and set(y) == {0, 1}
    assert result["metrics"] == _expected_block(y, p)
    assert result["metrics"] == metric_block(y, p, NAMES, DEFAULTS)
    assert result["n_per_class"] == {"elliptical": N_PER_CLASS, "spiral": N_PER_CLASS}
    assert result["n_scored"] == 2 * N_PER_CLASS and result["n_failed"] == 0 and result["failed"] == []
    assert "tta" not in result["metrics"]
    # The bootstrap settings are recorded, and changing them changes only the interval.
    other = score_folder(model_path, data_dir, settings=dataclasses.replace(DEFAULTS, bootstrap_resamples=50, seed=1))
    assert other["settings"]["bootstrap_resamples"] == 50 and other["settings"]["seed"] == 1
    assert {k: v for k, v in other["metrics"].items() if k != "accuracy_ci"} == \
        {k: v for k, v in result["metrics"].items() if k != "accuracy_ci"}


def test_tta8_adds_a_tta_block_from_the_same_decode(model_path, data_dir, tmp_path, capsys):
    out = tmp_path / "score.json"
    assert _run(["--model", str(model_path), "--tta", "8", "--batch-size", "3", "--output", str(out),
                 str(data_dir)]) == 0
    result = json.loads(out.read_text())
    plain = score_folder(model_path, data_dir, tta=1)
    tta = result["metrics"].pop("tta")
    assert result["metrics"] == plain["metrics"]  # the top level stays the plain predictions
    y, p8 = _reference(model_path, data_dir, tta=8)
    assert tta == {"views": 8, **_expected_block(y, p8)}
    assert tta["roc_auc"] != plain["metrics"]["roc_auc"] or tta["log_loss"] != plain["metrics"]["log_loss"]
    summary = capsys.readouterr().out
    assert "| accuracy % [95% CI] |" in summary and "| TTA x8 |" in summary and "| plain  |" in summary


def test_predict_files_tta_rows_equal_predict_files_rows(model_path, data_dir):
    model, crop, size, names = load_classifier(model_path)
    files = sorted(data_dir.glob("*/*.jpg"), key=str)
    (data_dir / "spiral" / "bad.jpg").write_text("not a jpeg")
    files.append(data_dir / "spiral" / "bad.jpg")
    both = list(predict_files_tta(model, files, crop, size, names, (1, 8), batch_size=3))
    for i, tta in enumerate((1, 8)):
        alone = list(predict_files(model, files, crop, size, names, tta=tta, batch_size=3))
        assert [rows[i] for rows in both] == alone
    assert both[-1][0]["error"] == both[-1][1]["error"] != ""
    with pytest.raises(ValueError, match="tta is 4"):
        next(predict_files_tta(model, files, crop, size, names, (1, 4)))


def test_output_json_and_summary(model_path, data_dir, tmp_path, capsys):
    out = tmp_path / "sub" / "score.json"
    assert _run(["--model", str(model_path), "--output", str(out), str(data_dir)]) == 0
    result = json.loads(out.read_text())
    assert result["model"] == str(model_path) and result["data_dir"] == str(data_dir)
    assert result["class_names"] == list(NAMES)
    assert result["n_per_class"] == {"elliptical": N_PER_CLASS, "spiral": N_PER_CLASS}
    assert result["n_failed"] == 0 and result["failed"] == [] and result["ignored_subfolders"] == []
    assert result["settings"] == {"tta": 1, "batch_size": 64, **dataclasses.asdict(DEFAULTS)}
    m = result["metrics"]
    assert m["n"] == 2 * N_PER_CLASS and {"accuracy", "balanced_accuracy", "roc_auc", "ece",
                                         "confusion_matrix", "accuracy_ci"} <= set(m)
    assert not list(out.parent.glob("*.partial"))
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert f"(elliptical {N_PER_CLASS}, spiral {N_PER_CLASS}; 0 unreadable)" in lines[0]
    assert "| recall elliptical % |" in lines[1] and "| recall spiral % |" in lines[1] and "TN FP FN TP" in lines[1]
    assert len({len(line) for line in lines[1:4]}) == 1, "the table's columns line up in a terminal"
    cm = m["confusion_matrix"]
    assert lines[3].startswith("| plain |") and lines[3].endswith(f" {cm['tn']} {cm['fp']} {cm['fn']} {cm['tp']} | "
                                                                  f"{m['ece']:.3f} |")
    assert "TTA" not in captured.out and str(out) in captured.err


def test_bad_files_are_reported_counted_and_left_out(model_path, data_dir, tmp_path, capsys):
    truncated = data_dir / "spiral" / "999.jpg"
    truncated.write_bytes((data_dir / "spiral" / "200.jpg").read_bytes()[:300])
    text = data_dir / "elliptical" / "notes.jpg"
    text.write_text("a text file named .jpg")
    out = tmp_path / "score.json"
    assert _run(["--model", str(model_path), "--output", str(out), str(data_dir)]) == 1
    result = json.loads(out.read_text())
    assert result["n_per_class"] == {"elliptical": N_PER_CLASS + 1, "spiral": N_PER_CLASS + 1}
    assert result["n_failed"] == 2 and result["n_scored"] == 2 * N_PER_CLASS
    failed = {f["path"]: f["error"] for f in result["failed"]}
    assert set(failed) == {str(text), str(truncated)}
    assert all(path in error for path, error in failed.items())
    y, p = _reference(model_path, data_dir)  # the readable images only
    assert result["metrics"] == _expected_block(y, p)
    err = capsys.readouterr().err
    assert f"error: {truncated}:" in err and f"error: {text}:" in err and "Traceback" not in err


def test_layout_errors_exit_2_naming_the_path(model_path, data_dir, tmp_path, capsys):
    shutil.rmtree(data_dir / "spiral")
    assert _run(["--model", str(model_path), str(data_dir)]) == 2
    err = capsys.readouterr().err
    assert f"{data_dir / 'spiral'}: class folder not found" in err
    assert f"expected {data_dir / 'elliptical'}/ and {data_dir / 'spiral'}/" in err and "Traceback" not in err

    (data_dir / "spiral").mkdir()
    (data_dir / "spiral" / "readme.txt").write_text("no images here")
    assert _run(["--model", str(model_path), str(data_dir)]) == 2
    assert f"{data_dir / 'spiral'}: class folder holds no .jpg/.jpeg/.png image" in capsys.readouterr().err

    missing = tmp_path / "nowhere"
    assert _run(["--model", str(model_path), str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"{missing}: data folder not found" in err and "one folder per class" in err

    assert _run(["--model", str(tmp_path / "none.keras"), str(data_dir)]) == 2
    assert "model file not found" in capsys.readouterr().err
    assert _run(["--model", str(model_path), "--output", str(tmp_path / "s.csv"), str(data_dir)]) == 2
    assert "must end in .json" in capsys.readouterr().err
    assert _run(["--model", str(model_path), "--tta", "4", str(data_dir)]) == 2


def test_unknown_subfolders_are_logged_and_ignored(model_path, data_dir, caplog):
    (data_dir / "lenticular").mkdir()
    _write_image(data_dir / "lenticular" / "1.jpg", seed=99)
    (data_dir / ".cache").mkdir()
    with caplog.at_level("WARNING", logger="cosmic.commands.score"):
        result = score_folder(model_path, data_dir)
    assert result["ignored_subfolders"] == [str(data_dir / "lenticular")]
    assert result["n_scored"] == 2 * N_PER_CLASS
    assert [r.getMessage() for r in caplog.records] == \
        [f"{data_dir / 'lenticular'}: not a class of the model (elliptical, spiral); ignored"]


def _load_bench():
    """benchmarks/bench_realsky.py as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_realsky", ROOT / "benchmarks" / "bench_realsky.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_realsky_prints_one_row_per_model(master_dir, tmp_path, capsys):
    models = tmp_path / "models"
    for seed, stage in enumerate(("train_optimized", "train_baseline")):
        _save_tiny_model(models / f"{stage}.keras", seed)
    (models / "notes.txt").write_text("not a model")
    bench = _load_bench()
    out = tmp_path / "bench.json"
    assert bench.main(["--real", str(master_dir), "--models", str(models), "--output", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"Trained on synthetic data, tested on real SDSS galaxies ({master_dir.name}, "
                               f"{2 * N_PER_CLASS} images); CPU: ")
    rows = [line for line in lines[2:] if line.startswith("|")]
    assert rows[0].startswith("| model | n | accuracy % (95% CI) |") and "TTA×8 spiral recall" in rows[0]
    body = rows[2:]
    assert [r.split("|")[1].strip() for r in body] == ["train_baseline", "train_optimized"]  # stage order
    saved = json.loads(out.read_text())["results"]
    for row in body:
        cells = [c.strip() for c in row.strip("|").split("|")]
        m = saved[cells[0]]["metrics"]
        assert len(cells) == len(bench.COLUMNS) and cells[1] == str(2 * N_PER_CLASS)
        assert cells[2].startswith(f"{100 * m['accuracy']:.1f} (")
        assert cells[7] == f"{100 * m['tta']['accuracy']:.1f}"
        assert cells[8] == f"{100 * m['tta']['balanced_accuracy']:.1f}"
        assert cells[11] == f"{100 * m['tta']['elliptical']['recall']:.1f}"

    assert bench.main(["--real", str(master_dir), "--models", str(models), "--tta", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("| – | – | – | – | – |")

    with pytest.raises(SystemExit) as exc:
        bench.main(["--real", str(tmp_path / "no-sky"), "--models", str(models)])
    assert exc.value.code == 2 and f"{tmp_path / 'no-sky'}: real-galaxy folder not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        bench.main(["--real", str(master_dir), "--models", str(tmp_path)])
    assert exc.value.code == 2 and f"{tmp_path}: no *.keras models found" in capsys.readouterr().err
