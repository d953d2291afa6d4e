"""Validate the Kaggle solutions CSV and images, and label galaxies by vote agreement."""

from __future__ import annotations

import csv
import logging
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cosmic import kaggle_format as kf
from cosmic.imageops import ImageError, open_rgb

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = (kf.ID_COLUMN, "Class1.1", "Class1.2")
Q1_COLUMNS = ("Class1.1", "Class1.2", "Class1.3")
CATALOG_COLUMNS = ("GalaxyID", "label", "class_name", *Q1_COLUMNS, "image_path")
DROP_REASONS = ("bad_id", "duplicate_id", "non_numeric", "nan", "out_of_range",
                "missing_image", "unreadable_image", "not_rgb", "wrong_size")


class CatalogError(ValueError):
    """The solutions CSV or the filtered catalogue cannot be used at all."""


@dataclass
class FilterResult:
    """The labelled manifest, the valid rows it came from, the dropped rows, and counts."""

    catalog: pd.DataFrame
    valid: pd.DataFrame
    dropped: pd.DataFrame
    counts: dict = field(default_factory=dict)


def read_solutions(path: Path) -> tuple[pd.DataFrame, dict]:
    """Read the solutions CSV as strings and check its structure.

    Returns:
        The raw table (all cells as strings) and column warnings (missing optional / extra columns).

    Raises:
        CatalogError: naming the file, if it is missing, empty, has no header or lacks
            GalaxyID / Class1.1 / Class1.2.
    """
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"{path}: solutions CSV not found")
    with path.open(newline="") as f:
        header = next(csv.reader(f), None)
    if not header or all(not h.strip() for h in header):
        raise CatalogError(f"{path}: file is empty; expected a header starting with '{kf.ID_COLUMN}'")
    header = [h.strip() for h in header]
    missing_required = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing_required:
        looks_numeric = all(_is_number(h) for h in header if h)
        hint = " (the first line looks like data: the header row is missing)" if looks_numeric else ""
        raise CatalogError(f"{path}: required column(s) {', '.join(missing_required)} not in header "
                           f"{header[:4]}{'...' if len(header) > 4 else ''}{hint}")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise CatalogError(f"{path}: duplicate column name(s) {', '.join(dupes)}")
    table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    table.columns = header
    if table.empty:
        raise CatalogError(f"{path}: header only, no data rows")
    warnings = {
        "missing_columns": [c for c in kf.CLASS_COLUMNS if c not in header],
        "extra_columns": [c for c in header if c not in kf.ALL_COLUMNS],
    }
    for kind, cols in warnings.items():
        if cols:
            log.warning("%s: %s %s", path, kind.replace("_", " "), ", ".join(cols))
    return table, warnings


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def validate_rows(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split the raw table into valid numeric rows and dropped rows with a reason.

    Checks the GalaxyID (positive integer, unique) and every vote-fraction column present
    (numeric, not NaN, within [0, 1]). Rows sharing a GalaxyID are all dropped: there is no
    way to tell which copy is right.

    Returns:
        (valid, dropped): valid has GalaxyID int64 and float fraction columns; dropped has
        columns row (1-based CSV line), GalaxyID, reason, detail.
    """
    value_cols = [c for c in kf.CLASS_COLUMNS if c in table.columns]
    drops: list[dict] = []
    line = np.arange(len(table)) + 2  # header is line 1

    ids = pd.to_numeric(table[kf.ID_COLUMN].str.strip(), errors="coerce")
    bad_id = ids.isna() | (ids <= 0) | (ids != np.floor(ids))
    values = table[value_cols].apply(lambda s: pd.to_numeric(s.str.strip(), errors="coerce"))
    raw_blank_or_nan = table[value_cols].apply(lambda s: s.str.strip().str.lower().isin(["", "nan", "na"]))
    non_numeric = values.isna() & ~raw_blank_or_nan
    is_nan = raw_blank_or_nan
    out_of_range = (values < 0) | (values > 1)

    reason = pd.Series("", index=table.index)
    detail = pd.Series("", index=table.index)

    def mark(mask: pd.Series, name: str, describe) -> None:
        new = mask & (reason == "")
        reason[new] = name
        for i in np.flatnonzero(new.to_numpy()):
            detail.iloc[i] = describe(i)

    mark(bad_id, "bad_id", lambda i: f"GalaxyID {table[kf.ID_COLUMN].iloc[i]!r} is not a positive integer")

    def first_bad(frame: pd.DataFrame, i: int) -> str:
        col = frame.columns[np.flatnonzero(frame.iloc[i].to_numpy())[0]]
        return f"{col}={table[col].iloc[i]!r}"

    mark(non_numeric.any(axis=1), "non_numeric", lambda i: first_bad(non_numeric, i) + " is not a number")
    mark(is_nan.any(axis=1), "nan", lambda i: first_bad(is_nan, i) + " is missing/NaN")
    mark(out_of_range.any(axis=1), "out_of_range", lambda i: first_bad(out_of_range, i) + " is outside [0, 1]")

    dup = ids.duplicated(keep=False) & ids.notna()
    mark(dup, "duplicate_id", lambda i: f"GalaxyID {int(ids.iloc[i])} appears more than once")

    bad = reason != ""
    for i in np.flatnonzero(bad.to_numpy()):
        drops.append({"row": int(line[i]), "GalaxyID": table[kf.ID_COLUMN].iloc[i],
                      "reason": reason.iloc[i], "detail": detail.iloc[i]})
    valid = values[~bad].copy()
    valid.insert(0, kf.ID_COLUMN, ids[~bad].astype(np.int64))
    valid["row"] = line[~bad.to_numpy()]
    return valid.reset_index(drop=True), pd.DataFrame(drops, columns=["row", "GalaxyID", "reason", "detail"])


def assign_labels(valid: pd.DataFrame, threshold: float, class_names: tuple[str, str]) -> pd.DataFrame:
    """Label rows whose Q1 agreement exceeds the threshold; others get label -1.

    Elliptical (0) when Class1.1 > threshold, spiral (1) when Class1.2 > threshold; with a
    threshold >= 0.5 a row cannot be both. Star/artifact (Class1.3) rows are never labelled.
    """
    out = valid.copy()
    out["label"] = -1
    out.loc[out["Class1.1"] > threshold, "label"] = 0
    out.loc[out["Class1.2"] > threshold, "label"] = 1
    out["class_name"] = out["label"].map({0: class_names[0], 1: class_names[1]}).fillna("")
    return out


def check_image(path: str) -> tuple[str, str]:
    """Decode one image; return (reason, detail), reason "" when it is a usable 424x424 RGB image."""
    if not Path(path).is_file():
        return "missing_image", f"{path} does not exist"
    try:
        img = open_rgb(path)
    except ImageError as e:
        return ("not_rgb" if "mode" in str(e) else "unreadable_image"), str(e)
    if img.size != (kf.IMAGE_SIZE, kf.IMAGE_SIZE):
        return "wrong_size", f"{path}: size {img.size[0]}x{img.size[1]}, expected {kf.IMAGE_SIZE}x{kf.IMAGE_SIZE}"
    return "", ""


def check_images(paths: list[str], decode: bool, workers: int = 2) -> list[tuple[str, str]]:
    """Check many images (existence only, or a full decode in parallel)."""
    if not decode:
        return [("", "") if Path(p).is_file() else ("missing_image", f"{p} does not exist") for p in paths]
    if workers <= 1 or len(paths) < 64:
        return [check_image(p) for p in paths]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(check_image, paths, chunksize=64))


def build_catalog(raw_dir: Path, threshold: float, class_names: tuple[str, str], on_invalid: str = "drop",
                  decode_images: bool = True, workers: int = 2) -> FilterResult:
    """Validate data/raw and build the labelled manifest.

    Every row-level problem drops the row with its reason; with on_invalid="error" the
    first problems stop the stage instead. Images are checked for labelled rows only: the
    others never reach training.

    Raises:
        CatalogError: structural problems, invalid rows under on_invalid="error", or an empty class.
    """
    raw_dir = Path(raw_dir)
    csv_path = raw_dir / kf.SOLUTIONS_CSV
    table, col_warnings = read_solutions(csv_path)
    if on_invalid == "error" and col_warnings["missing_columns"]:
        raise CatalogError(f"{csv_path}: missing column(s) {', '.join(col_warnings['missing_columns'])}")
    valid, dropped = validate_rows(table)
    labelled = assign_labels(valid, threshold, class_names)
    candidates = labelled[labelled["label"] >= 0].copy()
    candidates["image_path"] = [str(raw_dir / kf.IMAGES_DIR / f"{g}.jpg") for g in candidates[kf.ID_COLUMN]]
    checks = check_images(candidates["image_path"].tolist(), decode_images, workers)
    image_bad = np.array([r != "" for r, _ in checks], dtype=bool)
    image_drops = pd.DataFrame(
        [{"row": int(r), "GalaxyID": str(g), "reason": c[0], "detail": c[1]}
         for r, g, c, b in zip(candidates["row"], candidates[kf.ID_COLUMN], checks, image_bad) if b],
        columns=dropped.columns,
    )
    dropped = pd.concat([dropped, image_drops], ignore_index=True) if len(image_drops) else dropped
    if on_invalid == "error" and len(dropped):
        head = "\n".join(f"  line {d.row}: {d.reason}: {d.detail}" for d in dropped.head(10).itertuples())
        raise CatalogError(f"{csv_path}: {len(dropped)} invalid row(s) (filter.on_invalid=error):\n{head}")
    catalog = candidates[~image_bad]
    catalog = catalog[list(CATALOG_COLUMNS)].sort_values(kf.ID_COLUMN).reset_index(drop=True)

    per_class = {name: int((catalog["label"] == i).sum()) for i, name in enumerate(class_names)}
    empty = [name for name, n in per_class.items() if n == 0]
    if empty:
        raise CatalogError(f"{csv_path}: no '{', '.join(empty)}' galaxies left after filtering at threshold "
                           f"{threshold} ({len(catalog)} kept of {len(table)} rows); lower filter.threshold "
                           "or check the data")
    by_reason = {r: int((dropped["reason"] == r).sum()) for r in DROP_REASONS}
    # Q1 answers are exclusive above a 0.5 threshold, so unlabelled = artifact + ambiguous.
    n_artifact = int((labelled["Class1.3"] > threshold).sum()) if "Class1.3" in labelled else 0
    n_unlabelled = int((labelled["label"] < 0).sum())
    counts = {
        "n_rows": int(len(table)),
        "n_valid_rows": int(len(valid)),
        "n_dropped": int(len(dropped)),
        "dropped": by_reason,
        "n_artifact": n_artifact,
        "n_ambiguous": n_unlabelled - n_artifact,
        "n_kept": int(len(catalog)),
        "kept_fraction": round(len(catalog) / len(table), 6),
        "per_class": per_class,
        "threshold": threshold,
        **col_warnings,
    }
    log.info("filter: %d rows, %d dropped %s, %d kept (%s)", len(table), len(dropped),
             {k: v for k, v in by_reason.items() if v}, len(catalog), per_class)
    return FilterResult(catalog, valid, dropped, counts)
