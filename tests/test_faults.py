"""A machine that misbehaves while a stage runs: a full or read-only disk, a damaged model, Ctrl-C, kill -9."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import yaml

from cosmic import utils, workspace

from cosmic.data import packing
from cosmic.data.imageops import Crop
from cosmic.learning.modelio import load_model, preprocessing_record, save_model
from cosmic.learning.models import build_baseline
from tests.conftest import REPO, stage_args, stage_code, tiny_params
from tests.test_distributed import prepared  # noqa: F401  (fixture: the tiny data stages' outputs)

# --- Without a real full disk: the failing call raises as it would -----------------------------------------------


def _raise(code: int):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    return fail


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "no space left on device"),
                                         (errno.EROFS, "read-only file system"),
                                         (errno.EACCES, "permission denied")])
def test_a_failed_json_write_is_one_error_naming_the_output_and_leaves_nothing(tmp_path, monkeypatch, code, words):
    monkeypatch.setattr(Path, "write_text", _raise(code))
    target = tmp_path / "metrics" / "m.json"
    with pytest.raises(utils.OutputError) as raised:
        utils.write_json(target, {"a": 1})
    message = str(raised.value)
    assert message.startswith(f"cannot write {target}: {words} (needs 0.0 MB, ") and "free there" in message
    assert "\n" not in message and ".partial" not in message
    assert list(target.parent.iterdir()) == []


def test_other_os_errors_are_not_renamed(tmp_path, monkeypatch):
    monkeypatch.setattr(Path, "write_text", _raise(errno.EIO))
    with pytest.raises(OSError) as raised:
        utils.write_json(tmp_path / "m.json", {})
    assert not isinstance(raised.value, utils.OutputError) and raised.value.errno == errno.EIO


def _manifest(tmp_path: Path, n: int) -> pd.DataFrame:
    from PIL import Image

    rows = []
    for i in range(n):
        path = tmp_path / f"{i}.jpg"
        Image.new("RGB", (424, 424), (i, 2 * i, 3 * i)).save(path)
        rows.append({"GalaxyID": i, "image_path": str(path), "label": i % 2})
    return pd.DataFrame(rows)


def test_packing_reserves_the_array_so_a_full_disk_is_an_error_not_sigbus(tmp_path, monkeypatch):
    manifest = _manifest(tmp_path, 4)
    reserved = []
    real = os.posix_fallocate

    def fallocate(fd, offset, length):
        reserved.append(length)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", fallocate)
    out = tmp_path / "processed" / "train"
    with pytest.raises(utils.OutputError, match=rf"cannot write {out / 'images.npy'}: no space left on device "
                                                r"\(needs 0\.0 MB, "):
        packing.pack_split(manifest, out, Crop(0.5), 16, chunk_size=2, workers=1)
    assert len(reserved) == 1 and reserved[0] >= 4 * 16 * 16 * 3  # the whole array, before any image is written
    assert list(out.iterdir()) == []  # no images.npy.partial
    monkeypatch.setattr(os, "posix_fallocate", real)
    assert packing.pack_split(manifest, out, Crop(0.5), 16, chunk_size=2, workers=1) == (4, 0)


def test_a_file_system_that_cannot_reserve_still_packs(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "posix_fallocate", _raise(errno.EOPNOTSUPP))
    assert packing.pack_split(_manifest(tmp_path, 3), tmp_path / "out", Crop(0.5), 16, chunk_size=2,
                              workers=1) == (3, 0)


@pytest.fixture(scope="module")
def tiny_model():
    keras.utils.set_random_seed(0)
    return build_baseline(16, filters=(4,), dense_units=4)


def test_a_model_save_on_a_full_disk_names_the_model_and_its_size(tmp_path, monkeypatch, tiny_model):
    monkeypatch.setattr(zipfile.ZipFile, "writestr", _raise(errno.ENOSPC))
    path = tmp_path / "models" / "m.keras"
    with pytest.raises(utils.OutputError) as raised:
        save_model(tiny_model, path, preprocessing_record(Crop(0.5), 16, ("elliptical", "spiral")))
    size = sum(w.nbytes for w in tiny_model.get_weights()) / 1e6
    assert str(raised.value).startswith(f"cannot write {path}: no space left on device (needs {size:.1f} MB, ")
    assert list(path.parent.iterdir()) == []  # the temporary folder is gone too


def test_a_damaged_model_is_one_error_naming_the_file_and_the_repair(tmp_path, tiny_model):
    path = tmp_path / "m.keras"
    save_model(tiny_model, path, preprocessing_record(Crop(0.5), 16, ("elliptical", "spiral")))
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("model.weights.h5")
    data = bytearray(path.read_bytes())
    data[info.header_offset + 30 + len(info.filename) + info.compress_size // 2] ^= 0xFF  # inside the weights
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError) as raised:
        load_model(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: cannot load the Keras model (") and "make verify" in message
    assert "\n" not in message


# --- Real stages in subprocesses on tiny data ----------------------------------------------------------------------


def _copy(prepared: Path, tmp_path: Path, **changes) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(prepared, root, symlinks=True)
    p = yaml.safe_load((root / "params.yaml").read_text())
    for dotted, value in changes.items():
        section, key = dotted.split(".")
        p[section][key] = value
    (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    return root


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}


def _stage(root: Path, name: str, *prefix: str) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, *stage_args(name)], cwd=root, env=_env(),
                          capture_output=True, text=True, timeout=600)


def _error_line(stderr: str, stage: str) -> str:
    """The stage's one error line (its log lines start with a time stamp)."""
    lines = [line for line in stderr.splitlines() if line.startswith(f"{stage}: ")]
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


