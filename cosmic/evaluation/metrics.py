"""Evaluation metrics for the elliptical (0) vs spiral (1) classifier, as JSON-ready Python values.

Everything here is pure numpy/scipy/scikit-learn so the evaluation stage can be
tested without TensorFlow. Every public function returns plain Python floats,
ints, lists and dicts (never numpy scalars, never NaN/inf) so the results can
be written with ``json.dump(..., allow_nan=False)`` straight into DVC metrics
and plots files. Where a metric is mathematically undefined (for example ROC
AUC when only one class is present) the value is ``None``.

Conventions: label 0 is elliptical (the negative class), label 1 is spiral
(the positive class), and ``p`` is always the predicted probability of spiral.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from cosmic.registry import THRESHOLD


# Probabilities are clipped to [EPS, 1 - EPS] before taking logs so that a
# single confident mistake gives a large but finite log loss instead of inf.
LOG_LOSS_EPS = 1e-7

# Below this many discordant pairs the chi-square approximation to McNemar's
# test is poor, so the exact binomial test is used instead.
MCNEMAR_EXACT_BELOW = 25

# Curves are thinned to at most this many points to keep the plot JSON small.
MAX_CURVE_POINTS = 200


@dataclass(frozen=True)
class MetricSettings:
    """How a metric block's interval and calibration are computed; shared by evaluate and cosmic.commands.score.

    The defaults are the default run's (params.yaml: the evaluate section and base.seed;
    tests/test_score.py checks they agree), so cosmic-score reports intervals comparable to the
    evaluate stage's without reading params.yaml.

    Attributes:
        bootstrap_resamples: resamples of the accuracy confidence interval.
        ci_level: confidence level of that interval, e.g. 0.95.
        calibration_bins: equal-width bins of the expected calibration error.
        seed: bootstrap seed; the same seed for every model makes their intervals come from the
            same resamples of the images.
    """

    bootstrap_resamples: int = 1000
    ci_level: float = 0.95
    calibration_bins: int = 10
    seed: int = 42


# Keys of the classification_metrics result; class names must not shadow them.
_RESERVED_KEYS = frozenset(
    {
        "n",
        "threshold",
        "accuracy",
        "balanced_accuracy",
        "macro",
        "roc_auc",
        "average_precision",
        "log_loss",
        "brier",
        "ece",
        "confusion_matrix",
    }
)


# --------------------------------------------------------------------------- #
# Input validation
# --------------------------------------------------------------------------- #


def _as_1d(name: str, x: Any) -> np.ndarray:
    """Return `x` as a 1-D numeric array.

    Args:
        name: argument name, used in error messages.
        x: array-like of shape (n,) or (n, 1).

    Returns:
        A 1-D numpy array (a view where possible).

    Raises:
        ValueError: if `x` is not numeric/boolean, not 1-D (an (n, 1) column is
            accepted because Keras' ``predict`` returns that shape), or empty.
    """
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric or boolean, got dtype {arr.dtype}")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (or an (n, 1) column), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    return arr


def _first_bad(mask: np.ndarray) -> int:
    """Index of the first True in `mask` (caller guarantees there is one)."""
    return int(np.flatnonzero(mask)[0])


def _check_labels(y_true: Any, name: str = "y_true") -> np.ndarray:
    """Validate binary labels and return them as an int64 array.

    Args:
        y_true: array-like of 0/1 labels (ints or bools; floats are accepted
            only when every value is exactly 0.0 or 1.0, as happens after a
            round trip through pandas).
        name: argument name, used in error messages.

    Returns:
        1-D int64 array of 0/1 labels.

    Raises:
        ValueError: if any label is not 0 or 1 (quoting the first bad value and
            its index), or for the shape/dtype problems of `_as_1d`.
    """
    arr = _as_1d(name, y_true)
    if arr.dtype.kind == "b":
        return arr.astype(np.int64)
    bad = ~((arr == 0) | (arr == 1))  # NaN compares unequal to both, so it is caught too
    if bad.any():
        i = _first_bad(bad)
        raise ValueError(f"{name} must contain only 0/1 labels; found {arr[i]!r} at index {i}")
    return arr.astype(np.int64)


def _check_probabilities(p: Any, name: str = "p") -> np.ndarray:
    """Validate probabilities and return them as a float64 array.

    Args:
        p: array-like of probabilities of the positive (spiral) class.
        name: argument name, used in error messages.

    Returns:
        1-D float64 array with every value finite and within [0, 1].

    Raises:
        ValueError: if any value is non-finite or outside [0, 1] (quoting the
            first bad value and its index), or for the problems of `_as_1d`.
    """
    arr = _as_1d(name, p).astype(np.float64)
    nonfinite = ~np.isfinite(arr)
    if nonfinite.any():
        i = _first_bad(nonfinite)
        raise ValueError(f"{name} must be finite; found {arr[i]!r} at index {i}")
    outside = (arr < 0.0) | (arr > 1.0)
    if outside.any():
        i = _first_bad(outside)
        raise ValueError(f"{name} must be within [0, 1]; found {arr[i]!r} at index {i}")
    return arr


def _check_same_length(name_a: str, a: np.ndarray, name_b: str, b: np.ndarray) -> None:
    """Raise ValueError unless `a` and `b` have the same length."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same length; got {a.shape[0]} and {b.shape[0]}"
        )


