"""Verification metrics: vectorised = plain loops to 1e-9, and a set small enough to do by hand."""
import numpy as np
import pytest

from utils.metrics import (ACCURACY_THRESHOLDS, VAL_THRESHOLDS, kfold_evaluate, rates, roc_auc,
                           summarize, threshold_at_far, val_far)


def loop_rates(d, s, thresholds):
    tprs, fprs, accs = [], [], []
    for t in thresholds:
        tp = fp = tn = fn = 0
        for dist, same in zip(d, s):
            pred = dist < t
            tp += pred and same
            fp += pred and not same
            tn += (not pred) and not same
            fn += (not pred) and same
        tprs.append(tp / (tp + fn) if tp + fn else 0.0)
        fprs.append(fp / (fp + tn) if fp + tn else 0.0)
        accs.append((tp + tn) / len(d))
    return np.array(tprs), np.array(fprs), np.array(accs)


def loop_kfold(d, s, folds):
    accs, thresholds = [], []
    for k in sorted(set(folds)):
        train = [i for i in range(len(d)) if folds[i] != k]
        test = [i for i in range(len(d)) if folds[i] == k]
        _, _, acc_train = loop_rates(d[train], s[train], ACCURACY_THRESHOLDS)
        best = ACCURACY_THRESHOLDS[int(np.argmax(acc_train))]
        accs.append(loop_rates(d[test], s[test], [best])[2][0])
        thresholds.append(best)
    return np.array(accs), np.array(thresholds)


@pytest.fixture(scope="module")
def synthetic():
    rng = np.random.default_rng(0)
    n = 400
    same = rng.random(n) < 0.5
    d = np.where(same, rng.normal(0.8, 0.25, n), rng.normal(1.4, 0.25, n)).clip(0, 3.9)
    folds = np.repeat(np.arange(4), n // 4)
    return d, same, folds


def test_vectorised_rates_equal_loops(synthetic):
    d, s, _ = synthetic
    thresholds = np.arange(0, 4, 0.05)
    for got, want in zip(rates(d, s, thresholds), loop_rates(d, s, thresholds)):
        np.testing.assert_allclose(got, want, atol=1e-9, rtol=0)


def test_vectorised_kfold_equals_loops(synthetic):
    d, s, folds = synthetic
    per_fold = kfold_evaluate(d, s, folds)
    accs, thresholds = loop_kfold(d, s, folds)
    np.testing.assert_allclose(per_fold["accuracy"], accs, atol=1e-9, rtol=0)
    np.testing.assert_allclose(per_fold["threshold"], thresholds, atol=1e-9, rtol=0)


def test_auc_equals_pairwise_ranking(synthetic):
    d, s, _ = synthetic
    _, _, auc, eer = roc_auc(d, s)
    pos, neg = d[s], d[~s]  # AUC = P(a same pair is closer than a different pair)
    ranked = ((pos[:, None] < neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum())
    assert auc == pytest.approx(ranked / (len(pos) * len(neg)), abs=1e-9)
    assert 0 < eer < 0.5


def test_hand_computed_set():
    """Two folds of four pairs. Same pairs at 0.2, 0.4 / 0.3, 0.6; different at 1.0, 0.5 / 1.2,
    0.9. Fold 0's threshold is chosen on fold 1: any t in (0.6, 0.9] separates fold 1, the first
    on the grid is 0.61, which on fold 0 calls the 0.5 different pair "same": 3/4. Fold 1's
    threshold from fold 0: t in (0.4, 0.5] gives 0.41, which on fold 1 misses the 0.6 same pair:
    3/4."""
    d = np.array([0.2, 0.4, 1.0, 0.5, 0.3, 0.6, 1.2, 0.9])
    s = np.array([1, 1, 0, 0, 1, 1, 0, 0], bool)
    folds = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    r = summarize(d, s, folds)
    assert r["folds"]["threshold"] == pytest.approx([0.61, 0.41])
    assert r["accuracy_mean"] == pytest.approx(0.75)
    # Best single threshold on all 8: t in (0.4, 0.5] -> misses 0.6 same = 7/8.
    assert r["best_threshold"] == pytest.approx(0.41)
    assert r["best_threshold_accuracy"] == pytest.approx(7 / 8)
    # FAR 0 is reached at every threshold below the smallest different distance; VAL at a FAR
    # target of 0.5 on fold 1's pairs: FAR rises 0 -> 0.5 at 0.9, so the threshold is 0.901 (the
    # first grid point past 0.9), where fold 0 has VAL 2/2 and FAR 1/2.
    t = threshold_at_far(d[folds == 1], s[folds == 1], 0.5, VAL_THRESHOLDS)
    assert t == pytest.approx(0.901)
    assert val_far(d[folds == 0], s[folds == 0], t) == pytest.approx((1.0, 0.5))
    assert r["auc"] == pytest.approx(15 / 16)  # only (0.6 same, 0.5 different) is misordered


def test_val_threshold_is_zero_when_far_never_reaches_target():
    d = np.array([0.1, 0.2, 5.0, 6.0])  # different pairs beyond the 0..4 grid: FAR stays 0
    s = np.array([1, 1, 0, 0], bool)
    assert threshold_at_far(d, s, 1e-3) == 0.0


def test_pairs_of_one_kind_leave_roc_auc_val_undefined():
    """All 'same' pairs: no FAR, no ROC. Reported as None with the reason, not as 0."""
    d = np.array([0.2, 0.4, 0.3, 0.6])
    r = summarize(d, np.ones(4, bool), np.array([0, 0, 1, 1]))
    assert r["auc"] is None and r["eer"] is None and r["roc"] is None
    assert r["val_mean"] is None and r["far_mean"] is None
    assert r["undefined"]["auc"] == "all 4 pairs are 'same' pairs"
    assert r["accuracy_mean"] == 0.75  # still measured: 0.6 lies past the other fold's 0.41


def test_a_fold_of_one_kind_leaves_val_undefined():
    d = np.array([0.2, 1.4, 0.3, 0.6])
    r = summarize(d, np.array([1, 0, 1, 1], bool), np.array([0, 0, 1, 1]))
    assert r["auc"] == pytest.approx(1.0)  # defined over all pairs
    assert r["val_mean"] is None and r["folds"]["val"] == [None, None]
    assert r["undefined"]["val"] == "fold 1 has only 'same' pairs"
