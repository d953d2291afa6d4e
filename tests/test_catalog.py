"""filter: CSV validation, row drops counted by reason, labels, and structural errors."""

from __future__ import annotations

import shutil
import struct
import zlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from cosmic.data import kaggle_format as kf
from cosmic.data.catalog import DROP_REASONS, CatalogError, assign_labels, build_catalog, read_solutions
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
        ("GalaxyID,Class1.1\n100008,0.9\n", "Class1.2, Class1.3 not in header"),
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
    from cosmic.data.imageops import ImageError, open_rgb

    path = next((kaggle_dir / kf.IMAGES_DIR).glob("*.jpg"))
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ImageError, match="cannot decode"):
        open_rgb(path)


def _set(lines: list[str], galaxy_id: str, column: str, value: str) -> None:
    header = lines[0].split(",")
    i = _row_of(lines, galaxy_id)
    cells = lines[i].split(",")
    cells[header.index(column)] = value
    lines[i] = ",".join(cells)


def _drop_of(result, galaxy_id: str) -> dict:
    rows = result.dropped[result.dropped["GalaxyID"].astype(str) == galaxy_id]
    assert len(rows) == 1, result.dropped
    return rows.iloc[0].to_dict()


def test_line_numbers_are_physical_lines_after_blank_lines(kaggle_dir):
    lines = csv_lines(kaggle_dir)
    target = lines[11].split(",")[0]
    _set(lines, target, "Class1.1", "abc")
    lines[3:3] = ["", ""]  # two blank lines before the bad row: it is now on line 14
    write_csv_lines(kaggle_dir, lines)
    result = build_catalog(kaggle_dir, 0.8, NAMES, workers=1)
    assert _drop_of(result, target)["row"] == 14
    assert (kaggle_dir / kf.SOLUTIONS_CSV).read_text().splitlines()[13].startswith(target + ",")


def test_q1_answers_not_summing_to_one_are_dropped(kaggle_dir):
    lines = csv_lines(kaggle_dir)
    bad, rounded = _labelled_ids(kaggle_dir)[:2]
    _set(lines, bad, "Class1.1", "0.9")
    _set(lines, bad, "Class1.2", "0.9")
    _set(lines, bad, "Class1.3", "0.0")
    _set(lines, rounded, "Class1.1", "0.9")  # 0.9 + 0.1 - 0.005: two-decimal rounding is within tolerance
    _set(lines, rounded, "Class1.2", "0.095")
    _set(lines, rounded, "Class1.3", "0.0")
    write_csv_lines(kaggle_dir, lines)
    result = build_catalog(kaggle_dir, 0.8, NAMES, workers=1)
    drop = _drop_of(result, bad)
    assert drop["reason"] == "q1_sum" and "= 1.8" in drop["detail"] and "tolerance 0.01" in drop["detail"]
    assert result.counts["dropped"]["q1_sum"] == 1
    assert int(rounded) in set(result.catalog["GalaxyID"])


@pytest.mark.parametrize("bad_id", ["123456789012345678901", "9223372036854775808", "inf", "-inf", "1e400",
                                    "nan", "0", "-5", "12.5", "0x10"])
def test_invalid_galaxy_ids_are_dropped_as_bad_id(kaggle_dir, bad_id):
    lines = csv_lines(kaggle_dir)
    cells = lines[5].split(",")
    cells[0] = bad_id
    lines[5] = ",".join(cells)
    write_csv_lines(kaggle_dir, lines)
    result = build_catalog(kaggle_dir, 0.8, NAMES, workers=1)
    drop = result.dropped.iloc[0]
    assert (drop["row"], drop["reason"], drop["GalaxyID"]) == (6, "bad_id", bad_id)
    assert (result.catalog["GalaxyID"] > 0).all()


def test_largest_int64_id_is_kept_exactly():
    from cosmic.data.catalog import MAX_ID, parse_id

    assert parse_id(str(MAX_ID)) == MAX_ID and parse_id(str(MAX_ID + 1)) is None
    assert parse_id(" 100008 ") == 100008 and parse_id("100008.0") == 100008 and parse_id("+7") == 7


def test_row_with_extra_or_missing_fields_is_dropped_with_its_line(kaggle_dir):
    lines = csv_lines(kaggle_dir)
    extra, short = lines[4].split(",")[0], lines[7].split(",")[0]
    lines[4] += ",0.5"
    lines[7] = ",".join(lines[7].split(",")[:10])
    write_csv_lines(kaggle_dir, lines)
    result = build_catalog(kaggle_dir, 0.8, NAMES, workers=1)
    assert _drop_of(result, extra) == {"row": 5, "GalaxyID": extra, "reason": "wrong_field_count",
                                       "detail": "39 fields, expected 38 as in the header"}
    assert _drop_of(result, short)["row"] == 8
    c = result.counts
    assert c["dropped"]["wrong_field_count"] == 2 and c["n_rows"] == len(lines) - 1
    assert c["n_kept"] + c["n_ambiguous"] + c["n_artifact"] + c["n_dropped"] == c["n_rows"]


def test_latin1_bytes_name_the_line(kaggle_dir):
    path = kaggle_dir / kf.SOLUTIONS_CSV
    lines = csv_lines(kaggle_dir)
    lines[2] = lines[2] + ",caf\xe9"
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    with pytest.raises(CatalogError, match=r"line 3: bytes b'\\xe9' are not UTF-8") as err:
        build_catalog(kaggle_dir, 0.8, NAMES, workers=1)
    assert str(path) in str(err.value)