def _check_labels_and_probabilities(y_true: Any, p: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (labels, probabilities) pair; see `_check_labels`/`_check_probabilities`."""
    y = _check_labels(y_true)
    prob = _check_probabilities(p)
    _check_same_length("y_true", y, "p", prob)
    return y, prob


def _check_int(name: str, value: Any, minimum: int) -> int:
    """Return `value` as an int, raising ValueError unless it is an integer >= `minimum`."""
    # bool is an int subclass; `n_bins=True` is almost certainly a mistake.
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- #
# Small helpers
# --------------------------------------------------------------------------- #


def _finite_or_none(x: Any) -> float | None:
    """Return `x` as a Python float, or None if it is None/NaN/inf (JSON has no NaN)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _safe_div(num: float, den: float) -> float:
    """num / den, or 0.0 when den == 0 (sklearn's ``zero_division=0`` convention)."""
    return float(num) / float(den) if den else 0.0


def _bin_index(p: np.ndarray, n_bins: int) -> np.ndarray:
    """Assign each probability to one of `n_bins` equal-width bins over [0, 1].

    Bin k covers [k/n_bins, (k+1)/n_bins); the last bin also includes 1.0.

    Args:
        p: validated probabilities in [0, 1].
        n_bins: number of bins (>= 1).

    Returns:
        int64 array of bin indices in [0, n_bins - 1].
    """
    k = np.clip(np.floor(p * n_bins).astype(np.int64), 0, n_bins - 1)
    # `p * n_bins` can land one ulp on the wrong side of an integer (0.57 * 100
    # == 56.99999999999999), so compare against the float edges k / n_bins,
    # which are what a user writing e.g. 0.57 expects. One step always suffices.
    k = np.where(p < k / n_bins, k - 1, k)
    k = np.where((p >= (k + 1) / n_bins) & (k < n_bins - 1), k + 1, k)
    return k


def _bin_stats(y: np.ndarray, p: np.ndarray, n_bins: int) -> tuple[np.ndarray, ...]:
    """Per-bin counts, sums of labels and sums of probabilities (all bins, including empty)."""
    k = _bin_index(p, n_bins)
    counts = np.bincount(k, minlength=n_bins)
    sum_y = np.bincount(k, weights=y, minlength=n_bins)
    sum_p = np.bincount(k, weights=p, minlength=n_bins)
    return counts, sum_y, sum_p


def _thin_indices(m: int, max_points: int) -> np.ndarray:
    """Indices of at most `max_points` evenly spaced points out of `m`, always keeping both ends."""
    if m <= max_points:
        return np.arange(m)
    return np.unique(np.round(np.linspace(0, m - 1, max_points)).astype(np.int64))


# --------------------------------------------------------------------------- #
# Point metrics
# --------------------------------------------------------------------------- #


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of predictions equal to the true label.

    Args:
        y_true: 0/1 labels, shape (n,).
        y_pred: 0/1 predicted labels, shape (n,).

    Returns:
        Accuracy in [0, 1] as a Python float.

    Raises:
        ValueError: if either input is not 0/1 labels or the lengths differ.
    """
    y = _check_labels(y_true, "y_true")
    yp = _check_labels(y_pred, "y_pred")
    _check_same_length("y_true", y, "y_pred", yp)
    return float(np.mean(y == yp))


def _accuracy_rows(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Accuracy of each row of 2-D (resamples, n) arrays; the vectorised form used by bootstrap_ci."""
    return np.mean(y_true == y_pred, axis=-1)


# Metrics whose row-wise (vectorised) version bootstrap_ci can use instead of
# calling the metric once per resample. Looked up by identity, not hashing, so
# unhashable callables can still be passed as metrics.
_ROWWISE: tuple[tuple[Callable[..., Any], Callable[[np.ndarray, np.ndarray], np.ndarray]], ...] = (
    (accuracy, _accuracy_rows),
)


def expected_calibration_error(y_true: Any, p: Any, n_bins: int = 10) -> float:
    """Binary expected calibration error of p(spiral) over equal-width bins.

    Uses the standard binary definition over the probability of the positive
    class (not the "top-label confidence" variant used for multi-class models):

        ECE = sum_b (n_b / N) * |mean(y in b) - mean(p in b)|

    where the bins b split [0, 1] into `n_bins` equal-width intervals
    [k/n_bins, (k+1)/n_bins) (the last one closed) and empty bins contribute 0.

    Args:
        y_true: 0/1 labels, shape (n,).
        p: predicted probabilities of spiral, shape (n,).
        n_bins: number of equal-width bins.

    Returns:
        ECE in [0, 1] as a Python float.

    Raises:
        ValueError: on invalid labels/probabilities, mismatched lengths or n_bins < 1.
    """
    y, prob = _check_labels_and_probabilities(y_true, p)
    n_bins = _check_int("n_bins", n_bins, 1)
    _, sum_y, sum_p = _bin_stats(y, prob, n_bins)
    # (n_b/N) * |sum_y/n_b - sum_p/n_b| == |sum_y - sum_p| / N, which also
    # makes empty bins contribute 0 without a division by zero.
    return float(np.abs(sum_y - sum_p).sum() / y.shape[0])


def classification_metrics(
    y_true: Any,
    p_spiral: Any,
    class_names: Sequence[str] = ("elliptical", "spiral"),
    threshold: float = THRESHOLD,
    n_bins: int = 10,
) -> dict[str, Any]:
    """Compute the full set of evaluation metrics as a JSON-serialisable dict.

    A galaxy is predicted spiral when ``p_spiral > threshold`` (strictly
    greater, the same rule as Keras' ``BinaryAccuracy``, so the accuracy here
    matches what ``model.evaluate`` reports). Precision/recall/F1 use 0.0 when
    their denominator is 0 (sklearn's ``zero_division=0``). Balanced accuracy
    averages recall over the classes present in `y_true` (sklearn's
    definition). ROC AUC is None when only one class is present; average
    precision is None when there are no spirals. Log loss clips probabilities
    to [1e-7, 1 - 1e-7]. ECE is the binary ECE of `expected_calibration_error`.

    Args:
        y_true: 0/1 labels (0 = elliptical, 1 = spiral), shape (n,).
        p_spiral: predicted probability of spiral, shape (n,) or (n, 1).
        class_names: names of class 0 and class 1, used as keys of the
            per-class entries.
        threshold: decision threshold in [0, 1].
        n_bins: number of equal-width bins for the ECE.

    Returns:
        Dict with keys ``n``, ``threshold``, ``accuracy``, ``balanced_accuracy``,
        one entry per class name holding ``precision``/``recall``/``f1``/``support``,
        ``macro`` (unweighted mean of the two classes' ``precision``/``recall``/``f1``),
        ``roc_auc``, ``average_precision``, ``log_loss``, ``brier``, ``ece`` and
        ``confusion_matrix`` (``tn``/``fp``/``fn``/``tp`` counts with spiral as
        the positive class). All values are plain Python ints/floats or None.

    Raises:
        ValueError: on invalid labels/probabilities, mismatched lengths, a
            threshold outside [0, 1], n_bins < 1, or class names that are not
            two distinct strings or that collide with a metric key.
    """
    y, p = _check_labels_and_probabilities(y_true, p_spiral)
    n_bins = _check_int("n_bins", n_bins, 1)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating, np.integer)):
        raise ValueError(f"threshold must be a number in [0, 1], got {threshold!r}")
    if not 0.0 <= float(threshold) <= 1.0:  # NaN also fails this comparison
        raise ValueError(f"threshold must be within [0, 1], got {threshold!r}")
    names = tuple(class_names)
    if len(names) != 2 or not all(isinstance(c, str) and c for c in names) or names[0] == names[1]:
        raise ValueError(f"class_names must be two distinct non-empty strings, got {class_names!r}")
    clash = _RESERVED_KEYS.intersection(names)
    if clash:
        raise ValueError(f"class_names must not reuse a metric key; got {sorted(clash)[0]!r}")

    n = int(y.shape[0])
    pred = (p > threshold).astype(np.int64)
    tp = int(np.sum((pred == 1) & (y == 1)))
    tn = int(np.sum((pred == 0) & (y == 0)))
    fp = int(np.sum((pred == 1) & (y == 0)))
    fn = int(np.sum((pred == 0) & (y == 1)))

    # Per-class scores; for class 0 the roles of the confusion cells swap.
    per_class = {}
    for name, (hit, false_pos, false_neg) in zip(names, ((tn, fn, fp), (tp, fp, fn))):
        per_class[name] = {
            "precision": _safe_div(hit, hit + false_pos),
            "recall": _safe_div(hit, hit + false_neg),
            # 2TP/(2TP+FP+FN) equals 2PR/(P+R) whenever that is defined and is
            # 0 rather than undefined when P = R = 0.
            "f1": _safe_div(2 * hit, 2 * hit + false_pos + false_neg),
            "support": hit + false_neg,
        }
    macro = {
        key: (per_class[names[0]][key] + per_class[names[1]][key]) / 2.0
        for key in ("precision", "recall", "f1")
    }
    present = [name for name in names if per_class[name]["support"] > 0]
    balanced_accuracy = sum(per_class[name]["recall"] for name in present) / len(present)

    both_classes = 0 < tp + fn < n
    roc_auc = _finite_or_none(roc_auc_score(y, p)) if both_classes else None
    # AP is the area under precision-recall for spirals: undefined with no spirals,
    # but well defined (1.0) when every galaxy is a spiral.
    average_precision = _finite_or_none(average_precision_score(y, p)) if tp + fn > 0 else None

    clipped = np.clip(p, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
    log_loss = -float(np.mean(y * np.log(clipped) + (1 - y) * np.log1p(-clipped)))

    result: dict[str, Any] = {
        "n": n,
        "threshold": float(threshold),
        "accuracy": _safe_div(tp + tn, n),
        "balanced_accuracy": float(balanced_accuracy),
        names[0]: per_class[names[0]],
        names[1]: per_class[names[1]],
        "macro": macro,
        "roc_auc": roc_auc,
        "average_precision": average_precision,
        "log_loss": log_loss,
        "brier": float(np.mean((p - y) ** 2)),
        "ece": expected_calibration_error(y, p, n_bins),
        "confusion_matrix": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
    }
    return result


# --------------------------------------------------------------------------- #
# Uncertainty and model comparison
# --------------------------------------------------------------------------- #


def bootstrap_ci(
    y_true: Any,
    y_pred: Any,
    metric: Callable[[np.ndarray, np.ndarray], Any] = accuracy,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float | None, float | None]:
    """Percentile-bootstrap confidence interval of `metric(y_true, y_pred)`.

    Each resample draws n indices with replacement (the same indices for
    `y_true` and `y_pred`) from ``np.random.default_rng(seed)``, so the result is
    deterministic for a given seed. For `accuracy` all resamples are scored in
    vectorised chunks; any other metric is called once per resample on 1-D
    numpy arrays. Both paths draw identical indices, so they agree exactly.
    Resamples on which the metric is undefined (returns None or NaN, e.g. ROC
    AUC on a resample with one class) are skipped.

    Args:
        y_true: 0/1 labels, shape (n,).
        y_pred: what `metric` expects as its second argument (predicted labels
            for `accuracy`, probabilities for e.g. ``sklearn.metrics.roc_auc_score``),
            shape (n,); must be numeric and finite.
        metric: function ``metric(y_true, y_pred) -> float``.
        n_resamples: number of bootstrap resamples.
        level: confidence level in (0, 1), e.g. 0.95 for a 95% interval.
        seed: seed for ``np.random.default_rng``.

    Returns:
        ``(low, high)`` as Python floats: the (1-level)/2 and (1+level)/2
        quantiles of the resampled metric, or ``(None, None)`` if the metric
        was undefined on every resample.

    Raises:
        ValueError: on invalid labels, non-numeric/non-finite `y_pred` (or
            `y_pred` not 0/1 labels when `metric` is `accuracy`), mismatched
            lengths, n_resamples < 1 or level outside (0, 1).
    """
    y = _check_labels(y_true)
    rowwise = next((fast for slow, fast in _ROWWISE if metric is slow), None)
    # The vectorised path skips the metric's own checks, so apply them here.
    yp = _check_labels(y_pred, "y_pred") if rowwise is not None else _as_1d("y_pred", y_pred)
    _check_same_length("y_true", y, "y_pred", yp)
    nonfinite = ~np.isfinite(yp)
    if nonfinite.any():
        i = _first_bad(nonfinite)
        raise ValueError(f"y_pred must be finite; found {yp[i]!r} at index {i}")
    n_resamples = _check_int("n_resamples", n_resamples, 1)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be within (0, 1), got {level!r}")

    n = y.shape[0]
    rng = np.random.default_rng(seed)
    # Draw indices in chunks so a large test set does not need an
    # (n_resamples, n) index matrix in memory all at once.
    chunk = max(1, 2_000_000 // n)
    values: list[float] = []
    for start in range(0, n_resamples, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_resamples - start), n))
        if rowwise is not None:
            values.extend(rowwise(y[idx], yp[idx]).tolist())
        else:
            values.extend(
                v for v in (_finite_or_none(metric(y[row], yp[row])) for row in idx) if v is not None
            )
    values_arr = np.asarray(values, dtype=np.float64)
    values_arr = values_arr[np.isfinite(values_arr)]
    if values_arr.size == 0:
        return None, None
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(values_arr, [alpha, 1.0 - alpha])
    return float(low), float(high)


