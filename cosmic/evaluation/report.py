"""The markdown report comparing the models: metrics/report.md."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cosmic import paths
from cosmic.utils import atomic_path, read_json

# Markdown's delimiter row per column alignment: "l" is left (Markdown's default), "r" right.
_RULES = {"l": "---", "r": "---:"}


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "", pad: bool = False) -> str:
    """A Markdown table, the one format of the report, `cosmic-score` and the benchmarks.

    Args:
        header: the column titles.
        rows: the cells of each row, as text, as many as titles.
        align: one letter per column, "l" (left) or "r" (right); empty: every column left.
        pad: widen every cell to its column's width (right-aligned columns padded on the left),
            so the table also lines up as plain text in a terminal.

    Returns:
        The header, delimiter and row lines, without a trailing newline.

    Raises:
        ValueError: if a row or `align` does not have one entry per column.
    """
    align = align or "l" * len(header)
    if len(align) != len(header) or set(align) - set(_RULES):
        raise ValueError(f"align is {align!r}; expected one of l/r per column ({len(header)})")
    table = [list(header), *(list(row) for row in rows)]
    for row in table:
        if len(row) != len(header):
            raise ValueError(f"row {row} has {len(row)} cells; expected {len(header)}, one per column")
    rule = [_RULES[a] for a in align]
    if pad:
        widths = [max(len(cell) for cell in column) for column in zip(*table, rule)]
        table = [[cell.rjust(w) if a == "r" else cell.ljust(w) for cell, w, a in zip(row, widths, align)]
                 for row in table]
        # The delimiter row has no spaces around its cells, so it spans each cell and its two spaces.
        rule = [r.rjust(w + 2, "-") if a == "r" else r.ljust(w + 2, "-") for r, w, a in zip(rule, widths, align)]
    lines = ["| " + " | ".join(row) + " |" for row in table]
    lines.insert(1, "|" + "|".join(rule) + "|")
    return "\n".join(lines)


def percent(x: float | None) -> str:
    """A fraction as a percentage with one decimal and no sign (the tables' headers say %), or "n/a"."""
    return "n/a" if x is None else f"{100 * x:.1f}"


def decimal(x: float | None, digits: int = 3) -> str:
    """A number with `digits` decimals, or "n/a" when undefined."""
    return "n/a" if x is None else f"{x:.{digits}f}"


def model_table(results: dict, class_names: tuple[str, str]) -> str:
    """The comparison table of the models (one row per model)."""
    levels = {int(round(100 * r["test"]["accuracy_ci"]["level"])) for r in results.values()}
    level = levels.pop() if levels else 95
    header = ["model", f"test acc. % ({level} % CI)", "bal. acc. %", "ROC AUC", "macro F1", "log loss", "ECE",
              "TTA×8 acc. %", "params", "MB", "pretrained"]
    rows = []
    for name, r in results.items():
        t = r["test"]
        ci = t["accuracy_ci"]
        pre = r.get("pretrained")
        rows.append([name, f"{percent(t['accuracy'])} ({percent(ci['low'])}–{percent(ci['high'])})",
                     percent(t["balanced_accuracy"]), decimal(t["roc_auc"]), decimal(t["macro"]["f1"]),
                     decimal(t["log_loss"]), decimal(t["ece"]), percent(t["tta"]["accuracy"]) if "tta" in t else "off",
                     f"{r['n_params']:,}", f"{r['model_bytes'] / 1e6:.1f}",
                     "n/a" if pre is None else ("yes" if pre else "no")])
    return markdown_table(header, rows)


def _reading_notes(results: dict, class_names: tuple[str, str]) -> list[str]:
    """How to read the table: the settings behind its numbers, which metrics files do not repeat."""
    t = next(iter(results.values()))["test"]
    views = t["tta"]["views"] if "tta" in t else None
    return [
        f"A galaxy is called {class_names[1]} when p({class_names[1]}) > {t['threshold']:g}. "
        + (f"TTA×{views}: the mean p over the {views} flips and 90° rotations of each image. " if views else "")
        + "`metrics/test.json` (accuracy, balanced accuracy, ROC AUC: the first columns of `dvc exp show`) and "
        "`metrics/evaluate.json` (every figure) hold these as numbers for `dvc metrics diff` and `dvc exp show`; "
        "how each model was trained (phases, learning rates, weights, tuned hyperparameters) is recorded in "
        "its `models/*.keras` file (entry `cosmic_preprocessing.json`, key `training`).",
    ]


def mcnemar_table(tests: dict[tuple[str, str], dict]) -> str:
    """McNemar results between each pair of models."""
    return markdown_table(["pair", "only first right", "only second right", "p-value", "test"],
                          [[f"{a} vs {b}", str(t["b"]), str(t["c"]), f"{t['p_value']:.3g}", t["method"]]
                           for (a, b), t in tests.items()])


def render(results: dict, tests: dict, data_counts: dict, split_counts: dict, class_names: tuple[str, str],
           source: str, notes: list[str]) -> str:
    """The whole report as markdown."""
    test = split_counts.get("test", {})
    dropped = {k: v for k, v in data_counts.get("dropped", {}).items() if v}
    out = [
        "# Cosmic Classifier: model comparison",
        "",
        f"Data source: **{source}**. Test split: {test.get('n', 'n/a')} images "
        f"({', '.join(f'{k} {v}' for k, v in test.get('per_class', {}).items())}); no training or tuning "
        "stage reads it.",
        "",
        model_table(results, class_names),
        "",
        *_reading_notes(results, class_names),
        "",
        "McNemar tests on the same test images (a difference is significant at 5 % when p < 0.05):",
        "",
        mcnemar_table(tests),
        "",
        "## Data",
        "",
        f"- rows in the solutions CSV: {data_counts.get('n_rows')}; kept: {data_counts.get('n_kept')} "
        f"({percent(data_counts.get('kept_fraction'))} %) at threshold {data_counts.get('threshold')}: "
        + ", ".join(f"{k} {v}" for k, v in data_counts.get("per_class", {}).items()),
        f"- left out: {data_counts.get('n_ambiguous')} ambiguous, {data_counts.get('n_artifact')} star/artifact, "
        f"{data_counts.get('n_dropped')} invalid" + (f" ({dropped})" if dropped else ""),
        "- split: " + ", ".join(f"{k} {v['n']}" for k, v in split_counts.items()),
    ]
    if notes:
        out += ["", "## Notes", "", *[f"- {n}" for n in notes]]
    out += ["", "Inference throughput (machine-dependent) is in `metrics/timing.json` after a run.", ""]
    return "\n".join(out)


def write(path: Path, evals: list, tests: dict, class_names: tuple[str, str]) -> None:
    """Write the report of `evaluation.evaluate_saved_models` results, with the data and split counts.

    Args:
        path: the markdown file to write.
        evals: `evaluation.ModelEval`s, in table order.
        tests: `evaluation.pairwise_mcnemar` results.
        class_names: (class 0, class 1).
    """
    data_counts = {**read_json(paths.stage_metrics("data")), **read_json(paths.FILTER_SUMMARY)}
    source = data_counts["source"]
    notes = [f"The {e.name} model was NOT pretrained: {e.facts['weights_note']}" for e in evals
             if e.facts.get("pretrained") is False]
    balanced = {e.name: e.facts["recall_balance"]["val_threshold"] for e in evals if e.facts.get("recall_balance")}
    if balanced:
        notes.append("Output bias shifted after training so that p > 0.5 recalls both classes of the validation "
                     "split equally (base.recall_balance); the validation threshold it replaces: "
                     + ", ".join(f"{name} {t:.3f}" for name, t in balanced.items()) + ".")
    if source == "synthetic":
        notes.append("The data are SYNTHETIC Galaxy Zoo-like cutouts (fetch.source: synthetic), not SDSS images.")
    results = {e.name: {"test": e.metrics, **e.facts} for e in evals}
    text = render(results, tests, data_counts, read_json(paths.stage_metrics("split")), class_names, source, notes)
    with atomic_path(path, len(text.encode())) as tmp:
        tmp.write_text(text)