def test_utf8_bom_is_accepted(kaggle_dir):
    path = kaggle_dir / kf.SOLUTIONS_CSV
    plain = build_catalog(kaggle_dir, 0.8, NAMES, workers=1)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    with_bom = build_catalog(kaggle_dir, 0.8, NAMES, workers=1)
    pd.testing.assert_frame_equal(plain.catalog, with_bom.catalog)


def test_missing_class13_is_a_clear_error(kaggle_dir):
    table = pd.read_csv(kaggle_dir / kf.SOLUTIONS_CSV).drop(columns=["Class1.3"])
    table.to_csv(kaggle_dir / kf.SOLUTIONS_CSV, index=False)
    with pytest.raises(CatalogError, match=r"required column\(s\) Class1.3 not in header"):
        build_catalog(kaggle_dir, 0.8, NAMES, workers=1)


def test_nul_byte_and_unparseable_csv_are_catalog_errors(kaggle_dir):
    path = kaggle_dir / kf.SOLUTIONS_CSV
    path.write_text(",".join(kf.ALL_COLUMNS) + '\n1,"0.5\n')  # quote never closed
    with pytest.raises(CatalogError) as err:
        build_catalog(kaggle_dir, 0.8, NAMES, workers=1)
    assert str(path) in str(err.value)


def test_drop_reason_comes_from_the_error_type_not_its_text(kaggle_master, tmp_path):
    # "mode" in the folder name must not turn a truncated or empty image into not_rgb.
    root = tmp_path / "my_models" / "raw"
    shutil.copytree(kaggle_master, root)
    ids = _labelled_ids(root)
    img_dir = root / kf.IMAGES_DIR
    data = (img_dir / f"{ids[0]}.jpg").read_bytes()
    (img_dir / f"{ids[0]}.jpg").write_bytes(data[: len(data) // 3])
    (img_dir / f"{ids[1]}.jpg").write_bytes(b"")
    Image.open(img_dir / f"{ids[2]}.jpg").convert("L").save(img_dir / f"{ids[2]}.jpg")
    result = build_catalog(root, 0.8, NAMES, workers=1)
    reasons = {g: _drop_of(result, g)["reason"] for g in ids[:3]}
    assert reasons == {ids[0]: "unreadable_image", ids[1]: "unreadable_image", ids[2]: "not_rgb"}


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG declaring width x height pixels with no pixel data: what a decompression bomb looks like."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def test_decompression_bomb_is_dropped_as_wrong_size(kaggle_dir):
    bomb = _labelled_ids(kaggle_dir)[0]
    (kaggle_dir / kf.IMAGES_DIR / f"{bomb}.jpg").write_bytes(_png_header_only(20000, 20000))
    result = build_catalog(kaggle_dir, 0.8, NAMES, workers=1)
    drop = _drop_of(result, bomb)
    assert drop["reason"] == "wrong_size" and "decompression bomb" in drop["detail"]
    assert "expected 424x424" in drop["detail"] and result.counts["dropped"]["wrong_size"] == 1


# Property-based: arbitrary CSV text is read into consistent rows, or refused with a CatalogError.
_CELLS = st.one_of(
    st.sampled_from(["", " ", "0", "1", "0.5", "0.25", "1.5", "-0.1", "nan", "NA", "inf", "1e400", "abc",
                     "100008", "123456789012345678901", "0x10", '"q,uoted"', '"', "\t", "é", "\x00"]),
    st.text(max_size=5),
)


@st.composite
def _csv_texts(draw) -> bytes:
    header = list(kf.ALL_COLUMNS[:4]) + draw(st.lists(st.sampled_from(kf.ALL_COLUMNS[4:] + ("Notes", "")),
                                                    max_size=3, unique=True))
    if draw(st.booleans()):
        header = draw(st.permutations(header))
    n = len(header)
    rows = draw(st.lists(st.lists(_CELLS, min_size=max(n - 1, 0), max_size=n + 1), max_size=8))
    lines = [",".join(header)] + [",".join(r) for r in rows]
    blanks = draw(st.lists(st.integers(0, len(lines)), max_size=2))
    for i in sorted(blanks, reverse=True):
        lines.insert(i, "")
    text = draw(st.sampled_from(["\n", "\r\n"])).join(lines) + "\n"
    prefix = draw(st.sampled_from([b"", b"\xef\xbb\xbf"]))
    data = text.encode("utf-8")
    if draw(st.integers(0, 9)) == 0:
        data += draw(st.binary(max_size=4))
    return prefix + data


@settings(max_examples=100, deadline=None)
@given(data=_csv_texts())
def test_any_csv_is_read_consistently_or_refused(tmp_path_factory, data):
    from cosmic.data.catalog import MAX_ID, Q1_COLUMNS, Q1_TOLERANCE, validate_rows

    path = tmp_path_factory.mktemp("csv") / kf.SOLUTIONS_CSV
    path.write_bytes(data)
    try:
        table, _, malformed = read_solutions(path)
    except CatalogError as e:
        assert str(path) in str(e)
        return
    valid, dropped = validate_rows(table)
    n_lines = len(data.decode("utf-8-sig").splitlines())
    assert len(valid) + len(dropped) == len(table)
    assert set(dropped["row"]).isdisjoint(valid["row"]) and set(malformed["row"]).isdisjoint(table.index)
    assert all(2 <= r <= n_lines for r in [*table.index, *malformed["row"]])
    assert valid["GalaxyID"].between(1, MAX_ID).all() and valid["GalaxyID"].is_unique
    fractions = valid.drop(columns=["GalaxyID", "row"])
    assert ((fractions >= 0) & (fractions <= 1)).all().all()
    assert ((valid[list(Q1_COLUMNS)].sum(axis=1) - 1).abs().le(Q1_TOLERANCE).all())
    assert set(dropped["reason"]) <= set(DROP_REASONS)