def _check_correct(name: str, x: Any) -> np.ndarray:
    """Validate a per-example correctness vector (bools or 0/1) and return it as bool."""
    try:
        return _check_labels(x, name).astype(bool)
    except ValueError as err:
        # Reword the label message: here 0/1 means wrong/right, not a class.
        raise ValueError(str(err).replace("0/1 labels", "booleans or 0/1 values")) from None


def mcnemar(correct_a: Any, correct_b: Any) -> dict[str, Any]:
    """McNemar's test of whether two classifiers have the same error rate on the same examples.

    Only the discordant pairs matter: b = a right & b wrong, c = a wrong &
    b right. With b + c < 25 the exact two-sided binomial test of b against
    Binomial(b + c, 0.5) is used (``scipy.stats.binomtest``), and the reported
    statistic is min(b, c) (as in statsmodels). Otherwise the chi-square test
    with continuity correction is used: statistic (|b - c| - 1)^2 / (b + c)
    with 1 degree of freedom. With b + c == 0 the models never disagree and
    the p-value is 1.0.

    Args:
        correct_a: per-example correctness of model A (bools or 0/1), shape (n,).
        correct_b: per-example correctness of model B on the same examples.

    Returns:
        Dict with ``b`` and ``c`` (ints), ``statistic`` and ``p_value`` (floats)
        and ``method`` (``"exact_binomial"`` or ``"chi2_continuity"``).

    Raises:
        ValueError: if an input is not booleans/0-1 values or the lengths differ.
    """
    a = _check_correct("correct_a", correct_a)
    bb = _check_correct("correct_b", correct_b)
    _check_same_length("correct_a", a, "correct_b", bb)
    b = int(np.sum(a & ~bb))
    c = int(np.sum(~a & bb))
    n_disc = b + c
    if n_disc < MCNEMAR_EXACT_BELOW:
        # binomtest needs n >= 1; with no disagreements there is no evidence of a difference.
        p_value = 1.0 if n_disc == 0 else float(stats.binomtest(b, n_disc, 0.5).pvalue)
        return {
            "b": b,
            "c": c,
            "statistic": float(min(b, c)),
            "p_value": min(1.0, p_value),
            "method": "exact_binomial",
        }
    statistic = (abs(b - c) - 1) ** 2 / n_disc
    return {
        "b": b,
        "c": c,
        "statistic": float(statistic),
        "p_value": float(stats.chi2.sf(statistic, df=1)),
        "method": "chi2_continuity",
    }


