"""LFW evaluation end to end: this project's path against the original's method, same run.

The original's method: for each batch of pairs, load both images of every pair with PIL
(letterbox, preprocessing) in the main thread and embed them with `model.predict` - 12,000
embeddings for the 6,000 pairs, every image once per pair it is in. This project's: each of
the 7,701 distinct images embedded once, decoded in threads, a compiled forward pass with the
BatchNorms folded into the convolutions (optionally in bfloat16), or the engine and
precision "auto" chooses (ONNX Runtime int8 on a CPU with VNNI: facenet/engine.py). Both score the same pairs;
the distances must agree.

    python -m benchmarks.eval_speed --lfw-dir ../shared/data/lfw \
        --pairs ../shared/data/lfw_meta/pairs.txt [--limit 600] [--precisions float32,bfloat16] \
        [--compare-unfolded]
"""
import argparse
import time

import numpy as np

from benchmarks.common import machine, write_result


def original_method(model, pairs, batch_size):
    """Distances the original's way: every pair's two images loaded and embedded."""
    from utils.image import get_preprocessing, prepare_image

    preprocess = get_preprocessing(model.preprocessing)
    out = []
    for i in range(0, len(pairs), batch_size):
        chunk = pairs[i:i + batch_size]
        a = np.stack([prepare_image(p.path_1, model.input_shape, True, model._crop)
                      for p in chunk])
        b = np.stack([prepare_image(p.path_2, model.input_shape, True, model._crop)
                      for p in chunk])
        ea = model.model.predict(preprocess(a), verbose=0)
        eb = model.model.predict(preprocess(b), verbose=0)
        out.append(np.linalg.norm(ea - eb, axis=1))
    return np.concatenate(out)


def accuracy(summary):
    """10-fold mean accuracy; with --limit under two folds, the best-threshold accuracy."""
    return summary.get("accuracy_mean", summary["best_threshold_accuracy"])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lfw-dir", default="../shared/data/lfw")
    p.add_argument("--pairs", default="../shared/data/lfw_meta/pairs.txt")
    p.add_argument("--limit", type=int, default=0, help="score only the first N pairs")
    p.add_argument("--batch-size", type=int, default=32, help="original's batch (pairs)")
    p.add_argument("--precisions", default="float32,bfloat16",
                   help="this project's path in each of these precisions")
    p.add_argument("--compare-unfolded", action="store_true",
                   help="also run this project's path with BatchNorm not folded "
                        "(Facenet(fold_batchnorm=False)), to measure what folding gives")
    args = p.parse_args(argv)

    from facenet import Facenet
    from facenet.evaluation import evaluate_pairs, load_lfw_pairs
    from utils.metrics import summarize

    pairs, _ = load_lfw_pairs(args.pairs, args.lfw_dir)
    if args.limit:
        pairs = pairs[:args.limit]
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    rows = {}
    # the original's method runs on Keras; so does this project's float32 row, to compare with
    # it (another precision, "auto" above all, takes the engine it chooses: facenet/engine.py)
    model = Facenet(crop="lfw", align="off", precision="float32", engine="keras")
    t = time.perf_counter()
    d_orig = original_method(model, pairs, args.batch_size)
    orig_s = time.perf_counter() - t
    acc = accuracy(summarize(d_orig, same, folds))
    rows["original method, float32"] = {"seconds": round(orig_s, 1), "accuracy": acc,
                                        "embeddings": 2 * len(pairs)}
    print(f"original method, float32:   {orig_s:7.1f} s, {2 * len(pairs)} embeddings, "
          f"accuracy {100 * acc:.2f}%", flush=True)
    variants = [(precision, fold) for precision in args.precisions.split(",")
                for fold in ((True, False) if args.compare_unfolded else (True,))]
    for precision, fold in variants:
        if (precision, fold) != ("float32", True):
            model = Facenet(crop="lfw", align="off", precision=precision, fold_batchnorm=fold,
                            engine="keras" if precision in ("float32", "bfloat16") else "auto")
        label = f"{model.engine} {model.precision}" + (
            f" ({precision})" if precision != model.precision else "") + (
            "" if fold else ", BatchNorm not folded")
        r = evaluate_pairs(model, pairs, batch_size=64, progress=False)
        agree = float(np.abs(r["distances"] - d_orig).max())
        rows[f"this project, {label}"] = {
            "seconds": r["wall_seconds"], "accuracy": accuracy(r),
            "embeddings": r["images"], "speedup": round(orig_s / r["wall_seconds"], 2),
            "max_distance_difference_vs_original": round(agree, 5)}
        print(f"this project, {label}: {r['wall_seconds']:7.1f} s, {r['images']} "
              f"embeddings, accuracy {100 * accuracy(r):.2f}%, "
              f"{orig_s / r['wall_seconds']:.2f}x faster, distances differ by <= {agree:.4f}",
              flush=True)
    write_result("eval_speed", {"machine": machine(), "pairs": len(pairs),
                                "settings": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
