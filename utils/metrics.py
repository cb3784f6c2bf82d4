"""Verification metrics in NumPy, vectorised over thresholds x pairs (no scikit-learn).

Protocol of the original (and of FaceNet's LFW evaluation): for each official fold, choose the
threshold with the best accuracy on the other folds, measure accuracy on the fold; VAL at a
target FAR uses a threshold interpolated on the other folds' FAR curve.
"""
import numpy as np

from utils.checks import check_rate

ACCURACY_THRESHOLDS = np.arange(0, 4, 0.01)
VAL_THRESHOLDS = np.arange(0, 4, 0.001)


def confusion(distances, same, thresholds):
    """True/false positive and negative counts for every threshold: arrays of len(thresholds).
    A pair is predicted 'same' when its distance is below the threshold."""
    d = np.asarray(distances, dtype=np.float64)
    s = np.asarray(same, dtype=bool)
    predicted = d[None, :] < np.asarray(thresholds, dtype=np.float64)[:, None]
    tp = (predicted & s).sum(axis=1)
    fp = (predicted & ~s).sum(axis=1)
    tn = (~predicted & ~s).sum(axis=1)
    fn = (~predicted & s).sum(axis=1)
    return tp, fp, tn, fn


def rates(distances, same, thresholds):
    """(tpr, fpr, accuracy) for every threshold."""
    tp, fp, tn, fn = confusion(distances, same, thresholds)
    tpr = np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1), 0.0)
    fpr = np.where(fp + tn > 0, fp / np.maximum(fp + tn, 1), 0.0)
    acc = (tp + tn) / len(distances)
    return tpr, fpr, acc


def threshold_at_far(distances, same, far_target, thresholds=VAL_THRESHOLDS):
    """Threshold whose FAR is `far_target`, by linear interpolation on the FAR curve.
    Returns 0.0 when no threshold reaches the target (as the original did)."""
    _, far, _ = rates(distances, same, thresholds)
    if far.max() < far_target:
        return 0.0
    # FAR rises with the threshold; keep the first threshold of each FAR level.
    levels, first = np.unique(far, return_index=True)
    if len(levels) == 1:
        return float(thresholds[first[0]])
    return float(np.interp(far_target, levels, thresholds[first]))


def val_far(distances, same, threshold):
    tpr, fpr, _ = rates(distances, same, [threshold])
    return float(tpr[0]), float(fpr[0])


def kfold_evaluate(distances, same, folds, far_target=1e-3):
    """Per-fold best threshold, accuracy, VAL and FAR, by the leave-one-fold-out protocol."""
    d = np.asarray(distances, dtype=np.float64)
    s = np.asarray(same, dtype=bool)
    folds = np.asarray(folds)
    out = {"fold": [], "threshold": [], "accuracy": [], "val": [], "far": []}
    for k in np.unique(folds):
        test, train = folds == k, folds != k
        _, _, acc_train = rates(d[train], s[train], ACCURACY_THRESHOLDS)
        best = ACCURACY_THRESHOLDS[int(np.argmax(acc_train))]
        _, _, acc_test = rates(d[test], s[test], [best])
        t_far = threshold_at_far(d[train], s[train], far_target)
        val, far = val_far(d[test], s[test], t_far)
        for key, value in zip(out, (int(k), float(best), float(acc_test[0]), val, far)):
            out[key].append(value)
    return {key: np.asarray(v) for key, v in out.items()}


def roc_auc(distances, same):
    """ROC over every distinct distance (exact), its AUC and the equal error rate."""
    d = np.asarray(distances, dtype=np.float64)
    s = np.asarray(same, dtype=bool)
    order = np.argsort(d, kind="mergesort")
    d, s = d[order], s[order]
    # Thresholds just above each distinct distance: predicted same = distance <= value.
    last = np.r_[np.nonzero(np.diff(d))[0], len(d) - 1]
    tp = np.cumsum(s)[last]
    fp = np.cumsum(~s)[last]
    tpr = np.r_[0.0, tp / max(s.sum(), 1)]
    fpr = np.r_[0.0, fp / max((~s).sum(), 1)]
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    fnr = 1 - tpr
    i = int(np.nonzero(fpr >= fnr)[0][0])
    if i == 0:
        eer = float(fpr[0])
    else:  # intersect the segment where fpr - fnr changes sign
        g0, g1 = fpr[i - 1] - fnr[i - 1], fpr[i] - fnr[i]
        t = g0 / (g0 - g1) if g0 != g1 else 0.0
        eer = float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))
    return fpr, tpr, auc, eer


def one_kind(same):
    """'same' or 'different' when every pair is of that kind, else None. ROC, AUC and EER
    need both kinds; so do VAL and FAR, within every fold."""
    s = np.asarray(same, dtype=bool)
    if s.all():
        return "same"
    return None if s.any() else "different"


def summarize(distances, same, folds, far_target=1e-3):
    """Everything eval_lfw reports, as plain Python numbers. A figure the pairs cannot define
    is None, and `undefined` says why (a number such as AUC 0 would read as measured)."""
    far_target = check_rate(far_target, "far_target")
    s = np.asarray(same, dtype=bool)
    folds = np.asarray(folds)
    _, _, acc_all = rates(distances, s, ACCURACY_THRESHOLDS)
    best = int(np.argmax(acc_all))
    overall = {
        "best_threshold": float(ACCURACY_THRESHOLDS[best]),
        "best_threshold_accuracy": float(acc_all[best]),
        "far_target": far_target,
        "auc": None,
        "eer": None,
        "roc": None,
        "undefined": {},
    }
    kind = one_kind(s)
    if kind:
        overall["undefined"]["auc"] = f"all {len(s)} pairs are '{kind}' pairs"
    else:
        fpr, tpr, overall["auc"], overall["eer"] = roc_auc(distances, s)
        overall["roc"] = {"fpr": fpr, "tpr": tpr}
    if len(np.unique(folds)) < 2:  # cross-validation needs at least two folds
        overall["undefined"]["accuracy"] = "one fold: cross-validation needs two or more"
        return overall
    per_fold = kfold_evaluate(distances, s, folds, far_target)
    n_folds = len(per_fold["fold"])
    acc = per_fold["accuracy"]
    summary = {
        **overall,
        "accuracy_mean": float(acc.mean()),
        "accuracy_std": float(acc.std()),
        "accuracy_sem": float(acc.std(ddof=1) / np.sqrt(n_folds)) if n_folds > 1 else 0.0,
        "threshold_mean": float(per_fold["threshold"].mean()),
        "threshold_std": float(per_fold["threshold"].std()),
        "val_mean": None, "val_std": None, "far_mean": None,
    }
    lopsided = [(k, one_kind(s[folds == k])) for k in per_fold["fold"].tolist()]
    lopsided = [(k, kind) for k, kind in lopsided if kind]
    if lopsided:
        summary["undefined"]["val"] = f"fold {lopsided[0][0]} has only '{lopsided[0][1]}' pairs"
        per_fold["val"] = per_fold["far"] = np.full(n_folds, None)
    else:
        summary.update(val_mean=float(per_fold["val"].mean()),
                       val_std=float(per_fold["val"].std()),
                       far_mean=float(per_fold["far"].mean()))
    summary["folds"] = {key: value.tolist() for key, value in per_fold.items()}
    return summary
