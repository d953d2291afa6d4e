"""Validate the Kaggle solutions CSV and images, and label galaxies by vote agreement."""

from __future__ import annotations

import csv
import io
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cosmic.data import kaggle_format as kf
from cosmic.data.imageops import ImageError, ImageTooLargeError, NotRGBError, open_rgb
from cosmic.utils import StageError, follow_parent, progress

log = logging.getLogger(__name__)

# Class1.3 is required too: the Q1 consistency check and the catalogue need all three Q1 answers.
REQUIRED_COLUMNS = (kf.ID_COLUMN, "Class1.1", "Class1.2", "Class1.3")
Q1_COLUMNS = ("Class1.1", "Class1.2", "Class1.3")
CATALOG_COLUMNS = ("GalaxyID", "label", "class_name", *Q1_COLUMNS, "image_path")
DROP_REASONS = ("wrong_field_count", "bad_id", "duplicate_id", "non_numeric", "nan", "out_of_range",
                "q1_sum", "missing_image", "unreadable_image", "not_rgb", "wrong_size")
# Q1's three answers are fractions of the same votes, so they sum to 1; Kaggle's 6-decimal values
# are within 2e-6 of it, and 0.01 still accepts fractions rounded to two decimals.
Q1_TOLERANCE = 0.01
MAX_ID = np.iinfo(np.int64).max
DROP_COLUMNS = ["row", "GalaxyID", "reason", "detail"]


class CatalogError(StageError, ValueError):
    """The solutions CSV or the filtered catalogue cannot be used at all."""


@dataclass
class FilterResult:
    """The labelled manifest, the valid rows it came from, the dropped rows, and counts."""

    catalog: pd.DataFrame
    valid: pd.DataFrame
    dropped: pd.DataFrame
    counts: dict = field(default_factory=dict)


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark that is not part of the header.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise CatalogError(f"{path}: line {line}: bytes {data[e.start:e.end]!r} are not UTF-8; expected a UTF-8 "
                           "text file (re-save it as UTF-8, e.g. Excel's 'CSV UTF-8')") from None


def read_solutions(path: Path) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """Read the solutions CSV as strings and check its structure.

    Blank lines are skipped; a record whose field count differs from the header's is not
    parsed (its columns cannot be trusted) but returned as a drop.

    Returns:
        (table, warnings, malformed): the raw table, all cells as strings, indexed by each
        record's physical line number in the file; column warnings (missing optional / extra
        columns); and the dropped records with a wrong field count (columns `DROP_COLUMNS`).

    Raises:
        CatalogError: naming the file, if it is missing, not UTF-8, not parseable CSV, empty,
            has no header, lacks GalaxyID / Class1.1 / Class1.2 / Class1.3, or has no data rows.
    """
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"{path}: solutions CSV not found")
    reader = csv.reader(io.StringIO(_decode(path), newline=""), skipinitialspace=True)
    header, records, lines, malformed = None, [], [], []
    try:
        while True:
            start = reader.line_num + 1  # a record may span lines (quoted newlines): report its first
            record = next(reader, None)
            if record is None:
                break
            if len(record) <= 1 and not "".join(record).strip():
                continue  # blank line
            if header is None:
                header = [h.strip() for h in record]
            elif len(record) != len(header):
                malformed.append({"row": start, "GalaxyID": record[0].strip(), "reason": "wrong_field_count",
                                  "detail": f"{len(record)} fields, expected {len(header)} as in the header"})
            else:
                records.append(record)
                lines.append(start)
    except csv.Error as e:
        raise CatalogError(f"{path}: line {reader.line_num}: not parseable as CSV ({e})") from None
    if header is None or all(not h for h in header):
        raise CatalogError(f"{path}: file is empty; expected a header starting with '{kf.ID_COLUMN}'")
    missing_required = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing_required:
        looks_numeric = all(_is_number(h) for h in header if h)
        hint = " (the first line looks like data: the header row is missing)" if looks_numeric else ""
        raise CatalogError(f"{path}: required column(s) {', '.join(missing_required)} not in header "
                           f"{header[:4]}{'...' if len(header) > 4 else ''}{hint}")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise CatalogError(f"{path}: duplicate column name(s) {', '.join(dupes)}")
    if not records:
        if malformed:
            first = malformed[0]
            raise CatalogError(f"{path}: no well-formed data row: all {len(malformed)} have a wrong number of "
                               f"fields (line {first['row']}: {first['detail']})")
        raise CatalogError(f"{path}: header only, no data rows")
    table = pd.DataFrame(records, columns=header, index=pd.Index(lines, name="line"), dtype=str)
    warnings = {
        "missing_columns": [c for c in kf.CLASS_COLUMNS if c not in header],
        "extra_columns": [c for c in header if c not in kf.ALL_COLUMNS],
    }
    for kind, cols in warnings.items():
        if cols:
            log.warning("%s: %s %s", path, kind.replace("_", " "), ", ".join(cols))
    return table, warnings, pd.DataFrame(malformed, columns=DROP_COLUMNS)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_id(text: str) -> int | None:
    """A GalaxyID cell as a positive int64, or None (not a number, not whole, <= 0 or too large)."""
    text = text.strip()
    if text.lstrip("+").isdigit():
        value = int(text)  # exact, also beyond the float range
    else:
        try:
            number = float(text)
        except ValueError:
            return None
        if not number.is_integer():  # also NaN and +-inf
            return None
        value = int(number)
    return value if 1 <= value <= MAX_ID else None


