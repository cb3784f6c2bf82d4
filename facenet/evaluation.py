"""LFW verification: embed each distinct image once, in batches, then score the pairs by folds."""
import os
import time

import numpy as np

from utils.checks import check_rate
from utils.errors import PairsFileError
from utils.lfw import read_pairs, select_folds
from utils.metrics import summarize


def check_images(pairs, skip_missing=False):
    """Return the pairs whose images exist; missing ones are an error unless skipped."""
    missing = sorted({p for pair in pairs for p in (pair.path_1, pair.path_2)
                      if not os.path.exists(p)})
    if missing and not skip_missing:
        shown = "\n  ".join(missing[:5])
        raise PairsFileError(f"{len(missing)} pair images are missing, e.g.:\n  {shown}\n"
                             f"Check --lfw-dir, or pass --skip-missing to score the other pairs.")
    missing = set(missing)
    kept = [p for p in pairs if p.path_1 not in missing and p.path_2 not in missing]
    return kept, len(missing)


def embed_distinct(predictor, paths, batch_size=None, flip=False, progress=True):
    """{path: embedding} for the distinct `paths`, each embedded once."""
    from tqdm import tqdm

    paths = list(dict.fromkeys(paths))
    bar = tqdm(total=len(paths), unit="img", desc="Embedding", disable=not progress)
    parts = []
    for emb in predictor.iter_embeddings(paths, batch_size, flip=flip):
        parts.append(emb)
        bar.update(len(emb))
    bar.close()
    size = predictor.embedding_size
    embeddings = np.concatenate(parts) if parts else np.zeros((0, size), np.float32)
    return dict(zip(paths, embeddings))


def evaluate_pairs(predictor, pairs, batch_size=None, flip=False, progress=True,
                   far_target=1e-3):
    """Score `pairs` with `predictor`; returns the metrics summary plus counts and timing."""
    check_rate(far_target, "far_target")  # before the work, not after it
    start = time.perf_counter()
    before = dict(predictor.preparer.stats) if hasattr(predictor, "preparer") else {}
    table = embed_distinct(predictor, [p for pair in pairs for p in (pair.path_1, pair.path_2)],
                           batch_size, flip, progress)
    report = score_pairs(table, pairs, far_target)
    report.update(flip=flip, wall_seconds=round(time.perf_counter() - start, 2))
    if getattr(predictor, "align", "off") != "off":
        after = predictor.preparer.stats
        report["alignment"] = {k: after.get(k, 0) - before.get(k, 0)
                               for k in ("aligned", "fallback", "cached")}
        report["alignment"]["settings"] = predictor.aligner.settings()
    return report


def score_pairs(table, pairs, far_target=1e-3):
    """The metrics summary of `pairs` from {path: embedding}, with the distances and labels."""
    e1 = np.stack([table[p.path_1] for p in pairs])
    e2 = np.stack([table[p.path_2] for p in pairs])
    distances = np.linalg.norm(e1 - e2, axis=1)
    same = np.array([p.same for p in pairs])
    report = summarize(distances, same, np.array([p.fold for p in pairs]), far_target)
    report.update(pairs=len(pairs), images=len(table), distances=distances, same=same)
    return report


def load_lfw_pairs(pairs_path, lfw_dir, skip_missing=False, folds=None):
    """(pairs whose images exist, number of missing images); checked before any model loads.
    `folds`: fold numbers from 1 (utils.lfw.parse_folds) to keep, or None for all."""
    pairs = read_pairs(pairs_path, lfw_dir)
    if not os.path.isdir(lfw_dir):  # not hundreds of "missing" images
        raise PairsFileError(f"LFW image folder not found: {lfw_dir} (--lfw-dir)")
    if folds:
        pairs = select_folds(pairs, folds, pairs_path)
    pairs, n_missing = check_images(pairs, skip_missing)
    if not pairs:
        raise PairsFileError(f"no pair of {pairs_path} has both images under {lfw_dir}")
    return pairs, n_missing


def headline_accuracy(report):
    """(accuracy, what it is): the one figure eval_lfw.py and training's LFW check give. Two or
    more folds: the cross-validated mean. One fold: the accuracy at the best threshold for its
    own pairs, which is not cross-validated and says so."""
    if report.get("accuracy_mean") is not None:
        return report["accuracy_mean"], f"mean over {len(report['folds']['fold'])} folds"
    return (report["best_threshold_accuracy"],
            f"one fold: at its own best threshold {report['best_threshold']:.2f}, "
            f"not cross-validated")


def evaluate_lfw(predictor, lfw_dir, pairs_path, batch_size=None, flip=False,
                 skip_missing=False, progress=True, far_target=1e-3):
    pairs, n_missing = load_lfw_pairs(pairs_path, lfw_dir, skip_missing)
    report = evaluate_pairs(predictor, pairs, batch_size, flip, progress, far_target)
    report["missing_images"] = n_missing
    return report
