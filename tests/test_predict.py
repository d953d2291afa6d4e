"""Tests for the cosmic.commands.predict command line on a tiny saved model and generated images."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from cosmic.data import imageops

from cosmic.evaluation import tta
from cosmic.learning.modelio import load_model, preprocessing_record, save_model
from cosmic.learning.models import build_baseline
from cosmic.commands.predict import COLUMNS, expand_inputs, galaxy_id, main

ROOT = Path(__file__).resolve().parents[1]
SIZE = 16
CROP = 212  # half of the 424-px frame, so a wrong crop changes the prediction


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """One tiny baseline model, saved with its preprocessing record, and the loaded copy."""
    keras.utils.set_random_seed(0)
    model = build_baseline(SIZE, filters=(4,), dense_units=4)
    path = tmp_path_factory.mktemp("model") / "m.keras"
    save_model(model, path, preprocessing_record(imageops.Crop(imageops.crop_fraction(CROP)), SIZE, ("elliptical", "spiral")))
    loaded, record = load_model(path)
    return path, loaded, record


def _random_image(size: tuple[int, int], seed: int, mode: str = "RGB") -> Image.Image:
    """Noise with a bright centre, different in the crop and the border."""
    rng = np.random.default_rng(seed)
    w, h = size
    pixels = rng.integers(0, 160, (h, w, 3), dtype=np.uint8)
    pixels[h // 3:2 * h // 3, w // 3:2 * w // 3] += 90
    return Image.fromarray(pixels).convert(mode)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A folder of Kaggle-style JPEGs, an RGBA PNG, a non-424 JPEG and a non-image file."""
    folder = tmp_path_factory.mktemp("images")
    for seed, gid in enumerate((100008, 100023, 100053)):
        _random_image((424, 424), seed).save(folder / f"{gid}.jpg", quality=95)
    _random_image((424, 424), 10, "RGBA").save(folder / "extra.PNG")
    _random_image((300, 200), 11).save(folder / "odd_size.jpeg", quality=95)
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.jpg").write_bytes(b"macOS resource fork")
    return folder


