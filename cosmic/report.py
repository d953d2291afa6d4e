"""The markdown report comparing the models: metrics/report.md."""

from __future__ import annotations

from pathlib import Path

from cosmic import paths
from cosmic.utils import atomic_path, read_json


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


def _num(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def model_table(results: dict, class_names: tuple[str, str]) -> str:
    """The comparison table of the models (one row per model)."""
    head = ("| model | test acc. % (95 % CI) | bal. acc. % | ROC AUC | macro F1 | log loss | ECE | "
            "TTA×8 acc. % | params | MB | pretrained |")
    levels = {int(round(100 * r["test"]["accuracy_ci"]["level"])) for r in results.values()}
    if levels and levels != {95}:
        head = head.replace("95 %", f"{levels.pop()} %")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, r in results.items():
        t = r["test"]
        ci = t["accuracy_ci"]
        tta = _pct(t["tta"]["accuracy"]) if "tta" in t else "off"
        pre = r.get("pretrained")
        lines.append(
            f"| {name} | {_pct(t['accuracy'])} ({_pct(ci['low'])}–{_pct(ci['high'])}) | "
            f"{_pct(t['balanced_accuracy'])} | {_num(t['roc_auc'])} | {_num(t['macro']['f1'])} | "
            f"{_num(t['log_loss'])} | {_num(t['ece'])} | {tta} | {r['n_params']:,} | "
            f"{r['model_bytes'] / 1e6:.1f} | {'n/a' if pre is None else ('yes' if pre else 'no')} |"
        )
    return "\n".join(lines)


def _reading_notes(results: dict, class_names: tuple[str, str]) -> list[str]:
    """How to read the table: the settings behind its numbers, which metrics files do not repeat."""
    t = next(iter(results.values()))["test"]
    views = t["tta"]["views"] if "tta" in t else None
    return [
        f"A galaxy is called {class_names[1]} when p({class_names[1]}) > {t['threshold']:g}. "
        + (f"TTA×{views}: the mean p over the {views} flips and 90° rotations of each image. " if views else "")
        + "`metrics/evaluate.json` holds these figures as numbers for `dvc metrics diff` and `dvc exp show`; "
        "how each model was trained (phases, learning rates, weights, tuned hyperparameters) is recorded in "
        "its `models/*.keras` file (entry `cosmic_preprocessing.json`, key `training`).",
    ]


def mcnemar_table(tests: dict) -> str:
    """McNemar results between each pair of models."""
    lines = ["| pair | only first right | only second right | p-value | test |", "|---|---|---|---|---|"]
    for pair, t in tests.items():
        lines.append(f"| {pair.replace('_vs_', ' vs ')} | {t['b']} | {t['c']} | {t['p_value']:.3g} | "
                     f"{t['method']} |")
    return "\n".join(lines)


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
        f"({_pct(data_counts.get('kept_fraction'))} %) at threshold {data_counts.get('threshold')}: "
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
