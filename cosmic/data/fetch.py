"""Put the Kaggle-format training set in data/raw: from the synthetic generator or the real files."""

from __future__ import annotations

import filecmp
import json
import logging
import os
import shutil
import zipfile
import zlib
from functools import partial
from pathlib import Path, PurePosixPath

from cosmic.data import kaggle_format as kf
from cosmic import paths
from cosmic.utils import StageError, progress, write_json

log = logging.getLogger(__name__)

# Older scripts and mirrors name the image folder differently.
IMAGE_DIR_ALIASES = (kf.IMAGES_DIR, "images_train_rev1")


class FetchError(StageError, RuntimeError):
    """The Kaggle files cannot be found, downloaded or unpacked."""


def missing_files_message(kaggle_dir: Path) -> str:
    """Explain exactly which files to put where for `fetch.source: kaggle`."""
    return (
        f"Galaxy Zoo files not found in {kaggle_dir}/. Put either the two Kaggle zips\n"
        f"  {kaggle_dir}/{kf.IMAGES_ZIP}\n  {kaggle_dir}/{kf.SOLUTIONS_ZIP}\n"
        f"or the extracted files\n  {kaggle_dir}/{kf.IMAGES_DIR}/<GalaxyID>.jpg\n"
        f"  {kaggle_dir}/{kf.SOLUTIONS_CSV}\n"
        f"there (from https://www.kaggle.com/c/{kf.COMPETITION}/data), or set up Kaggle API "
        "credentials (an access token in KAGGLE_API_TOKEN or ~/.kaggle/access_token, or the legacy "
        "~/.kaggle/kaggle.json or KAGGLE_USERNAME/KAGGLE_KEY) and accept the competition rules so fetch "
        "can download them."
    )


def check_separate(kaggle_dir: Path, out_dir: Path) -> None:
    """Refuse a source folder that is, contains or lies inside the output folder.

    The stage empties its output before importing, so a source inside it would be deleted,
    and an output inside the source would write into the user's files.

    Raises:
        FetchError: naming both folders.
    """
    src, out = Path(kaggle_dir).resolve(), Path(out_dir).resolve()
    if src == out or out in src.parents:
        where = "is" if src == out else "is inside"
        raise FetchError(f"fetch.kaggle_dir {kaggle_dir} {where} the output folder {out_dir}, which fetch empties "
                         f"before importing; expected a folder outside {out_dir} (e.g. {paths.KAGGLE_DIR}). "
                         "Nothing was deleted.")
    if src in out.parents:
        raise FetchError(f"the output folder {out_dir} is inside fetch.kaggle_dir {kaggle_dir}; expected the "
                         f"Kaggle files in a folder of their own (e.g. {paths.KAGGLE_DIR}), so fetch never writes "
                         "among them. Nothing was deleted.")


def _token_file(config_dir: Path) -> Path | None:
    for name in ("access_token", "access_token.txt"):  # the .txt form is what Windows editors save
        path = config_dir / name
        if path.is_file() and path.read_text(errors="replace").strip():
            return path
    return None


def kaggle_credentials(home: Path | None = None) -> str | None:
    """Where Kaggle API credentials are configured, or None.

    Recognises, in the kaggle package's order: an access token (KAGGLE_API_TOKEN, or the file
    ~/.kaggle/access_token), then the legacy KAGGLE_USERNAME/KAGGLE_KEY or kaggle.json.

    Raises:
        FetchError: if the kaggle.json that would be used is not JSON with a username and a key
            (the kaggle package would exit with its own help text instead).
    """
    if os.environ.get("KAGGLE_API_TOKEN"):
        return "KAGGLE_API_TOKEN"
    home_dir = (home or Path.home()) / ".kaggle"
    config_dir = Path(os.environ.get("KAGGLE_CONFIG_DIR") or home_dir)
    for d in dict.fromkeys((home_dir, config_dir)):
        token = _token_file(d)
        if token is not None:
            return str(token)
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return "KAGGLE_USERNAME/KAGGLE_KEY"
    path = config_dir / "kaggle.json"
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise FetchError(f"{path}: not valid JSON ({e}); expected {{\"username\": ..., \"key\": ...}} as "
                         "downloaded from kaggle.com > Settings > API") from None
    missing = [k for k in ("username", "key") if not (isinstance(config, dict) and config.get(k))
               and not os.environ.get(f"KAGGLE_{k.upper()}")]
    if missing:
        raise FetchError(f"{path}: no {' and no '.join(repr(k) for k in missing)}; expected "
                         "{\"username\": ..., \"key\": ...} as downloaded from kaggle.com > Settings > API "
                         "(or use an access token in KAGGLE_API_TOKEN or ~/.kaggle/access_token)")
    return str(path)


