"""Tests for cosmic.evaluation.metrics against values computed by hand on tiny arrays."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from cosmic.evaluation.metrics import (
    accuracy,
    bootstrap_ci,
    calibration_curve,
    classification_metrics,
    expected_calibration_error,
    mcnemar,
    pr_points,
    roc_points,
)


def _json_roundtrip(obj):
    """Fail if obj is not strictly JSON-serialisable (no NaN/inf, no numpy types)."""
    return json.loads(json.dumps(obj, allow_nan=False))


def _assert_plain(obj):
    """Recursively check that obj holds only plain Python types (no numpy scalars)."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            assert type(key) is str
            _assert_plain(value)
    elif isinstance(obj, list):
        for value in obj:
            _assert_plain(value)
    else:
        assert obj is None or type(obj) in (int, float, str), (obj, type(obj))


# --------------------------------------------------------------------------- #
# classification_metrics
# --------------------------------------------------------------------------- #


def test_perfect_classifier():
    m = classification_metrics([0, 0, 1, 1], [0.0, 0.0, 1.0, 1.0])
    assert m["n"] == 4
    assert m["accuracy"] == 1.0
    assert m["balanced_accuracy"] == 1.0
    assert m["roc_auc"] == 1.0
    assert m["average_precision"] == 1.0
    # Clipping at 1e-7 makes the loss -log(1 - 1e-7) ~ 1e-7 rather than exactly 0.
    assert m["log_loss"] == pytest.approx(0.0, abs=1e-6)
    assert m["brier"] == 0.0
    assert m["ece"] == 0.0
    assert m["confusion_matrix"] == {"tn": 2, "fp": 0, "fn": 0, "tp": 2}
    for name in ("elliptical", "spiral"):
        assert m[name] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert m["macro"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    _assert_plain(m)
    _json_roundtrip(m)


def test_all_wrong_classifier():
    m = classification_metrics([0, 0, 1, 1], [1.0, 0.9, 0.1, 0.0])
    assert m["accuracy"] == 0.0
    assert m["balanced_accuracy"] == 0.0
    assert m["roc_auc"] == 0.0
    assert m["confusion_matrix"] == {"tn": 0, "fp": 2, "fn": 2, "tp": 0}
    for name in ("elliptical", "spiral"):
        assert m[name] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    # Two confident mistakes at the clip (log 1e-7) and two at 0.9/0.1 (log 0.1).
    expected = -(2 * math.log(1e-7) + 2 * math.log(0.1)) / 4
    assert m["log_loss"] == pytest.approx(expected, rel=1e-6)
    assert math.isfinite(m["log_loss"])
    # (1 + 0.81 + 0.81 + 1) / 4
    assert m["brier"] == pytest.approx(0.905)
    _json_roundtrip(m)


def test_hand_computed_example():
    y = [0, 0, 0, 0, 1, 1, 1, 1, 1, 0]
    p = [0.1, 0.6, 0.7, 0.2, 0.8, 0.4, 0.9, 0.55, 0.3, 0.65]
    # Predictions (p > 0.5): 0 1 1 0 1 0 1 1 0 1
    # -> tp = 3 (idx 4, 6, 7), fn = 2 (idx 5, 8), fp = 3 (idx 1, 2, 9), tn = 2 (idx 0, 3)
    m = classification_metrics(y, p)
    assert m["confusion_matrix"] == {"tn": 2, "fp": 3, "fn": 2, "tp": 3}
    assert m["n"] == 10
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["spiral"]["precision"] == pytest.approx(3 / 6)
    assert m["spiral"]["recall"] == pytest.approx(3 / 5)
    assert m["spiral"]["f1"] == pytest.approx(6 / 11)  # 2*0.5*0.6/(0.5+0.6)
    assert m["spiral"]["support"] == 5
    assert m["elliptical"]["precision"] == pytest.approx(2 / 4)
    assert m["elliptical"]["recall"] == pytest.approx(2 / 5)
    assert m["elliptical"]["f1"] == pytest.approx(4 / 9)  # 2*0.5*0.4/(0.5+0.4)
    assert m["elliptical"]["support"] == 5
    assert m["balanced_accuracy"] == pytest.approx((3 / 5 + 2 / 5) / 2)
    assert m["macro"]["precision"] == pytest.approx(0.5)
    assert m["macro"]["recall"] == pytest.approx(0.5)
    assert m["macro"]["f1"] == pytest.approx((6 / 11 + 4 / 9) / 2)
    # AUC by counting (positive, negative) pairs ranked correctly:
    # 0.8 beats 5, 0.4 beats 2, 0.9 beats 5, 0.55 beats 2, 0.3 beats 2 -> 16/25.
    assert m["roc_auc"] == pytest.approx(16 / 25)
    _assert_plain(m)


def test_hand_computed_agrees_with_sklearn():
    from sklearn import metrics as skm

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 200), 0, 1)
    m = classification_metrics(y, p)
    pred = (p > 0.5).astype(int)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    prec, rec, f1, sup = skm.precision_recall_fscore_support(y, pred, labels=[0, 1], zero_division=0)
    for i, name in enumerate(("elliptical", "spiral")):
        assert m[name]["precision"] == pytest.approx(prec[i])
        assert m[name]["recall"] == pytest.approx(rec[i])
        assert m[name]["f1"] == pytest.approx(f1[i])
        assert m[name]["support"] == sup[i]
    assert m["macro"]["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, p))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p))
    assert m["average_precision"] == pytest.approx(skm.average_precision_score(y, p))
    tn, fp, fn, tp = skm.confusion_matrix(y, pred).ravel()
    assert m["confusion_matrix"] == {"tn": tn, "fp": fp, "fn": fn, "tp": tp}


def test_brier_and_log_loss_by_hand():
    m = classification_metrics([0, 1], [0.2, 0.6])
    assert m["brier"] == pytest.approx((0.2**2 + 0.4**2) / 2)
    assert m["log_loss"] == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)