# --------------------------------------------------------------------------- #
# Curves for DVC plots
# --------------------------------------------------------------------------- #


def calibration_curve(y_true: Any, p: Any, n_bins: int = 10) -> dict[str, list]:
    """Reliability-diagram data: per-bin mean predicted probability vs fraction of spirals.

    Uses the same equal-width bins as `expected_calibration_error`
    ([k/n_bins, (k+1)/n_bins), last bin closed). Empty bins are skipped, so
    all lists have one entry per non-empty bin, in increasing order of p.

    Args:
        y_true: 0/1 labels, shape (n,).
        p: predicted probabilities of spiral, shape (n,).
        n_bins: number of equal-width bins.

    Returns:
        Dict of equal-length lists: ``bin_lower``, ``bin_upper``, ``bin_centre``,
        ``mean_predicted`` (mean p in the bin), ``fraction_positive`` (fraction
        of spirals in the bin) and ``count`` (ints).

    Raises:
        ValueError: on invalid labels/probabilities, mismatched lengths or n_bins < 1.
    """
    y, prob = _check_labels_and_probabilities(y_true, p)
    n_bins = _check_int("n_bins", n_bins, 1)
    counts, sum_y, sum_p = _bin_stats(y, prob, n_bins)
    k = np.flatnonzero(counts)
    return {
        "bin_lower": (k / n_bins).tolist(),
        "bin_upper": ((k + 1) / n_bins).tolist(),
        "bin_centre": ((k + 0.5) / n_bins).tolist(),
        "mean_predicted": (sum_p[k] / counts[k]).tolist(),
        "fraction_positive": (sum_y[k] / counts[k]).tolist(),
        "count": counts[k].tolist(),
    }