def has_kaggle_credentials(home: Path | None = None) -> bool:
    """Whether Kaggle API credentials are configured in the environment or ~/.kaggle."""
    return kaggle_credentials(home) is not None


DOWNLOAD_TMP = ".download.partial"


def download_competition_files(kaggle_dir: Path, names: tuple[str, ...] = (kf.SOLUTIONS_ZIP, kf.IMAGES_ZIP)) -> None:
    """Download training-set zips with the `kaggle` package.

    Each file is downloaded into kaggle_dir/.download.partial/ and moved into kaggle_dir only
    when complete, so an interrupted download never leaves a truncated zip under its name.

    Raises:
        FetchError: if the package is missing, authentication fails or the download fails.
    """
    try:
        # Importing kaggle authenticates at import time, so only import once credentials exist.
        from kaggle.api.kaggle_api_extended import KaggleApi
    except ImportError as e:
        raise FetchError(f"the 'kaggle' package is needed to download the data: {e}") from None
    tmp = kaggle_dir / DOWNLOAD_TMP
    tmp.mkdir(parents=True, exist_ok=True)
    api = KaggleApi()
    try:
        api.authenticate()
        for name in names:
            log.info("downloading %s from Kaggle competition %s", name, kf.COMPETITION)
            api.competition_download_file(kf.COMPETITION, name, path=str(tmp), quiet=False)
            if not (tmp / name).is_file():
                found = sorted(p.name for p in tmp.iterdir())
                raise FetchError(f"Kaggle download of {name} into {tmp} gave {found}; expected {name}")
            os.replace(tmp / name, kaggle_dir / name)
    except FetchError:
        raise
    except SystemExit as e:  # the kaggle package calls exit(1) when it finds no usable credentials
        raise FetchError(f"Kaggle API authentication failed (the kaggle package exited with status {e.code}); "
                         "check the credentials\n" + missing_files_message(kaggle_dir)) from None
    except Exception as e:  # the client raises many unrelated types (HTTP, IO, auth)
        raise FetchError(f"Kaggle download into {kaggle_dir} failed: {e}\n"
                         + missing_files_message(kaggle_dir)) from None
    try:
        tmp.rmdir()
    except OSError:
        pass  # something else is in there: leave it to the user


def _find_image_dir(root: Path) -> Path | None:
    for name in IMAGE_DIR_ALIASES:
        if (root / name).is_dir():
            return root / name
    return None


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _is_metadata(name: str) -> bool:
    """macOS archive metadata (__MACOSX/, ._ AppleDouble files) and other hidden files."""
    path = PurePosixPath(name.replace("\\", "/"))
    return "__MACOSX" in path.parts or path.name.startswith(".")


def image_name(name: str) -> str | None:
    """The data/raw file name of an image: <stem>.jpg for any case of .jpg, else None."""
    base = PurePosixPath(name.replace("\\", "/")).name
    if _is_metadata(name) or not base.lower().endswith(".jpg") or len(base) <= 4:
        return None
    return base[:-4] + ".jpg"


class _Names:
    """Output names taken so far, to refuse two different sources landing on one file."""

    def __init__(self, where: Path):
        self.where, self.sources = where, {}

    def claim(self, target: str, source: str, same_as) -> bool:
        """Whether to write `target` from `source`; False for an identical duplicate (skipped)."""
        if target not in self.sources:
            self.sources[target] = source
            return True
        if same_as(self.sources[target]):
            log.warning("%s: %s is identical to %s; imported once", self.where, source, self.sources[target])
            return False
        raise FetchError(f"{self.where}: {self.sources[target]!r} and {source!r} would both be imported as "
                         f"{target} but differ; expected one file per GalaxyID (remove one of them)")


def _same_member(infos: dict[str, zipfile.ZipInfo], info: zipfile.ZipInfo, other: str) -> bool:
    return (infos[other].CRC, infos[other].file_size) == (info.CRC, info.file_size)


def _same_file(folder: Path, path: str, other: str) -> bool:
    return filecmp.cmp(folder / other, path, shallow=False)


def _truncated(path: Path, e: Exception) -> FetchError:
    return FetchError(f"{path}: not a readable zip file ({e}); it is probably truncated or incomplete (e.g. an "
                      f"interrupted download): delete {path} so that fetch downloads it again, or replace it with "
                      "a complete copy")


