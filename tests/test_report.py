"""The shared Markdown table of the report, cosmic-score and the benchmarks."""

from __future__ import annotations

import re

import pytest

from cosmic.report import markdown_table


def test_markdown_table_rows_and_alignment_rule():
    text = markdown_table(["model", "n"], [["a", "10"], ["bb", "2"]], align="lr")
    assert text.splitlines() == ["| model | n |", "|---|---:|", "| a | 10 |", "| bb | 2 |"]
    assert markdown_table(["x", "y"], []) == "| x | y |\n|---|---|"


def test_padded_markdown_table_lines_up_and_keeps_its_cells():
    lines = markdown_table(["view", "accuracy %"], [["plain", "91.3"], ["TTA x8", "100.0"]], align="lr",
                           pad=True).splitlines()
    assert lines == ["| view   | accuracy % |",
                     "|--------|-----------:|",
                     "| plain  |       91.3 |",
                     "| TTA x8 |      100.0 |"]
    assert len({line.index("|", 1) for line in lines}) == 1


@pytest.mark.parametrize(("align", "rows", "message"), [
    ("l", [["a", "b"]], "align is 'l'; expected one of l/r per column (2)"),
    ("lc", [["a", "b"]], "align is 'lc'; expected one of l/r per column (2)"),
    ("", [["a", "b"], ["c"]], "row ['c'] has 1 cells; expected 2, one per column"),
])
def test_markdown_table_refuses_a_mismatched_row_or_alignment(align, rows, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        markdown_table(["x", "y"], rows, align=align)