def _tmpfs_prefix(mount: Path, size: str, options: str = "") -> list[str]:
    """A command prefix that runs the rest in a private mount namespace with a small tmpfs on `mount`."""
    script = 'mount -t tmpfs -o "size=$1$2" tmpfs "$3" && shift 3 && exec "$@"'
    return ["unshare", "-rm", "sh", "-c", script, "sh", size, options, str(mount)]


@pytest.fixture(scope="module")
def tmpfs_ok(tmp_path_factory) -> None:
    probe = tmp_path_factory.mktemp("probe")
    if shutil.which("unshare") is None or subprocess.run(
            _tmpfs_prefix(probe, "64k") + ["true"], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (unshare -rm / mount -t tmpfs not permitted)")


@pytest.mark.slow
def test_preprocess_on_a_full_disk_is_one_line_and_leaves_no_partial(prepared, tmp_path, tmpfs_ok):
    """Before: SIGBUS ("exited with -7") writing the memory-mapped array, images.npy.partial left behind."""
    root = _copy(prepared, tmp_path)
    processed = root / "data" / "processed"
    shutil.rmtree(processed)
    processed.mkdir()
    needed = (np.load(prepared / "data/processed/train/images.npy", mmap_mode="r").nbytes) / 1e6
    done = _stage(root, "preprocess", *_tmpfs_prefix(processed, "32k"))
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert _error_line(done.stderr, "preprocess").startswith(
        f"preprocess: cannot write data/processed/train/images.npy: no space left on device "
        f"(needs {needed:.1f} MB, ")
    assert not list(processed.rglob("*"))  # the tmpfs is gone with its namespace; nothing was written here


@pytest.mark.slow
def test_a_read_only_models_folder_is_one_line_naming_the_model(prepared, tmp_path, tmpfs_ok):
    """Before: an OSError traceback naming a temporary file (models/tmpk8a_eytr)."""
    root = _copy(prepared, tmp_path)
    (root / "models").mkdir()
    done = _stage(root, "train_baseline", *_tmpfs_prefix(root / "models", "1m", ",ro"))
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert _error_line(done.stderr, "train_baseline").startswith(
        "train_baseline: cannot write models/train_baseline.keras: read-only file system (needs ")
    assert not (root / "plots/training/train_baseline").exists()
    assert not (root / "metrics/train_baseline.json").exists()


@pytest.mark.slow
def test_evaluate_names_a_damaged_model_and_the_repair(prepared, tmp_path):
    """Before: zipfile.BadZipFile traceback ("Bad CRC-32 for file 'model.weights.h5'")."""
    root = _copy(prepared, tmp_path)
    (root / "models").mkdir()
    path = root / "models" / "train_baseline.keras"
    keras.utils.set_random_seed(0)
    save_model(build_baseline(32, filters=(4,), dense_units=4), path,
               preprocessing_record(Crop(0.5), 32, ("elliptical", "spiral")))
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("model.weights.h5")
    data = bytearray(path.read_bytes())
    data[info.header_offset + 30 + len(info.filename) + info.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    done = _stage(root, "evaluate")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    line = _error_line(done.stderr, "evaluate")
    assert line.startswith("evaluate: models/train_baseline.keras: cannot load the Keras model (")
    assert "make verify" in line and "dvc pull" in line
    assert not (root / "metrics/evaluate.json").exists()


def test_fetch_names_too_few_synthetic_images_before_writing(tmp_path):
    """Before: fetch and filter ran, then filter failed with "no 'spiral' galaxies left" naming no key."""
    p = tiny_params(n_images=5)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    done = _stage(tmp_path, "fetch")
    assert done.returncode == 1
    assert _error_line(done.stderr, "fetch") == (
        "fetch: params.yaml: 'fetch.synthetic.n_images' is 5; expected at least 40: fewer leave too few galaxies "
        "of each class after filter to split them into train/val/test")
    assert not (tmp_path / "data").exists()


# --- Ctrl-C and kill -9 while a model trains -----------------------------------------------------------------------


def _start(root: Path, name: str) -> subprocess.Popen:
    # Ctrl-C in a terminal raises KeyboardInterrupt; the child restores that handler because a runner
    # started in the background (nohup, `cmd &`) passes SIGINT on as ignored.
    code = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); " + stage_code(name)
    (root / "tmp").mkdir()
    return subprocess.Popen([sys.executable, "-c", code], cwd=root, env={**_env(), "TMPDIR": str(root / "tmp")},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for(root: Path, pattern: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    start = time.monotonic()
    while not list(root.glob(pattern)):
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.monotonic() - start < timeout, f"{pattern} never appeared"
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_training_leaves_no_training_log_under_its_name(prepared, tmp_path, sig):
    """Before: SIGINT printed a KeyboardInterrupt traceback; SIGKILL left the epochs so far in plots/training/."""
    root = _copy(prepared, tmp_path, **{"train_baseline.epochs": 500, "train_baseline.patience": 500})
    stage = _start(root, "train_baseline")
    try:
        # DVCLive writes an epoch's metrics when the epoch ends: wait for the first.
        _wait_for(root, "tmp/cosmic-train_baseline-*/plots/metrics/train/loss.tsv", stage)
        os.killpg(stage.pid, sig)  # the whole process group, as a terminal's Ctrl-C does
        _, stderr = stage.communicate(timeout=120)
    finally:
        if stage.poll() is None:
            os.killpg(stage.pid, signal.SIGKILL)
            stage.wait()
    if sig == signal.SIGINT:
        assert stage.returncode == 1 and "Traceback" not in stderr, stderr[-3000:]
        assert _error_line(stderr, "train_baseline") == (
            "train_baseline: interrupted; no model, metrics or training log was half-written, re-run the stage")
        assert not (root / "plots/training/train_baseline.partial").exists()
        assert list((root / "tmp").iterdir()) == []  # nor DVCLive's temporary folder
    else:
        assert stage.returncode == -signal.SIGKILL
    assert not (root / "plots/training/train_baseline").exists()
    assert not (root / "models/train_baseline.keras").exists()
    assert not (root / "metrics/train_baseline.json").exists()
    p = yaml.safe_load((root / "params.yaml").read_text())
    p["train_baseline"].update(epochs=1, patience=1)
    (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    rerun = _stage(root, "train_baseline")  # a killed run's leftover does not disturb the next one
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert not (root / "plots/training/train_baseline.partial").exists()
    assert (root / "plots/training/train_baseline/plots/metrics/train/loss.tsv").is_file()


@pytest.mark.slow
def test_ctrl_c_in_an_in_process_search_is_one_line(prepared, tmp_path):
    """Before: a KeyboardInterrupt traceback."""
    root = _copy(prepared, tmp_path, **{"tune.workers": 1, "tune.epochs_per_trial": 500})
    stage = _start(root, "tune")
    try:
        _wait_for(root, "models/tune/search/trial_0", stage)
        time.sleep(2)  # into the trial's first epochs
        os.killpg(stage.pid, signal.SIGINT)
        _, stderr = stage.communicate(timeout=120)
    finally:
        if stage.poll() is None:
            os.killpg(stage.pid, signal.SIGKILL)
            stage.wait()
    assert stage.returncode == 1 and "Traceback" not in stderr, stderr[-3000:]
    assert _error_line(stderr, "tune") == ("tune: interrupted; every search process was stopped and no result was "
                                           "written, re-run the stage")
    for rel in ("models/tune/best_hparams.json", "metrics/tune.json", "plots/training/tune", "plots/tune_trials.png"):
        assert not (root / rel).exists(), rel


# --- Two `dvc exp run` in one workspace: the claim each stage takes (the real thing: test_dvc_concurrency.py) ---


@pytest.fixture
def dvc_workspace(tmp_path, monkeypatch):
    """A folder with .dvc/tmp and a params.yaml, as the working directory; a process that is not our ancestor."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".dvc/tmp/exps/run/workspace").mkdir(parents=True)
    (tmp_path / "params.yaml").write_text("a: 2\n")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield tmp_path, other.pid
    other.kill()
    other.wait()


def _record(path: Path, pid: int, **extra) -> None:
    path.write_text(json.dumps({"pid": pid, **extra}))


def test_a_stage_of_another_run_is_refused_and_puts_back_the_running_params(dvc_workspace):
    root, other = dvc_workspace
    _record(root / workspace.CLAIM, other, params="a: 1\n")
    with pytest.raises(workspace.WorkspaceBusyError) as raised:
        workspace.claim()
    assert str(raised.value).startswith(f"this workspace is busy: `dvc exp run` (pid {other}) is running here, so "
                                        "this one stopped before writing anything and put back that run's "
                                        "params.yaml; run one experiment at a time per workspace: queue the "
                                        "others with `dvc exp run --queue -S ...`")
    assert (root / "params.yaml").read_text() == "a: 1\n"


def test_a_later_stage_of_the_holding_run_stops_when_params_changed(dvc_workspace):
    root, _ = dvc_workspace
    _record(root / workspace.CLAIM, os.getppid(), params="a: 1\n")  # an ancestor: "our" dvc exp run
    with pytest.raises(workspace.WorkspaceBusyError, match=r"^params.yaml changed since this experiment's first "
                                                             r"stage .*--queue.*--temp"):
        workspace.claim()
    (root / "params.yaml").write_text("a: 1\n")
    claim = workspace.claim()
    (root / "params.yaml").write_text("a: 3\n")
    with pytest.raises(workspace.WorkspaceBusyError, match=r"^params.yaml changed while this stage ran"):
        claim.check()


def test_the_first_stage_claims_for_the_dvc_run_that_started_it_and_not_for_another(dvc_workspace):
    root, other = dvc_workspace
    _record(root / workspace.DVC_WORKSPACE_RUN, other)
    with pytest.raises(workspace.WorkspaceBusyError, match=rf"^this workspace is busy: `dvc exp run` \(pid {other}\) "
                                                             r"started here"):
        workspace.claim()
    assert not (root / workspace.CLAIM).exists()
    _record(root / workspace.DVC_WORKSPACE_RUN, os.getppid())
    workspace.claim().check()
    held = json.loads((root / workspace.CLAIM).read_text())
    assert held["pid"] == os.getppid() and held["params"] == "a: 2\n"
    (root / workspace.CLAIM).write_text(json.dumps({**held, "pid": other, "started": 1.0}))  # a reused pid: stale
    workspace.claim()
    assert json.loads((root / workspace.CLAIM).read_text())["pid"] == os.getppid()