def _extract_members(zf: zipfile.ZipFile, zip_path: Path, rename, dst: Path) -> int:
    """Extract the members `rename` maps to an output name (flattening folders) into dst; return count."""
    n = 0
    names = _Names(zip_path)
    try:
        infos = {info.filename: info for info in zf.infolist()}
        for info in progress(infos.values(), desc=f"extracting {zip_path.name}", total=len(infos), unit="file"):
            target = None if info.is_dir() else rename(info.filename)
            if target is None:
                continue
            if not names.claim(target, info.filename, partial(_same_member, infos, info)):
                continue
            with zf.open(info) as src, (dst / target).open("wb") as out:
                shutil.copyfileobj(src, out)
            n += 1
    except (zipfile.BadZipFile, EOFError, zlib.error) as e:
        raise _truncated(zip_path, e) from None
    except OSError as e:
        raise FetchError(f"{zip_path}: cannot extract ({e})") from None
    return n


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError) as e:
        raise _truncated(path, e) from None
    except OSError as e:
        raise FetchError(f"{path}: cannot open the zip file ({e})") from None


def import_kaggle(kaggle_dir: Path, out_dir: Path, download: bool = True) -> dict:
    """Lay out the real Kaggle training set in out_dir from kaggle_dir.

    Accepts the extracted folder + CSV, or the two Kaggle zips; if neither is present and
    credentials exist, downloads the missing zips first. Extracted images are hard-linked where
    possible so the 2 GB of JPEGs are not copied. Image names match .jpg in any case and are
    written as <GalaxyID>.jpg; macOS metadata (__MACOSX/, ._ files) and hidden files are skipped.

    Returns:
        Counts of what was imported and from which form.

    Raises:
        FetchError: naming the missing files and where to put them, a truncated zip, two
            different files for one image name, or a source overlapping out_dir.
    """
    kaggle_dir, out_dir = Path(kaggle_dir), Path(out_dir)
    check_separate(kaggle_dir, out_dir)
    csv_src, img_src = kaggle_dir / kf.SOLUTIONS_CSV, _find_image_dir(kaggle_dir)
    csv_zip, img_zip = kaggle_dir / kf.SOLUTIONS_ZIP, kaggle_dir / kf.IMAGES_ZIP
    have_csv = csv_src.is_file() or csv_zip.is_file()
    have_img = img_src is not None or img_zip.is_file()
    if not (have_csv and have_img):
        if download and has_kaggle_credentials():
            download_competition_files(kaggle_dir, tuple(name for name, have in
                                                         ((kf.SOLUTIONS_ZIP, have_csv), (kf.IMAGES_ZIP, have_img))
                                                         if not have))
        else:
            raise FetchError(missing_files_message(kaggle_dir))
    out_images = out_dir / kf.IMAGES_DIR
    out_images.mkdir(parents=True, exist_ok=True)

    if csv_src.is_file():
        shutil.copy2(csv_src, out_dir / kf.SOLUTIONS_CSV)
        csv_form = "csv"
    else:
        with _open_zip(csv_zip) as zf:
            def csv_name(name: str) -> str | None:
                return kf.SOLUTIONS_CSV if PurePosixPath(name).name == kf.SOLUTIONS_CSV \
                    and not _is_metadata(name) else None
            if _extract_members(zf, csv_zip, csv_name, out_dir) != 1:
                raise FetchError(f"{csv_zip}: expected exactly one {kf.SOLUTIONS_CSV} inside")
        csv_form = "zip"

    if img_src is not None:
        n_images = 0
        names = _Names(img_src)
        for entry in progress(sorted(os.scandir(img_src), key=lambda e: e.name), desc="importing images",
                              unit="file"):
            target = image_name(entry.name)
            if target is None or not entry.is_file():
                continue
            if names.claim(target, entry.name, partial(_same_file, img_src, entry.path)):
                _link_or_copy(Path(entry.path), out_images / target)
                n_images += 1
        img_form = "folder"
    else:
        with _open_zip(img_zip) as zf:
            n_images = _extract_members(zf, img_zip, image_name, out_images)
        img_form = "zip"
    if n_images == 0:
        raise FetchError(f"no .jpg images found in the Kaggle image source under {kaggle_dir}")
    log.info("imported %d images (%s) and the solutions CSV (%s) from %s", n_images, img_form, csv_form,
             kaggle_dir)
    return {"source": "kaggle", "n_images": n_images, "images_from": img_form, "csv_from": csv_form}


def write_manifest(out_dir: Path, info: dict) -> None:
    """Record where data/raw came from, beside the Kaggle files."""
    write_json(Path(out_dir) / paths.SOURCE_NAME, info)
