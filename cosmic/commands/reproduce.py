"""Did this run reproduce the committed one? Byte for byte, or within the test set's statistical noise.

`make repro` ends with `python -m cosmic.commands.reproduce`. Bit-identity holds only where README.md's
reproducibility table says; elsewhere (another instruction set, ARM, another TensorFlow build) each
test metric of each model is compared with the committed value and its 95 % interval: accuracy with
the bootstrap interval `evaluate` recorded, balanced accuracy with the normal interval of the two
class recalls, ROC AUC with Hanley & McNeil's standard error. Those intervals measure how much a
metric moves when the test galaxies are drawn again, so a difference inside them is one the test
set cannot tell from chance.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cosmic import paths

Z95 = 1.959964


@dataclass(frozen=True)
class Check:
    model: str
    metric: str
    committed: float
    current: float
    low: float
    high: float

    @property
    def inside(self) -> bool:
        return self.low <= self.current <= self.high

    @property
    def share(self) -> float:
        """|current - committed| as a share of the interval's half-width on that side."""
        half = (self.high - self.committed) if self.current >= self.committed else (self.committed - self.low)
        return abs(self.current - self.committed) / half if half > 0 else math.inf


def auc_interval(auc: float, n_pos: int, n_neg: int) -> tuple[float, float]:
    """95 % normal interval of a ROC AUC from Hanley & McNeil (1982), clipped to [0, 1]."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (n_pos * n_neg)
    half = Z95 * math.sqrt(max(var, 0.0))
    return max(0.0, auc - half), min(1.0, auc + half)


def balanced_accuracy_interval(recall_a: float, n_a: int, recall_b: float, n_b: int) -> tuple[float, float]:
    """95 % normal interval of the mean of two independent class recalls."""
    half = Z95 * 0.5 * math.sqrt(recall_a * (1 - recall_a) / n_a + recall_b * (1 - recall_b) / n_b)
    mean = (recall_a + recall_b) / 2
    return max(0.0, mean - half), min(1.0, mean + half)


def checks(committed: dict, current: dict, per_class: dict[str, int]) -> list[Check]:
    """One Check per model and metric, from metrics/evaluate.json as committed and as now.

    Raises:
        ValueError: a model of the committed run is missing now, or the class counts are not two.
    """
    if len(per_class) != 2:
        raise ValueError(f"expected the test counts of two classes, got {per_class}")
    (name_a, n_a), (name_b, n_b) = per_class.items()
    out = []
    for model, result in committed.items():
        if not (isinstance(result, dict) and "test" in result):
            continue
        if model not in current:
            raise ValueError(f"model {model!r} of the committed metrics/evaluate.json is missing from this run")
        old, new = result["test"], current[model]["test"]
        intervals = {
            "accuracy": (old["accuracy_ci_low"], old["accuracy_ci_high"]),
            "balanced_accuracy": balanced_accuracy_interval(old[f"{name_a}_recall"], n_a, old[f"{name_b}_recall"], n_b),
            "roc_auc": auc_interval(old["roc_auc"], n_b, n_a),
        }
        out += [Check(model, metric, old[metric], new[metric], lo, hi) for metric, (lo, hi) in intervals.items()]
    return out


def render(results: list[Check]) -> str:
    """A table of the checks, then one verdict line."""
    lines = [f"{'model':10s} {'metric':18s} {'committed':>9s} {'this run':>9s} {'95 % interval':>15s}  difference",
             "-" * 84]
    for c in results:
        lines.append(f"{c.model:10s} {c.metric:18s} {c.committed:9.4f} {c.current:9.4f} "
                     f"{c.low:7.4f}–{c.high:7.4f}  {c.current - c.committed:+.4f} "
                     f"({100 * c.share:.0f} % of the half-width){'' if c.inside else '  OUTSIDE'}")
    outside = [c for c in results if not c.inside]
    if outside:
        lines.append(f"NOT REPRODUCED: {len(outside)} of {len(results)} test metrics lie outside the committed "
                     "run's 95 % interval.")
    else:
        worst = max(results, key=lambda c: c.share)
        lines.append(f"REPRODUCED WITHIN NOISE: all {len(results)} test metrics inside the committed run's 95 % "
                     f"intervals (largest move: {worst.model} {worst.metric}, {100 * worst.share:.0f} % of the "
                     "half-width).")
    return "\n".join(lines)


def _committed(path: Path, rev: str) -> str:
    done = subprocess.run(["git", "show", f"{rev}:{path.as_posix()}"], capture_output=True, text=True)
    if done.returncode:
        raise FileNotFoundError(f"{path} is not in git at {rev}: {done.stderr.strip()}")
    return done.stdout


def _byte_identical(rev: str) -> bool:
    done = subprocess.run(["git", "diff", "--quiet", rev, "--", "metrics", "dvc.lock"])
    return done.returncode == 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cosmic.commands.reproduce", description=__doc__.splitlines()[0])
    ap.add_argument("--rev", default="HEAD", help="the commit to compare with (default: HEAD)")
    args = ap.parse_args(argv)
    try:
        committed = json.loads(_committed(paths.stage_metrics("evaluate"), args.rev))
        split = json.loads(_committed(paths.stage_metrics("split"), args.rev))
        current = json.loads(paths.stage_metrics("evaluate").read_text())
        results = checks(committed, current, split["test"]["per_class"])
    except (FileNotFoundError, ValueError, KeyError) as e:
        print(f"cannot compare with {args.rev}: {e}", file=sys.stderr)
        return 2
    if _byte_identical(args.rev):
        print(f"REPRODUCED byte for byte: metrics/ and dvc.lock are identical to {args.rev}.")
        return 0
    print(f"Not byte-identical to {args.rev} (expected where README.md, 'Reproducibility', says so); "
          "each model's test metrics against the committed run's 95 % intervals:")
    print(render(results))
    return 0 if all(c.inside for c in results) else 1


if __name__ == "__main__":
    sys.exit(main())
