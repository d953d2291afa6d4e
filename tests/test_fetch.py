"""fetch: real Kaggle files from a folder or zips, the API path, and the message when absent."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from cosmic import fetch
from cosmic import kaggle_format as kf
from cosmic.fetch import FetchError, import_kaggle


def _ids(root: Path) -> set[str]:
    return {p.name for p in (root / kf.IMAGES_DIR).glob("*.jpg")}


def test_import_from_extracted_folder(kaggle_master, tmp_path):
    out = tmp_path / "raw"
    info = import_kaggle(kaggle_master, out, download=False)
    assert info["images_from"] == "folder" and info["csv_from"] == "csv"
    assert _ids(out) == _ids(kaggle_master)
    assert (out / kf.SOLUTIONS_CSV).read_bytes() == (kaggle_master / kf.SOLUTIONS_CSV).read_bytes()


def test_import_from_old_folder_name(kaggle_master, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(kaggle_master / kf.IMAGES_DIR, src / "images_train_rev1")
    shutil.copy(kaggle_master / kf.SOLUTIONS_CSV, src)
    info = import_kaggle(src, tmp_path / "raw", download=False)
    assert info["n_images"] == len(_ids(kaggle_master))


def _write_kaggle_zips(master: Path, dest: Path) -> None:
    dest.mkdir()
    with zipfile.ZipFile(dest / kf.IMAGES_ZIP, "w") as zf:
        for p in sorted((master / kf.IMAGES_DIR).glob("*.jpg")):
            zf.write(p, f"{kf.IMAGES_DIR}/{p.name}")
    with zipfile.ZipFile(dest / kf.SOLUTIONS_ZIP, "w") as zf:
        zf.write(master / kf.SOLUTIONS_CSV, kf.SOLUTIONS_CSV)


def test_import_from_the_two_zips(kaggle_master, tmp_path):
    src = tmp_path / "zips"
    _write_kaggle_zips(kaggle_master, src)
    out = tmp_path / "raw"
    info = import_kaggle(src, out, download=False)
    assert info["images_from"] == "zip" and info["csv_from"] == "zip"
    assert _ids(out) == _ids(kaggle_master)
    assert (out / kf.SOLUTIONS_CSV).read_text() == (kaggle_master / kf.SOLUTIONS_CSV).read_text()


def test_corrupt_zip_is_named(kaggle_master, tmp_path):
    src = tmp_path / "zips"
    _write_kaggle_zips(kaggle_master, src)
    (src / kf.IMAGES_ZIP).write_bytes(b"not a zip")
    with pytest.raises(FetchError, match=kf.IMAGES_ZIP):
        import_kaggle(src, tmp_path / "raw", download=False)


def test_missing_files_without_credentials_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.delenv("KAGGLE_KEY", raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle"))
    with pytest.raises(FetchError) as err:
        import_kaggle(tmp_path / "empty", tmp_path / "raw")
    msg = str(err.value)
    for name in (kf.IMAGES_ZIP, kf.SOLUTIONS_ZIP, kf.SOLUTIONS_CSV, str(tmp_path / "empty")):
        assert name in msg


def test_credentials_trigger_the_api_download(kaggle_master, tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "secret")
    calls = []

    def fake_download(kaggle_dir: Path) -> None:
        calls.append(kaggle_dir)
        _write_kaggle_zips(kaggle_master, kaggle_dir)

    monkeypatch.setattr(fetch, "download_competition_files", fake_download)
    info = import_kaggle(tmp_path / "dl", tmp_path / "raw")
    assert calls == [tmp_path / "dl"]
    assert info["images_from"] == "zip" and info["n_images"] == len(_ids(kaggle_master))


def test_credentials_file_is_detected(tmp_path, monkeypatch):
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.delenv("KAGGLE_KEY", raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path))
    assert not fetch.has_kaggle_credentials()
    (tmp_path / "kaggle.json").write_text('{"username": "u", "key": "k"}')
    assert fetch.has_kaggle_credentials()
