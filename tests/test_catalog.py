"""filter: CSV validation, row drops counted by reason, labels, and structural errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cosmic import kaggle_format as kf
from cosmic.catalog import CatalogError, assign_labels, build_catalog, read_solutions
from tests.conftest import csv_lines, write_csv_lines

NAMES = ("elliptical", "spiral")


def _row_of(lines: list[str], galaxy_id: str) -> int:
    return next(i for i, line in enumerate(lines) if line.startswith(galaxy_id + ","))


def _labelled_ids(root, threshold=0.8) -> list[str]:
    table = pd.read_csv(root / kf.SOLUTIONS_CSV)
    keep = (table["Class1.1"] > threshold) | (table["Class1.2"] > threshold)
    return table.loc[keep, "GalaxyID"].astype(str).tolist()


def test_clean_data_keeps_every_confident_galaxy(kaggle_dir):
    result = build_catalog(kaggle_dir, 0.8, NAMES, workers=1)
    table = pd.read_csv(kaggle_dir / kf.SOLUTIONS_CSV)
    expected = table[(table["Class1.1"] > 0.8) | (table["Class1.2"] > 0.8)]
    assert len(result.catalog) == len(expected) == result.counts["n_kept"]
    assert result.counts["n_dropped"] == 0 and result.dropped.empty
    assert list(result.catalog.columns) == ["GalaxyID", "label", "class_name", "Class1.1", "Class1.2", "Class1.3",
                                            "image_path"]
    ell = result.catalog["label"] == 0
    assert (result.catalog.loc[ell, "Class1.1"] > 0.8).all()
    assert (result.catalog.loc[~ell, "Class1.2"] > 0.8).all()
    assert set(result.catalog["class_name"]) == set(NAMES)
    c = result.counts
    assert c["n_kept"] + c["n_ambiguous"] + c["n_artifact"] + c["n_dropped"] == c["n_rows"]


def test_row_problems_are_dropped_and_counted_by_reason(kaggle_dir):
    lines = csv_lines(kaggle_dir)
    ids = _labelled_ids(kaggle_dir)
    nan_id, text_id, range_id, trunc_id, missing_id, gray_id = ids[:6]
    header = lines[0].split(",")

    def edit(galaxy_id, column, value):
        i = _row_of(lines, galaxy_id)
        cells = lines[i].split(",")
        cells[header.index(column)] = value
        lines[i] = ",".join(cells)

    edit(nan_id, "Class1.2", "")
    edit(text_id, "Class2.1", "abc")
    edit(range_id, "Class1.3", "1.5")
    lines.append(lines[_row_of(lines, ids[6])])  # duplicate ID: both copies go
    write_csv_lines(kaggle_dir, lines)
    img_dir = kaggle_dir / kf.IMAGES_DIR
    data = (img_dir / f"{trunc_id}.jpg").read_bytes()
    (img_dir / f"{trunc_id}.jpg").write_bytes(data[: len(data) // 3])
    (img_dir / f"{missing_id}.jpg").unlink()
    Image.open(img_dir / f"{gray_id}.jpg").convert("L").save(img_dir / f"{gray_id}.jpg")

    result = build_catalog(kaggle_dir, 0.8, NAMES, workers=1)
    by_reason = result.counts["dropped"]
    assert by_reason["nan"] == 1 and by_reason["non_numeric"] == 1 and by_reason["out_of_range"] == 1
    assert by_reason["duplicate_id"] == 2
    assert by_reason["unreadable_image"] == 1 and by_reason["missing_image"] == 1 and by_reason["not_rgb"] == 1
    assert result.counts["n_dropped"] == 8 == len(result.dropped)
    dropped_ids = set(result.dropped["GalaxyID"].astype(str))
    assert {nan_id, text_id, range_id, trunc_id, missing_id, gray_id, ids[6]} <= dropped_ids
    assert not dropped_ids & set(result.catalog["GalaxyID"].astype(str))
    assert result.dropped.loc[result.dropped["reason"] == "non_numeric", "detail"].iloc[0] == \
        "Class2.1='abc' is not a number"
    assert str(kaggle_dir / kf.IMAGES_DIR / f"{trunc_id}.jpg") in \
        result.dropped.loc[result.dropped["reason"] == "unreadable_image", "detail"].iloc[0]


def test_on_invalid_error_stops_with_line_and_reason(kaggle_dir):
    lines = csv_lines(kaggle_dir)
    cells = lines[3].split(",")
    cells[1] = "nan"
    lines[3] = ",".join(cells)
    write_csv_lines(kaggle_dir, lines)
    with pytest.raises(CatalogError, match=r"line 4: nan: Class1.1='nan'"):
        build_catalog(kaggle_dir, 0.8, NAMES, on_invalid="error", workers=1)


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "file is empty"),
        ("100008,0.1,0.9,0.0\n", "header row is missing"),
        ("GalaxyID,Class1.1\n100008,0.9\n", "Class1.2 not in header"),
        (",".join(kf.ALL_COLUMNS) + "\n", "header only"),
    ],
)
def test_structural_problems_name_the_file(kaggle_dir, content, message):
    path = kaggle_dir / kf.SOLUTIONS_CSV
    path.write_text(content)
    with pytest.raises(CatalogError, match=message) as err:
        build_catalog(kaggle_dir, 0.8, NAMES, workers=1)
    assert str(path) in str(err.value)


def test_missing_csv_is_named(tmp_path):
    with pytest.raises(CatalogError, match="solutions CSV not found"):
        read_solutions(tmp_path / kf.SOLUTIONS_CSV)


def test_extra_and_missing_optional_columns_are_reported(kaggle_dir):
    table = pd.read_csv(kaggle_dir / kf.SOLUTIONS_CSV).drop(columns=["Class11.6"])
    table["Notes"] = "x"
    table.to_csv(kaggle_dir / kf.SOLUTIONS_CSV, index=False)
    result = build_catalog(kaggle_dir, 0.8, NAMES, workers=1)
    assert result.counts["missing_columns"] == ["Class11.6"]
    assert result.counts["extra_columns"] == ["Notes"]
    with pytest.raises(CatalogError, match="missing column"):
        build_catalog(kaggle_dir, 0.8, NAMES, on_invalid="error", workers=1)


def test_empty_class_is_an_error(kaggle_dir):
    table = pd.read_csv(kaggle_dir / kf.SOLUTIONS_CSV)
    table["Class1.2"] = np.minimum(table["Class1.2"], 0.5)
    table.to_csv(kaggle_dir / kf.SOLUTIONS_CSV, index=False)
    with pytest.raises(CatalogError, match="no 'spiral' galaxies left"):
        build_catalog(kaggle_dir, 0.8, NAMES, workers=1)


def test_threshold_is_strict_and_artifacts_excluded():
    valid = pd.DataFrame({"GalaxyID": [1, 2, 3, 4], "Class1.1": [0.8, 0.81, 0.0, 0.05],
                          "Class1.2": [0.2, 0.19, 0.05, 0.9], "Class1.3": [0.0, 0.0, 0.95, 0.05]})
    out = assign_labels(valid, 0.8, NAMES)
    assert out["label"].tolist() == [-1, 0, -1, 1]
    assert out["class_name"].tolist() == ["", "elliptical", "", "spiral"]


def test_truncated_jpeg_really_is_caught(kaggle_dir):
    """Guard the fixture itself: a third of a JPEG must not decode."""
    from cosmic.imageops import ImageError, open_rgb

    path = next((kaggle_dir / kf.IMAGES_DIR).glob("*.jpg"))
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ImageError, match="cannot decode"):
        open_rgb(path)