def roc_points(y_true: Any, p: Any, max_points: int = MAX_CURVE_POINTS) -> list[dict[str, Any]]:
    """ROC curve as a list of ``{"fpr", "tpr", "threshold"}`` dicts for DVC's simple/linear templates.

    Points come from ``sklearn.metrics.roc_curve`` (which already drops
    collinear points), ordered by increasing fpr, then thinned to at most
    `max_points` evenly spaced points, always keeping (0, 0) and (1, 1). A
    point's threshold means "spiral if p >= threshold"; the first point's
    threshold is None, standing for sklearn's +inf (nothing predicted spiral),
    because JSON has no infinity.

    Args:
        y_true: 0/1 labels, shape (n,).
        p: predicted probabilities of spiral, shape (n,).
        max_points: maximum number of points returned (>= 2).

    Returns:
        List of dicts of Python floats (threshold may be None); an empty list
        if only one class is present, since the ROC curve is then undefined.

    Raises:
        ValueError: on invalid labels/probabilities, mismatched lengths or max_points < 2.
    """
    y, prob = _check_labels_and_probabilities(y_true, p)
    max_points = _check_int("max_points", max_points, 2)
    if y.min() == y.max():
        return []
    fpr, tpr, thresholds = roc_curve(y, prob)
    return [
        {"fpr": float(fpr[i]), "tpr": float(tpr[i]), "threshold": _finite_or_none(thresholds[i])}
        for i in _thin_indices(fpr.shape[0], max_points)
    ]


