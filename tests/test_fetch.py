"""fetch: real Kaggle files from a folder or zips, the API path, and the message when absent."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cosmic.data import fetch
from cosmic.data import kaggle_format as kf
from cosmic.data.fetch import FetchError, import_kaggle


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


def test_missing_files_without_credentials_say_where_to_put_them(tmp_path, monkeypatch, no_credentials):
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

    def fake_download(kaggle_dir: Path, names: tuple[str, ...]) -> None:
        calls.append((kaggle_dir, names))
        _write_kaggle_zips(kaggle_master, kaggle_dir)

    monkeypatch.setattr(fetch, "download_competition_files", fake_download)
    info = import_kaggle(tmp_path / "dl", tmp_path / "raw")
    assert calls == [(tmp_path / "dl", (kf.SOLUTIONS_ZIP, kf.IMAGES_ZIP))]
    assert info["images_from"] == "zip" and info["n_images"] == len(_ids(kaggle_master))


@pytest.fixture
def no_credentials(tmp_path, monkeypatch):
    """An environment without any Kaggle credential; returns the (empty) home folder."""
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def test_credentials_file_is_detected(tmp_path, monkeypatch, no_credentials):
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path))
    assert not fetch.has_kaggle_credentials()
    (tmp_path / "kaggle.json").write_text('{"username": "u", "key": "k"}')
    assert fetch.has_kaggle_credentials()


def test_token_forms_are_recognised(no_credentials, monkeypatch):
    assert fetch.kaggle_credentials() is None
    monkeypatch.setenv("KAGGLE_API_TOKEN", "KGAT_abc")
    assert fetch.kaggle_credentials() == "KAGGLE_API_TOKEN"
    monkeypatch.delenv("KAGGLE_API_TOKEN")
    token = no_credentials / ".kaggle" / "access_token"
    token.parent.mkdir()
    token.write_text("\n")
    assert fetch.kaggle_credentials() is None  # an empty token file is no credential
    token.write_text("KGAT_abc\n")
    assert fetch.kaggle_credentials() == str(token)


@pytest.mark.parametrize("content, message", [
    ('{"username": "u"}', r"kaggle.json: no 'key'; expected"),
    ('{"key": "k"}', r"kaggle.json: no 'username'; expected"),
    ("{username: u", r"kaggle.json: not valid JSON"),
    ("[]", r"no 'username' and no 'key'"),
])
def test_incomplete_kaggle_json_is_named_before_the_kaggle_package_exits(no_credentials, tmp_path, content,
                                                                         message):
    (no_credentials / ".kaggle").mkdir()
    (no_credentials / ".kaggle" / "kaggle.json").write_text(content)
    with pytest.raises(FetchError, match=message):
        import_kaggle(tmp_path / "empty", tmp_path / "raw")


def test_kaggle_package_exit_becomes_a_fetch_error(tmp_path, monkeypatch):
    from kaggle.api.kaggle_api_extended import KaggleApi

    def exits(self):
        print("Kaggle's own help text")
        exit(1)

    monkeypatch.setattr(KaggleApi, "authenticate", exits)
    with pytest.raises(FetchError, match=r"authentication failed \(the kaggle package exited with status 1\)"):
        fetch.download_competition_files(tmp_path / "dl")


def test_download_is_moved_into_place_only_when_complete(tmp_path, monkeypatch):
    from kaggle.api.kaggle_api_extended import KaggleApi

    seen = []

    def download(self, competition, name, path, quiet):
        seen.append(Path(path))
        (Path(path) / name).write_bytes(b"zip bytes")
        if name == kf.IMAGES_ZIP:
            raise ConnectionError("connection reset")

    monkeypatch.setattr(KaggleApi, "authenticate", lambda self: None)
    monkeypatch.setattr(KaggleApi, "competition_download_file", download)
    dl = tmp_path / "dl"
    with pytest.raises(FetchError, match="connection reset"):
        fetch.download_competition_files(dl)
    assert seen == [dl / fetch.DOWNLOAD_TMP] * 2
    assert (dl / kf.SOLUTIONS_ZIP).read_bytes() == b"zip bytes"
    assert not (dl / kf.IMAGES_ZIP).exists()  # the interrupted one never appears under its name


@pytest.mark.parametrize("kaggle_dir", ["data/raw", "data/raw/kaggle", "data/raw/../raw", "data", "."])
def test_source_overlapping_the_output_is_refused_before_deleting(tmp_path, monkeypatch, kaggle_dir):
    import yaml

    from tests.conftest import REPO

    monkeypatch.chdir(tmp_path)
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    p["fetch"].update(source="kaggle", kaggle_dir=kaggle_dir)
    Path("params.yaml").write_text(yaml.safe_dump(p))
    user_file = Path("data/raw/kaggle/training_solutions_rev1.csv")
    user_file.parent.mkdir(parents=True)
    user_file.write_text("GalaxyID\n")
    result = subprocess.run([sys.executable, "-m", "stages.fetch"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "Nothing was deleted" in result.stderr and kaggle_dir in result.stderr
    assert user_file.read_text() == "GalaxyID\n"


def _zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _jpeg_bytes(kaggle_master: Path, i: int) -> bytes:
    return sorted((kaggle_master / kf.IMAGES_DIR).glob("*.jpg"))[i].read_bytes()


def test_same_image_name_in_two_zip_folders_is_refused(kaggle_master, tmp_path):
    src = tmp_path / "zips"
    _write_kaggle_zips(kaggle_master, src)
    _zip(src / kf.IMAGES_ZIP, {"a/104746.jpg": _jpeg_bytes(kaggle_master, 0),
                               "b/104746.jpg": _jpeg_bytes(kaggle_master, 1)})
    with pytest.raises(FetchError, match=r"'a/104746.jpg' and 'b/104746.jpg' would both be imported as "
                                         r"104746.jpg but differ"):
        import_kaggle(src, tmp_path / "raw", download=False)


def test_identical_duplicates_are_imported_once(kaggle_master, tmp_path):
    src = tmp_path / "zips"
    _write_kaggle_zips(kaggle_master, src)
    data = _jpeg_bytes(kaggle_master, 0)
    _zip(src / kf.IMAGES_ZIP, {"a/104746.jpg": data, "b/104746.jpg": data, "c/1.jpg": data})
    info = import_kaggle(src, tmp_path / "raw", download=False)
    assert info["n_images"] == 2 and _ids(tmp_path / "raw") == {"104746.jpg", "1.jpg"}


def test_macos_zip_metadata_is_ignored_and_jpg_case_is_free(kaggle_master, tmp_path):
    src = tmp_path / "zips"
    src.mkdir()
    csv = (kaggle_master / kf.SOLUTIONS_CSV).read_bytes()
    _zip(src / kf.SOLUTIONS_ZIP, {kf.SOLUTIONS_CSV: csv, f"__MACOSX/._{kf.SOLUTIONS_CSV}": b"\0\5\x16\7"})
    _zip(src / kf.IMAGES_ZIP, {"images/100008.JPG": _jpeg_bytes(kaggle_master, 0),
                               "images/100009.Jpg": _jpeg_bytes(kaggle_master, 1),
                               "__MACOSX/images/._100008.JPG": b"\0\5\x16\7",
                               "images/._100010.jpg": b"\0\5\x16\7"})
    info = import_kaggle(src, tmp_path / "raw", download=False)
    assert info["n_images"] == 2 and _ids(tmp_path / "raw") == {"100008.jpg", "100009.jpg"}
    assert (tmp_path / "raw" / kf.SOLUTIONS_CSV).read_bytes() == csv


def test_folder_import_names_images_like_the_filter_expects(kaggle_master, tmp_path):
    src = tmp_path / "src"
    (src / kf.IMAGES_DIR).mkdir(parents=True)
    shutil.copy(kaggle_master / kf.SOLUTIONS_CSV, src)
    (src / kf.IMAGES_DIR / "100008.JPG").write_bytes(_jpeg_bytes(kaggle_master, 0))
    (src / kf.IMAGES_DIR / "._100008.JPG").write_bytes(b"\0\5\x16\7")
    info = import_kaggle(src, tmp_path / "raw", download=False)
    assert info["n_images"] == 1 and _ids(tmp_path / "raw") == {"100008.jpg"}
    (src / kf.IMAGES_DIR / "100008.jpg").write_bytes(_jpeg_bytes(kaggle_master, 1))
    with pytest.raises(FetchError, match=r"'100008.JPG' and '100008.jpg' would both be imported"):
        import_kaggle(src, tmp_path / "raw2", download=False)


def test_truncated_zip_says_to_delete_it(kaggle_master, tmp_path):
    src = tmp_path / "zips"
    _write_kaggle_zips(kaggle_master, src)
    path = src / kf.IMAGES_ZIP
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(FetchError, match=r"truncated or incomplete .*: delete .*images_training_rev1.zip so that "
                                         r"fetch downloads it again"):
        import_kaggle(src, tmp_path / "raw", download=False)


def test_corrupt_member_data_is_reported_as_truncated(kaggle_master, tmp_path):
    src = tmp_path / "zips"
    _write_kaggle_zips(kaggle_master, src)
    path = src / kf.IMAGES_ZIP
    data = bytearray(path.read_bytes())
    data[200:260] = bytes(60)  # inside the first member's compressed data: CRC or inflate error
    path.write_bytes(bytes(data))
    with pytest.raises(FetchError, match=str(path)):
        import_kaggle(src, tmp_path / "raw", download=False)


# Property-based: any zip or folder of files is imported consistently or refused with a FetchError.
_STEMS = st.sampled_from(["100008", "100009", "1", "._100008", ".hidden", "a b", "é"])
_SUFFIXES = st.sampled_from([".jpg", ".JPG", ".Jpg", ".jpeg", ".png", "", ".jpg.txt"])
_DIRS = st.sampled_from(["", "images/", "a/", "b/", "__MACOSX/", "__MACOSX/images/", "x/y/"])
_CONTENTS = st.sampled_from([b"one", b"two", b""])


def _check_import(src: Path, out: Path, members: dict[str, bytes]) -> None:
    try:
        info = import_kaggle(src, out, download=False)
    except FetchError as e:
        assert str(e)
        return
    expected: dict[str, set[bytes]] = {}
    for name, data in members.items():
        target = fetch.image_name(name)
        if target is not None:
            expected.setdefault(target, set()).add(data)
    written = {p.name: p.read_bytes() for p in (out / kf.IMAGES_DIR).iterdir()}
    assert info["n_images"] == len(written) > 0
    assert set(written) == set(expected)
    for name, data in written.items():
        assert expected[name] == {data}  # two different files never land on one name


@settings(max_examples=60, deadline=None)
@given(members=st.dictionaries(st.builds(lambda d, s, x: d + s + x, _DIRS, _STEMS, _SUFFIXES), _CONTENTS,
                               max_size=6))
def test_any_image_zip_is_imported_consistently_or_refused(kaggle_master, tmp_path_factory, members):
    root = tmp_path_factory.mktemp("zipimport")
    src = root / "src"
    src.mkdir()
    shutil.copy(kaggle_master / kf.SOLUTIONS_CSV, src)
    _zip(src / kf.IMAGES_ZIP, members)
    _check_import(src, root / "raw", members)


@settings(max_examples=60, deadline=None)
@given(members=st.dictionaries(st.builds(lambda s, x: s + x, _STEMS, _SUFFIXES), _CONTENTS, max_size=6))
def test_any_image_folder_is_imported_consistently_or_refused(kaggle_master, tmp_path_factory, members):
    root = tmp_path_factory.mktemp("folderimport")
    src = root / "src"
    (src / kf.IMAGES_DIR).mkdir(parents=True)
    shutil.copy(kaggle_master / kf.SOLUTIONS_CSV, src)
    for name, data in members.items():
        (src / kf.IMAGES_DIR / name).write_bytes(data)
    _check_import(src, root / "raw", members)


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=300), cut=st.integers(0, 400))
def test_any_damaged_solutions_zip_is_a_fetch_error_or_imported(kaggle_master, tmp_path_factory, data, cut):
    root = tmp_path_factory.mktemp("damaged")
    src = root / "src"
    _write_kaggle_zips(kaggle_master, src)
    path = src / kf.SOLUTIONS_ZIP
    good = path.read_bytes()
    path.write_bytes(good[:cut] + data + good[cut + len(data):] if data else good[:cut])
    try:
        import_kaggle(src, root / "raw", download=False)
    except FetchError as e:
        assert str(path) in str(e)
