"""Put the Kaggle-format training set in data/raw: from the synthetic generator or the real files."""

from __future__ import annotations

import json
import logging
import os
import shutil
import zipfile
from pathlib import Path

from cosmic import kaggle_format as kf

log = logging.getLogger(__name__)

# Older scripts and mirrors name the image folder differently.
IMAGE_DIR_ALIASES = (kf.IMAGES_DIR, "images_train_rev1")


class FetchError(RuntimeError):
    """The Kaggle files cannot be found, downloaded or unpacked."""


def missing_files_message(kaggle_dir: Path) -> str:
    """Explain exactly which files to put where for `fetch.source: kaggle`."""
    return (
        f"Galaxy Zoo files not found in {kaggle_dir}/. Put either the two Kaggle zips\n"
        f"  {kaggle_dir}/{kf.IMAGES_ZIP}\n  {kaggle_dir}/{kf.SOLUTIONS_ZIP}\n"
        f"or the extracted files\n  {kaggle_dir}/{kf.IMAGES_DIR}/<GalaxyID>.jpg\n"
        f"  {kaggle_dir}/{kf.SOLUTIONS_CSV}\n"
        f"there (from https://www.kaggle.com/c/{kf.COMPETITION}/data), or set up Kaggle API "
        "credentials (~/.kaggle/kaggle.json or KAGGLE_USERNAME/KAGGLE_KEY) and accept the "
        "competition rules so fetch can download them."
    )


def has_kaggle_credentials(home: Path | None = None) -> bool:
    """Whether Kaggle API credentials are configured in the environment or ~/.kaggle."""
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return True
    config_dir = Path(os.environ.get("KAGGLE_CONFIG_DIR", (home or Path.home()) / ".kaggle"))
    return (config_dir / "kaggle.json").is_file()


def download_competition_files(kaggle_dir: Path) -> None:
    """Download the two training-set zips with the `kaggle` package.

    Raises:
        FetchError: if the package is missing or the download fails.
    """
    try:
        # Importing kaggle authenticates at import time, so only import once credentials exist.
        from kaggle.api.kaggle_api_extended import KaggleApi
    except ImportError as e:
        raise FetchError(f"the 'kaggle' package is needed to download the data: {e}") from None
    kaggle_dir.mkdir(parents=True, exist_ok=True)
    api = KaggleApi()
    try:
        api.authenticate()
        for name in (kf.SOLUTIONS_ZIP, kf.IMAGES_ZIP):
            log.info("downloading %s from Kaggle competition %s", name, kf.COMPETITION)
            api.competition_download_file(kf.COMPETITION, name, path=str(kaggle_dir), quiet=False)
    except Exception as e:  # the client raises many unrelated types (HTTP, IO, auth)
        raise FetchError(f"Kaggle download into {kaggle_dir} failed: {e}\n"
                         + missing_files_message(kaggle_dir)) from None


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


def _extract_member(zf: zipfile.ZipFile, zip_path: Path, suffix: str, dst: Path) -> int:
    """Extract members whose name ends with `suffix` (flattening folders) into dst; return count."""
    n = 0
    try:
        for info in zf.infolist():
            if info.is_dir() or not info.filename.endswith(suffix):
                continue
            target = dst / Path(info.filename).name
            with zf.open(info) as src, target.open("wb") as out:
                shutil.copyfileobj(src, out)
            n += 1
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise FetchError(f"{zip_path}: cannot extract ({e})") from None
    return n


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise FetchError(f"{path}: not a readable zip file ({e})") from None


def import_kaggle(kaggle_dir: Path, out_dir: Path, download: bool = True) -> dict:
    """Lay out the real Kaggle training set in out_dir from kaggle_dir.

    Accepts the extracted folder + CSV, or the two Kaggle zips; if neither is present and
    credentials exist, downloads the zips first. Extracted images are hard-linked where
    possible so the 2 GB of JPEGs are not copied.

    Returns:
        Counts of what was imported and from which form.

    Raises:
        FetchError: naming the missing files and where to put them.
    """
    kaggle_dir, out_dir = Path(kaggle_dir), Path(out_dir)
    csv_src, img_src = kaggle_dir / kf.SOLUTIONS_CSV, _find_image_dir(kaggle_dir)
    csv_zip, img_zip = kaggle_dir / kf.SOLUTIONS_ZIP, kaggle_dir / kf.IMAGES_ZIP
    have_csv = csv_src.is_file() or csv_zip.is_file()
    have_img = img_src is not None or img_zip.is_file()
    if not (have_csv and have_img):
        if download and has_kaggle_credentials():
            download_competition_files(kaggle_dir)
        else:
            raise FetchError(missing_files_message(kaggle_dir))
    out_images = out_dir / kf.IMAGES_DIR
    out_images.mkdir(parents=True, exist_ok=True)

    if csv_src.is_file():
        shutil.copy2(csv_src, out_dir / kf.SOLUTIONS_CSV)
        csv_form = "csv"
    else:
        with _open_zip(csv_zip) as zf:
            if _extract_member(zf, csv_zip, kf.SOLUTIONS_CSV, out_dir) != 1:
                raise FetchError(f"{csv_zip}: expected exactly one {kf.SOLUTIONS_CSV} inside")
        csv_form = "zip"

    if img_src is not None:
        n_images = 0
        for entry in os.scandir(img_src):
            if entry.is_file() and entry.name.lower().endswith(".jpg"):
                _link_or_copy(Path(entry.path), out_images / entry.name)
                n_images += 1
        img_form = "folder"
    else:
        with _open_zip(img_zip) as zf:
            n_images = _extract_member(zf, img_zip, ".jpg", out_images)
        img_form = "zip"
    if n_images == 0:
        raise FetchError(f"no .jpg images found in the Kaggle image source under {kaggle_dir}")
    log.info("imported %d images (%s) and the solutions CSV (%s) from %s", n_images, img_form, csv_form,
             kaggle_dir)
    return {"source": "kaggle", "n_images": n_images, "images_from": img_form, "csv_from": csv_form}


def write_manifest(out_dir: Path, info: dict) -> None:
    """Record where data/raw came from, beside the Kaggle files."""
    (Path(out_dir) / "SOURCE.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