def _run(argv: list[str]) -> int:
    """main()'s exit status, including argparse's SystemExit."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def _csv_rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def _expected(model, record: dict, path: Path) -> float:
    """p(spiral) from model.predict on the recorded crop + resize of one file."""
    x = imageops.load_crop_resize(path, imageops.Crop(record["crop_fraction"]), record["image_size"],
                                  allow_convert=True)
    return float(model.predict(x[None].astype(np.float32), verbose=0)[0, 0])


def test_folder_predictions_match_recorded_preprocessing(saved_model, images, capsys):
    path, model, record = saved_model
    assert _run(["--model", str(path), str(images)]) == 0
    rows = _csv_rows(capsys.readouterr().out)
    names = [Path(r["path"]).name for r in rows]
    # Non-recursive folder listing: images only (any case), hidden and .txt files skipped, sorted.
    assert names == ["100008.jpg", "100023.jpg", "100053.jpg", "extra.PNG", "odd_size.jpeg"]
    assert [r["id"] for r in rows] == ["100008", "100023", "100053", "extra.PNG", "odd_size.jpeg"]
    assert list(rows[0]) == list(COLUMNS)
    for row in rows:
        p = float(row["p_spiral"])
        assert 0.0 <= p <= 1.0
        assert row["label"] == ("spiral" if p > 0.5 else "elliptical")
        assert row["error"] == ""
        assert p == pytest.approx(_expected(model, record, Path(row["path"])), abs=2e-6)
    # The check above is sensitive: the full frame (no crop) gives a different answer.
    full = imageops.load_crop_resize(images / "100008.jpg", imageops.Crop(1.0), SIZE)
    p_full = float(model.predict(full[None].astype(np.float32), verbose=0)[0, 0])
    assert abs(p_full - float(rows[0]["p_spiral"])) > 1e-5


def test_json_output_schema(saved_model, images, tmp_path):
    path, _, _ = saved_model
    out = tmp_path / "sub" / "pred.JSON"
    assert _run(["--model", str(path), "--output", str(out), "--batch-size", "2", str(images)]) == 0
    records = json.loads(out.read_text())
    assert len(records) == 5
    for rec in records:
        assert list(rec) == list(COLUMNS)
        assert isinstance(rec["p_spiral"], float) and 0.0 <= rec["p_spiral"] <= 1.0
        assert rec["p_spiral"] == round(rec["p_spiral"], 6)
        assert rec["label"] in ("elliptical", "spiral") and rec["error"] == ""
    assert [rec["id"] for rec in records[:3]] == [100008, 100023, 100053]  # integers in JSON
    assert records[3]["id"] == "extra.PNG"


def test_csv_file_equals_stdout_and_batch_size_does_not_matter(saved_model, images, tmp_path, capsys):
    path, _, _ = saved_model
    out = tmp_path / "pred.csv"
    assert _run(["--model", str(path), "--output", str(out), "--batch-size", "1", str(images)]) == 0
    assert _run(["--model", str(path), str(images)]) == 0
    from_file, from_stdout = _csv_rows(out.read_text()), _csv_rows(capsys.readouterr().out)
    for a, b in zip(from_file, from_stdout, strict=True):
        assert a["path"] == b["path"] and a["label"] == b["label"]
        assert float(a["p_spiral"]) == pytest.approx(float(b["p_spiral"]), abs=2e-6)


def test_glob_and_deduplication(saved_model, images, capsys):
    path, _, _ = saved_model
    argv = ["--model", str(path), str(images / "1000*.jpg"), str(images / "100008.jpg"),
            os.path.join(str(images), ".", "100023.jpg"), str(images / "*.PNG")]
    assert _run(argv) == 0
    names = [Path(r["path"]).name for r in _csv_rows(capsys.readouterr().out)]
    assert names == ["100008.jpg", "100023.jpg", "100053.jpg", "extra.PNG"]


def test_expand_inputs_and_galaxy_id(images, tmp_path):
    files, unmatched = expand_inputs([str(images / "*.txt"), str(images / "nothing*.jpg"), str(tmp_path)])
    assert files == [images / "notes.txt"]  # an explicit glob match is kept whatever its extension
    assert unmatched == [str(images / "nothing*.jpg"), str(tmp_path)]
    assert galaxy_id("a/100008.jpg") == 100008
    assert galaxy_id("a/007.jpg") == "007.jpg"
    assert galaxy_id("a/-5.jpg") == "-5.jpg"


def test_unreadable_files_get_error_rows(saved_model, images, tmp_path, capsys):
    path, _, _ = saved_model
    good = tmp_path / "100008.jpg"
    good.write_bytes((images / "100008.jpg").read_bytes())
    truncated = tmp_path / "200000.jpg"
    truncated.write_bytes((images / "100023.jpg").read_bytes()[:600])
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    out = tmp_path / "pred.json"
    status = _run(["--model", str(path), "--output", str(out), str(tmp_path / "*.jpg"), str(text)])
    assert status == 1
    rows = {Path(r["path"]).name: r for r in json.loads(out.read_text())}
    assert set(rows) == {"100008.jpg", "200000.jpg", "notes.txt"}
    assert rows["100008.jpg"]["error"] == "" and 0 <= rows["100008.jpg"]["p_spiral"] <= 1
    for name in ("200000.jpg", "notes.txt"):
        assert name in rows[name]["error"]
        assert rows[name]["p_spiral"] is None and rows[name]["label"] is None
    err = capsys.readouterr().err
    assert f"error: {truncated}:" in err and f"error: {text}:" in err


def test_missing_literal_file_is_an_error_row(saved_model, images, tmp_path, capsys):
    path, _, _ = saved_model
    missing = tmp_path / "123.jpg"
    assert _run(["--model", str(path), str(images / "100008.jpg"), str(missing)]) == 1
    rows = _csv_rows(capsys.readouterr().out)
    assert [r["error"] != "" for r in rows] == [False, True]
    assert str(missing) in rows[1]["error"] and rows[1]["p_spiral"] == ""


def test_usage_errors_exit_2(saved_model, images, tmp_path, capsys):
    path, _, _ = saved_model
    missing = tmp_path / "nope.keras"
    assert _run(["--model", str(missing), str(images)]) == 2
    err = capsys.readouterr().err
    assert f"{missing}: model file not found" in err and "make repro" in err and "dvc pull" in err

    not_model = tmp_path / "fake.keras"
    not_model.write_text("hello")
    assert _run(["--model", str(not_model), str(images)]) == 2
    err = capsys.readouterr().err
    assert f"{not_model}: not a Cosmic Classifier" in err and "Traceback" not in err

    assert _run(["--model", str(path), str(tmp_path / "none*.jpg"), str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "no input files match" in err and "none*.jpg" in err and "x.png" in err

    assert _run(["--model", str(path), "--tta", "4", str(images)]) == 2
    assert "--tta" in capsys.readouterr().err
    assert _run(["--model", str(path), "--output", str(tmp_path / "p.txt"), str(images)]) == 2
    assert ".csv or .json" in capsys.readouterr().err
    assert _run(["--model", str(path), "--batch-size", "0", str(images)]) == 2


def test_plain_keras_model_without_record_is_rejected(tmp_path, images, capsys):
    model = build_baseline(SIZE, filters=(4,), dense_units=4)
    plain = tmp_path / "plain.keras"
    model.save(plain)
    assert _run(["--model", str(plain), str(images)]) == 2
    assert f"{plain}: not a Cosmic Classifier" in capsys.readouterr().err


def test_tta8_is_the_mean_over_eight_views(saved_model, images, capsys):
    path, model, record = saved_model
    assert _run(["--model", str(path), "--tta", "8", "--batch-size", "3", str(images)]) == 0
    rows = _csv_rows(capsys.readouterr().out)
    x = np.stack([imageops.load_crop_resize(r["path"], imageops.Crop(record["crop_fraction"]), SIZE, allow_convert=True)
                  for r in rows])
    expected = tta.predict_proba(model, x, tta=8)
    by_hand = np.mean([model.predict(np.ascontiguousarray(v, np.float32), verbose=0)[:, 0]
                       for v in tta.dihedral_views(x)], axis=0)
    got = np.array([float(r["p_spiral"]) for r in rows])
    np.testing.assert_allclose(got, expected, atol=2e-6)
    np.testing.assert_allclose(got, by_hand, atol=2e-6)
    single = np.array([_expected(model, record, Path(r["path"])) for r in rows])
    assert np.max(np.abs(got - single)) > 1e-5  # the eight views really were used


@pytest.mark.slow  # a subprocess that imports TensorFlow and loads the model (over 5 s)
def test_module_runs_end_to_end(saved_model, images, tmp_path):
    path, _, _ = saved_model
    out = tmp_path / "pred.csv"
    # The glob is passed quoted (no shell), so cosmic.commands.predict must expand it itself.
    result = subprocess.run([sys.executable, "-m", "cosmic.commands.predict", "--model", str(path),
                             "--output", str(out), str(images / "*.jpg")],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = _csv_rows(out.read_text())
    assert [r["id"] for r in rows] == ["100008", "100023", "100053"]
    assert all(0 <= float(r["p_spiral"]) <= 1 for r in rows)
    assert "Traceback" not in result.stderr
    # Only its own summary: no TensorFlow banners, whatever TF_CPP_MIN_LOG_LEVEL the user's shell has.
    assert result.stderr.strip().splitlines() == [f"wrote 3 rows to {out}: 3 predicted, 0 unreadable"]


def test_console_scripts_show_their_names_and_start_without_tensorflow():
    for script in ("cosmic-predict", "cosmic-score", "cosmic-check-params"):
        exe = Path(sys.executable).with_name(script)
        if not exe.exists():
            pytest.skip(f"{script} is not installed beside {sys.executable} (pip install -e .)")
        env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
        started = time.perf_counter()
        done = subprocess.run([str(exe), "--help"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stdout.startswith(f"usage: {script} "), done.stdout[:200]
        assert done.stderr == ""
    code = "import sys; from cosmic.commands import predict, score; assert 'tensorflow' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=120).returncode == 0


def test_16bit_png_is_scaled_not_clipped(saved_model, images, tmp_path, capsys):
    path, model, record = saved_model
    eight = np.asarray(Image.open(images / "100008.jpg").convert("L"))
    Image.fromarray(eight).save(tmp_path / "g8.png")
    Image.fromarray(eight.astype(np.uint16) * 257).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode == "I;16"
    assert _run(["--model", str(path), str(tmp_path / "g8.png"), str(tmp_path / "g16.png")]) == 0
    out = capsys.readouterr()
    rows = {Path(r["path"]).name: r for r in _csv_rows(out.out)}
    assert rows["g16.png"]["p_spiral"] == rows["g8.png"]["p_spiral"]
    x16 = imageops.open_converted(tmp_path / "g16.png")[0]
    np.testing.assert_array_equal(np.asarray(x16), np.asarray(Image.fromarray(eight).convert("RGB")))
    assert f"note: {tmp_path / 'g16.png'}: converted I;16 (16-bit grayscale) to 8-bit RGB" in out.err
    assert f"note: {tmp_path / 'g8.png'}: converted image mode L to RGB" in out.err


def test_cmyk_conversion_is_noted(saved_model, images, tmp_path, capsys):
    path, _, _ = saved_model
    Image.open(images / "100008.jpg").convert("CMYK").save(tmp_path / "cmyk.jpg")
    assert _run(["--model", str(path), str(tmp_path / "cmyk.jpg")]) == 0
    assert f"note: {tmp_path / 'cmyk.jpg'}: converted image mode CMYK to RGB" in capsys.readouterr().err


def test_decompression_bomb_is_an_error_row(saved_model, tmp_path, capsys):
    from tests.test_catalog import _png_header_only

    path, _, _ = saved_model
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(20000, 20000))
    assert _run(["--model", str(path), str(bomb)]) == 1
    assert "decompression bomb" in _csv_rows(capsys.readouterr().out)[0]["error"]


@pytest.mark.parametrize("where", ["folder", "under_file"])
def test_bad_output_path_is_refused_before_predicting(saved_model, images, tmp_path, capsys, monkeypatch, where):
    import cosmic.commands.predict as predict

    path, _, _ = saved_model
    if where == "folder":
        out = tmp_path / "preds.csv"
        out.mkdir()
        message = f"{out}: is a folder"
    else:
        (tmp_path / "file").write_text("mine")
        out = tmp_path / "file" / "sub" / "preds.csv"
        message = f"{tmp_path / 'file'} is a regular file"

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded before the output path was checked")

    monkeypatch.setattr(predict, "load_classifier", never)
    assert _run(["--model", str(path), "--output", str(out), str(images)]) == 2
    assert message in capsys.readouterr().err
    assert (tmp_path / "file").read_text() == "mine" if where == "under_file" else out.is_dir()
    assert not list(tmp_path.rglob("*.partial"))


def test_failed_write_leaves_no_partial(tmp_path, monkeypatch):
    import cosmic.commands.predict as predict

    def broken(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(predict.os, "replace", broken)
    with pytest.raises(OSError):
        predict.write_atomic(tmp_path / "p.csv", "id\n")
    assert list(tmp_path.iterdir()) == []


# Ctrl-C in a terminal raises KeyboardInterrupt; the child restores that handler because a runner
# started in the background (nohup, `cmd &`) passes SIGINT on as ignored.
_INTERRUPT = """
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
from pathlib import Path
import cosmic.commands.predict as predict
marker = Path(sys.argv[1])
phase = sys.argv[2]
if phase == "predicting":
    real = predict.predict_files
    def slow(*args, **kwargs):
        for row in real(*args, **kwargs):
            marker.touch()
            time.sleep(0.5)
            yield row
    predict.predict_files = slow
else:
    real_replace = os.replace
    def stop_before_replace(src, dst):
        marker.touch()
        time.sleep(60)
        real_replace(src, dst)
    predict.os.replace = stop_before_replace
sys.exit(predict.main(sys.argv[3:]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["predicting", "writing"])
def test_sigint_leaves_no_output_under_the_final_name(saved_model, images, tmp_path, phase):
    path, _, _ = saved_model
    out = tmp_path / "out" / "pred.csv"
    marker = tmp_path / "marker"
    proc = subprocess.Popen([sys.executable, "-c", _INTERRUPT, str(marker), phase, "--model", str(path),
                             "--output", str(out), "--batch-size", "1", str(images)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode != 0
    assert not out.exists() and not list(tmp_path.rglob("*.partial")), err