def pr_points(y_true: Any, p: Any, max_points: int = MAX_CURVE_POINTS) -> list[dict[str, Any]]:
    """Precision-recall curve as a list of ``{"recall", "precision", "threshold"}`` dicts for DVC plots.

    Points come from ``sklearn.metrics.precision_recall_curve`` with spiral as
    the positive class, reordered by increasing recall (sklearn returns them
    decreasing), then thinned to at most `max_points` evenly spaced points,
    always keeping both ends. The first point is sklearn's (recall 0,
    precision 1) anchor, which has no threshold, so its threshold is None.

    Args:
        y_true: 0/1 labels, shape (n,).
        p: predicted probabilities of spiral, shape (n,).
        max_points: maximum number of points returned (>= 2).

    Returns:
        List of dicts of Python floats (threshold may be None); an empty list
        if only one class is present.

    Raises:
        ValueError: on invalid labels/probabilities, mismatched lengths or max_points < 2.
    """
    y, prob = _check_labels_and_probabilities(y_true, p)
    max_points = _check_int("max_points", max_points, 2)
    if y.min() == y.max():
        return []
    precision, recall, thresholds = precision_recall_curve(y, prob)
    # sklearn returns one more (precision, recall) pair than thresholds: the anchor at the end.
    thresholds = np.append(thresholds, np.nan)
    precision, recall, thresholds = precision[::-1], recall[::-1], thresholds[::-1]
    return [
        {
            "recall": float(recall[i]),
            "precision": float(precision[i]),
            "threshold": _finite_or_none(thresholds[i]),
        }
        for i in _thin_indices(recall.shape[0], max_points)
    ]