def validate_rows(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split the raw table into valid numeric rows and dropped rows with a reason.

    Checks the GalaxyID (positive int64, unique), every vote-fraction column present
    (numeric, not NaN, within [0, 1]) and that Q1's answers sum to 1 within `Q1_TOLERANCE`.
    Rows sharing a GalaxyID are all dropped: there is no way to tell which copy is right.

    Args:
        table: from `read_solutions`, indexed by CSV line number.

    Returns:
        (valid, dropped): valid has GalaxyID int64 and float fraction columns; dropped has
        columns row (CSV line), GalaxyID, reason, detail.
    """
    value_cols = [c for c in kf.CLASS_COLUMNS if c in table.columns]
    drops: list[dict] = []
    line = table.index.to_numpy()

    ids = pd.Series([parse_id(x) for x in table[kf.ID_COLUMN]], index=table.index, dtype=object)
    bad_id = ids.isna()
    values = table[value_cols].apply(lambda s: pd.to_numeric(s.str.strip(), errors="coerce"))
    raw_blank_or_nan = table[value_cols].apply(lambda s: s.str.strip().str.lower().isin(["", "nan", "na"]))
    non_numeric = values.isna() & ~raw_blank_or_nan
    is_nan = raw_blank_or_nan
    out_of_range = (values < 0) | (values > 1)
    q1_sum = values[list(Q1_COLUMNS)].sum(axis=1, skipna=False)
    full = np.zeros((len(table), len(kf.CLASS_COLUMNS)))
    for c in Q1_COLUMNS:
        full[:, kf.CLASS_COLUMNS.index(c)] = values[c].to_numpy(np.float64)
    q1_bad = pd.Series(kf.constraint_residuals(full)[:, 0] > Q1_TOLERANCE, index=table.index)

    reason = pd.Series("", index=table.index)
    detail = pd.Series("", index=table.index)

    def mark(mask: pd.Series, name: str, describe) -> None:
        new = mask & (reason == "")
        reason[new] = name
        for i in np.flatnonzero(new.to_numpy()):
            detail.iloc[i] = describe(i)

    mark(bad_id, "bad_id",
         lambda i: f"GalaxyID {table[kf.ID_COLUMN].iloc[i]!r} is not an integer in [1, {MAX_ID}]")

    def first_bad(frame: pd.DataFrame, i: int) -> str:
        col = frame.columns[np.flatnonzero(frame.iloc[i].to_numpy())[0]]
        return f"{col}={table[col].iloc[i]!r}"

    mark(non_numeric.any(axis=1), "non_numeric", lambda i: first_bad(non_numeric, i) + " is not a number")
    mark(is_nan.any(axis=1), "nan", lambda i: first_bad(is_nan, i) + " is missing/NaN")
    mark(out_of_range.any(axis=1), "out_of_range", lambda i: first_bad(out_of_range, i) + " is outside [0, 1]")
    mark(q1_bad, "q1_sum", lambda i: f"Class1.1+Class1.2+Class1.3 = {q1_sum.iloc[i]:.6g}; the Q1 answers must "
                                     f"sum to 1 (tolerance {Q1_TOLERANCE})")

    dup = ids.duplicated(keep=False) & ids.notna()
    mark(dup, "duplicate_id", lambda i: f"GalaxyID {int(ids.iloc[i])} appears more than once")

    bad = reason != ""
    for i in np.flatnonzero(bad.to_numpy()):
        drops.append({"row": int(line[i]), "GalaxyID": table[kf.ID_COLUMN].iloc[i],
                      "reason": reason.iloc[i], "detail": detail.iloc[i]})
    valid = values[~bad].copy()
    valid.insert(0, kf.ID_COLUMN, ids[~bad].astype(np.int64))
    valid["row"] = line[~bad.to_numpy()]
    return valid.reset_index(drop=True), pd.DataFrame(drops, columns=DROP_COLUMNS)


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
    expected = f"expected {kf.IMAGE_SIZE}x{kf.IMAGE_SIZE}"
    try:
        img = open_rgb(path)
    except NotRGBError as e:
        return "not_rgb", str(e)
    except ImageTooLargeError as e:
        return "wrong_size", f"{e}; {expected}"
    except ImageError as e:
        return "unreadable_image", str(e)
    if img.size != (kf.IMAGE_SIZE, kf.IMAGE_SIZE):
        return "wrong_size", f"{path}: size {img.size[0]}x{img.size[1]}, {expected}"
    return "", ""


def check_images(paths: list[str], decode: bool, workers: int = 2) -> list[tuple[str, str]]:
    """Check many images (existence only, or a full decode in parallel)."""
    if not decode:
        return [("", "") if Path(p).is_file() else ("missing_image", f"{p} does not exist") for p in paths]
    if workers <= 1 or len(paths) < 64:
        return [check_image(p) for p in progress(paths, desc="checking images")]
    with ProcessPoolExecutor(workers, initializer=follow_parent, initargs=(os.getpid(),)) as pool:
        return list(progress(pool.map(check_image, paths, chunksize=64), desc="checking images", total=len(paths)))


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
    table, col_warnings, malformed = read_solutions(csv_path)
    if on_invalid == "error" and col_warnings["missing_columns"]:
        raise CatalogError(f"{csv_path}: missing column(s) {', '.join(col_warnings['missing_columns'])}")
    valid, dropped = validate_rows(table)
    if len(malformed):  # in file order with the other row problems
        parts = [d for d in (malformed, dropped) if len(d)]
        dropped = pd.concat(parts, ignore_index=True).sort_values("row", kind="stable", ignore_index=True)
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

    n_rows = len(table) + len(malformed)
    per_class = {name: int((catalog["label"] == i).sum()) for i, name in enumerate(class_names)}
    empty = [name for name, n in per_class.items() if n == 0]
    if empty:
        raise CatalogError(f"{csv_path}: no '{', '.join(empty)}' galaxies left after filtering at threshold "
                           f"{threshold} ({len(catalog)} kept of {n_rows} rows); lower filter.threshold "
                           "or check the data")
    by_reason = {r: int((dropped["reason"] == r).sum()) for r in DROP_REASONS}
    # Q1 answers are exclusive above a 0.5 threshold, so unlabelled = artifact + ambiguous.
    n_artifact = int((labelled["Class1.3"] > threshold).sum()) if "Class1.3" in labelled else 0
    n_unlabelled = int((labelled["label"] < 0).sum())
    counts = {
        "n_rows": int(n_rows),
        "n_valid_rows": int(len(valid)),
        "n_dropped": int(len(dropped)),
        "dropped": by_reason,
        "n_artifact": n_artifact,
        "n_ambiguous": n_unlabelled - n_artifact,
        "n_kept": int(len(catalog)),
        "kept_fraction": round(len(catalog) / n_rows, 6),
        "per_class": per_class,
        "threshold": threshold,
        **col_warnings,
    }
    log.info("filter: %d rows, %d dropped %s, %d kept (%s)", n_rows, len(dropped),
             {k: v for k, v in by_reason.items() if v}, len(catalog), per_class)
    return FilterResult(catalog, valid, dropped, counts)
