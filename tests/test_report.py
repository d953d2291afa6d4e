"""The shared Markdown table of the report, cosmic-score and the benchmarks; McNemar results keyed by pair."""

from __future__ import annotations

import re

import numpy as np
import pytest

from cosmic.evaluation.evaluate import ModelEval, mcnemar_headline, pairwise_mcnemar
from cosmic.evaluation.report import markdown_table, mcnemar_table


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


def test_mcnemar_is_keyed_by_model_pair_whatever_the_names():
    """Names may hold "_vs_": only the metrics file's keys join the pair, and nothing splits them again."""
    labels = np.array([0, 1, 0, 1, 1, 0])
    evals = [ModelEval("old_vs_new", np.array([0.1, 0.9, 0.8, 0.7, 0.2, 0.3]), {}),
             ModelEval("b", np.array([0.2, 0.8, 0.1, 0.4, 0.6, 0.7]), {}),
             ModelEval("c", labels.astype(float), {})]
    tests = pairwise_mcnemar(evals, labels)
    assert list(tests) == [("old_vs_new", "b"), ("old_vs_new", "c"), ("b", "c")]
    first = tests["old_vs_new", "b"]
    assert (first["b"], first["c"]) == (2, 2)  # images only old_vs_new / only b called right
    headline = mcnemar_headline(tests)
    assert list(headline) == ["old_vs_new_vs_b", "old_vs_new_vs_c", "b_vs_c"]
    assert headline["old_vs_new_vs_c"] == {"p_value": tests["old_vs_new", "c"]["p_value"],
                                           "only_old_vs_new_right": 0, "only_c_right": 2}
    rows = mcnemar_table(tests).splitlines()
    assert rows[2].startswith("| old_vs_new vs b | 2 | 2 | ") and rows[4].startswith("| b vs c | 0 | 2 | ")