def test_threshold_is_strict_and_configurable():
    # p == threshold counts as elliptical (Keras BinaryAccuracy uses p > threshold).
    assert classification_metrics([0, 1], [0.5, 0.7])["accuracy"] == 1.0
    m = classification_metrics([0, 1], [0.5, 0.7], threshold=0.8)
    assert m["confusion_matrix"] == {"tn": 1, "fp": 0, "fn": 1, "tp": 0}
    assert m["threshold"] == 0.8


def test_single_class_edge_case_spirals_only():
    m = classification_metrics([1, 1, 1], [0.2, 0.7, 0.9])
    assert m["roc_auc"] is None
    assert m["average_precision"] == 1.0  # every ranking has precision 1
    assert m["confusion_matrix"] == {"tn": 0, "fp": 0, "fn": 1, "tp": 2}
    assert m["accuracy"] == pytest.approx(2 / 3)
    # Only spirals are present, so balanced accuracy is the spiral recall.
    assert m["balanced_accuracy"] == pytest.approx(2 / 3)
    assert m["elliptical"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    _assert_plain(m)
    text = json.dumps(m, allow_nan=False)
    assert "NaN" not in text and "Infinity" not in text


def test_single_class_edge_case_ellipticals_only():
    m = classification_metrics([0, 0], [0.2, 0.7])
    assert m["roc_auc"] is None
    assert m["average_precision"] is None
    assert m["spiral"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["balanced_accuracy"] == pytest.approx(0.5)
    json.dumps(m, allow_nan=False)
    assert roc_points([0, 0], [0.2, 0.7]) == []
    assert pr_points([0, 0], [0.2, 0.7]) == []
    assert roc_points([1, 1], [0.2, 0.7]) == []


def test_custom_class_names_and_column_input():
    p = np.array([[0.1], [0.9]], dtype=np.float32)  # Keras predict() shape
    m = classification_metrics(np.array([0, 1], dtype=np.int8), p, class_names=("E", "S"))
    assert set(m["E"]) == {"precision", "recall", "f1", "support"}
    assert m["S"]["support"] == 1
    assert "elliptical" not in m
    _assert_plain(m)


def test_bool_and_float_labels_accepted():
    a = classification_metrics([False, True], [0.1, 0.9])
    b = classification_metrics([0.0, 1.0], [0.1, 0.9])
    assert a == b == classification_metrics([0, 1], [0.1, 0.9])


# --------------------------------------------------------------------------- #
# ECE and calibration curve
# --------------------------------------------------------------------------- #

ECE_Y = [0, 0, 1, 1, 1]
ECE_P = [0.1, 0.15, 0.35, 0.8, 0.9]


def test_ece_hand_computed_ten_bins():
    # Bins: [0.1,0.2): p 0.1, 0.15 / y 0, 0 -> 2/5 * |0 - 0.125| = 0.05
    #       [0.3,0.4): p 0.35 / y 1         -> 1/5 * 0.65        = 0.13
    #       [0.8,0.9): p 0.8 / y 1          -> 1/5 * 0.2         = 0.04
    #       [0.9,1.0]: p 0.9 / y 1          -> 1/5 * 0.1         = 0.02
    assert expected_calibration_error(ECE_Y, ECE_P, n_bins=10) == pytest.approx(0.24)
    assert classification_metrics(ECE_Y, ECE_P)["ece"] == pytest.approx(0.24)


def test_ece_hand_computed_two_bins():
    # [0, 0.5): y 0,0,1 (mean 1/3), p mean 0.2 -> 3/5 * 2/15 = 0.08
    # [0.5, 1]: y 1,1, p mean 0.85            -> 2/5 * 0.15 = 0.06
    assert expected_calibration_error(ECE_Y, ECE_P, n_bins=2) == pytest.approx(0.14)
    assert classification_metrics(ECE_Y, ECE_P, n_bins=2)["ece"] == pytest.approx(0.14)


def test_ece_zero_when_calibrated():
    assert expected_calibration_error([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.0


def test_calibration_curve_hand_computed():
    c = calibration_curve(ECE_Y, ECE_P, n_bins=10)
    assert c["bin_lower"] == pytest.approx([0.1, 0.3, 0.8, 0.9])
    assert c["bin_upper"] == pytest.approx([0.2, 0.4, 0.9, 1.0])
    assert c["bin_centre"] == pytest.approx([0.15, 0.35, 0.85, 0.95])
    assert c["mean_predicted"] == pytest.approx([0.125, 0.35, 0.8, 0.9])
    assert c["fraction_positive"] == pytest.approx([0.0, 1.0, 1.0, 1.0])
    assert c["count"] == [2, 1, 1, 1]
    _assert_plain(c)
    _json_roundtrip(c)


def test_calibration_bin_edges():
    # Values on an edge go to the bin above, despite 0.57 * 100 == 56.99999999999999;
    # 1.0 goes in the last bin and 0.0 in the first.
    c = calibration_curve([1, 0, 1], [0.57, 0.0, 1.0], n_bins=100)
    assert c["bin_lower"] == pytest.approx([0.0, 0.57, 0.99])
    c = calibration_curve([1, 0], [0.3, 0.7], n_bins=10)
    assert c["bin_lower"] == pytest.approx([0.3, 0.7])
    assert c["count"] == [1, 1]


# --------------------------------------------------------------------------- #
# McNemar
# --------------------------------------------------------------------------- #


def _pairs(b, c, both_right=0, both_wrong=0):
    """Correctness vectors with the given contingency table."""
    a = [True] * b + [False] * c + [True] * both_right + [False] * both_wrong
    bb = [False] * b + [True] * c + [True] * both_right + [False] * both_wrong
    return a, bb


def test_mcnemar_exact_known_table():
    a, b = _pairs(10, 2, both_right=5, both_wrong=3)
    r = mcnemar(a, b)
    # Two-sided exact binomial: 2 * P(X <= 2), X ~ Bin(12, 1/2).
    expected = 2 * sum(math.comb(12, k) for k in range(3)) / 2**12  # 158 / 4096
    assert r["b"] == 10 and r["c"] == 2
    assert r["method"] == "exact_binomial"
    assert r["p_value"] == pytest.approx(expected)
    assert r["p_value"] == pytest.approx(0.0385742, abs=1e-6)
    assert r["statistic"] == 2.0
    _assert_plain(r)
    # Swapping the models swaps b and c but not the p-value.
    s = mcnemar(b, a)
    assert (s["b"], s["c"]) == (2, 10)
    assert s["p_value"] == pytest.approx(expected)


def test_mcnemar_chi2_known_table():
    a, b = _pairs(30, 12, both_right=50)
    r = mcnemar(np.array(a, dtype=int), np.array(b, dtype=int))
    stat = (abs(30 - 12) - 1) ** 2 / (30 + 12)
    assert r["method"] == "chi2_continuity"
    assert r["statistic"] == pytest.approx(stat)
    # Chi-square survival function with 1 d.o.f.: erfc(sqrt(x / 2)).
    assert r["p_value"] == pytest.approx(math.erfc(math.sqrt(stat / 2)))


def test_mcnemar_branch_boundary():
    assert mcnemar(*_pairs(20, 4))["method"] == "exact_binomial"  # b + c = 24
    assert mcnemar(*_pairs(20, 5))["method"] == "chi2_continuity"  # b + c = 25


def test_mcnemar_no_disagreement_and_balanced():
    r = mcnemar(*_pairs(0, 0, both_right=4, both_wrong=1))
    assert (r["b"], r["c"], r["p_value"]) == (0, 0, 1.0)
    assert mcnemar(*_pairs(5, 5))["p_value"] == pytest.approx(1.0)
    _json_roundtrip(r)


# --------------------------------------------------------------------------- #
# Bootstrap
# --------------------------------------------------------------------------- #


def _bootstrap_data(n=200, seed=3):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    # ~80% correct predictions.
    y_pred = np.where(rng.uniform(size=n) < 0.8, y, 1 - y)
    return y, y_pred


def test_bootstrap_deterministic_and_contains_point_estimate():
    y, y_pred = _bootstrap_data()
    ci1 = bootstrap_ci(y, y_pred, seed=42)
    ci2 = bootstrap_ci(y, y_pred, seed=42)
    assert ci1 == ci2
    assert all(type(v) is float for v in ci1)
    point = accuracy(y, y_pred)
    assert ci1[0] < point < ci1[1]
    assert bootstrap_ci(y, y_pred, seed=43) != ci1
    # A wider level gives a wider interval on the same resamples.
    lo90, hi90 = bootstrap_ci(y, y_pred, level=0.90, seed=42)
    assert ci1[0] <= lo90 and hi90 <= ci1[1]


def test_bootstrap_matches_reference_and_generic_path():
    y, y_pred = _bootstrap_data(n=50)
    ci = bootstrap_ci(y, y_pred, n_resamples=300, level=0.9, seed=7)
    # Reference: one (n_resamples, n) draw and percentile quantiles.
    idx = np.random.default_rng(7).integers(0, 50, size=(300, 50))
    stats = (y[idx] == y_pred[idx]).mean(axis=1)
    assert ci == pytest.approx(tuple(np.quantile(stats, [0.05, 0.95])))
    # A non-vectorised metric sees the same resamples.
    generic = bootstrap_ci(
        y, y_pred, metric=lambda t, q: float(np.mean(t == q)), n_resamples=300, level=0.9, seed=7
    )
    assert generic == ci


def test_bootstrap_chunking_does_not_change_result():
    # n large enough that indices are drawn in several chunks.
    y, y_pred = _bootstrap_data(n=4001)
    ci = bootstrap_ci(y, y_pred, n_resamples=1000, seed=0)
    idx = np.random.default_rng(0).integers(0, 4001, size=(1000, 4001))
    stats = (y[idx] == y_pred[idx]).mean(axis=1)
    assert ci == pytest.approx(tuple(np.quantile(stats, [0.025, 0.975])))


def test_bootstrap_skips_undefined_resamples():
    from sklearn.metrics import roc_auc_score

    def auc(t, s):
        return roc_auc_score(t, s) if t.min() != t.max() else None

    y = [0, 1, 0, 1]
    p = [0.1, 0.9, 0.4, 0.6]
    lo, hi = bootstrap_ci(y, p, metric=auc, n_resamples=200)
    assert lo == 1.0 and hi == 1.0
    assert bootstrap_ci([1, 1], [0.3, 0.4], metric=auc, n_resamples=20) == (None, None)


# --------------------------------------------------------------------------- #
# ROC / PR points
# --------------------------------------------------------------------------- #

CURVE_Y = [0, 0, 1, 1]
CURVE_P = [0.1, 0.4, 0.35, 0.8]


def test_roc_points_hand_computed():
    pts = roc_points(CURVE_Y, CURVE_P)
    # Thresholds (spiral if p >= t): none, 0.8, 0.4, 0.35, 0.1.
    assert pts == [
        {"fpr": 0.0, "tpr": 0.0, "threshold": None},
        {"fpr": 0.0, "tpr": 0.5, "threshold": 0.8},
        {"fpr": 0.5, "tpr": 0.5, "threshold": 0.4},
        {"fpr": 0.5, "tpr": 1.0, "threshold": 0.35},
        {"fpr": 1.0, "tpr": 1.0, "threshold": 0.1},
    ]
    _assert_plain(pts)
    _json_roundtrip(pts)


def test_pr_points_hand_computed():
    pts = pr_points(CURVE_Y, CURVE_P)
    recall = [pt["recall"] for pt in pts]
    precision = [pt["precision"] for pt in pts]
    assert recall == pytest.approx([0.0, 0.5, 0.5, 1.0, 1.0])
    assert precision == pytest.approx([1.0, 1.0, 0.5, 2 / 3, 0.5])
    assert [pt["threshold"] for pt in pts] == [None, 0.8, 0.4, 0.35, 0.1]
    _assert_plain(pts)
    _json_roundtrip(pts)


def test_curves_are_thinned_and_keep_endpoints():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 5000)
    p = np.clip(0.2 * y + rng.uniform(0, 0.8, 5000), 0, 1)
    roc = roc_points(y, p)
    assert 2 <= len(roc) <= 200
    assert (roc[0]["fpr"], roc[0]["tpr"]) == (0.0, 0.0)
    assert (roc[-1]["fpr"], roc[-1]["tpr"]) == (1.0, 1.0)
    assert all(a["fpr"] <= b["fpr"] for a, b in zip(roc, roc[1:]))
    pr = pr_points(y, p)
    assert 2 <= len(pr) <= 200
    assert (pr[0]["recall"], pr[0]["precision"]) == (0.0, 1.0)
    assert pr[-1]["recall"] == 1.0
    assert all(a["recall"] <= b["recall"] for a, b in zip(pr, pr[1:]))
    assert len(roc_points(y, p, max_points=10)) <= 10
    _json_roundtrip({"roc": roc, "pr": pr})


# --------------------------------------------------------------------------- #
# Validation
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("y", "p", "match"),
    [
        ([0, 1, 2], [0.1, 0.2, 0.3], r"y_true must contain only 0/1 labels; found .*2.* at index 2"),
        ([0, 0.5], [0.1, 0.2], r"y_true .*0/1.*0\.5.* at index 1"),
        ([0, float("nan")], [0.1, 0.2], r"y_true .*0/1.*nan.* at index 1"),
        ([0, 1], [0.1, 1.5], r"p must be within \[0, 1\]; found .*1\.5.* at index 1"),
        ([0, 1], [-0.1, 0.5], r"p must be within \[0, 1\]; found .*-0\.1.* at index 0"),
        ([0, 1], [0.1, float("nan")], r"p must be finite; found .*nan.* at index 1"),
        ([0, 1], [0.1, float("inf")], r"p must be finite; found .*inf.* at index 1"),
        ([0, 1, 1], [0.1, 0.2], r"same length; got 3 and 2"),
        ([], [], r"y_true is empty"),
        ([[0, 1], [1, 0]], [0.1, 0.2], r"y_true must be 1-D"),
        (["a", "b"], [0.1, 0.2], r"y_true must be numeric"),
    ],
)
def test_validation_errors(y, p, match):
    fns = (classification_metrics, calibration_curve, roc_points, pr_points, expected_calibration_error)
    for fn in fns:
        with pytest.raises(ValueError, match=match):
            fn(y, p)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"threshold": 1.5}, "threshold"),
        ({"threshold": float("nan")}, "threshold"),
        ({"n_bins": 0}, "n_bins"),
        ({"n_bins": 2.5}, "n_bins"),
        ({"class_names": ("a",)}, "class_names"),
        ({"class_names": ("a", "a")}, "class_names"),
        ({"class_names": ("accuracy", "spiral")}, "accuracy"),
    ],
)
def test_classification_metrics_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        classification_metrics([0, 1], [0.2, 0.8], **kwargs)


def test_bootstrap_and_mcnemar_validation():
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci([0, 1], [0, 1], level=1.0)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_ci([0, 1], [0, 1], n_resamples=0)
    with pytest.raises(
        ValueError, match=r"y_pred must contain only 0/1 labels; found .*0\.7.* at index 1"
    ):
        bootstrap_ci([0, 1], [0, 0.7])
    with pytest.raises(ValueError, match="same length"):
        bootstrap_ci([0, 1], [0, 1, 1])
    with pytest.raises(
        ValueError, match=r"correct_b must contain only booleans or 0/1 values; found .*2.* at index 0"
    ):
        mcnemar([True, False], [2, 1])
    with pytest.raises(ValueError, match="same length"):
        mcnemar([True, False], [True])
    with pytest.raises(ValueError, match="max_points"):
        roc_points([0, 1], [0.2, 0.8], max_points=1)
