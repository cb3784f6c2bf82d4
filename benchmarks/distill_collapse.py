"""Why a MobileNet student can score exactly 50% in inference mode: the head's BatchNorm
statistics, measured on a trained student.

    python -m benchmarks.distill_collapse --weights STUDENT.weights.h5

The student's embedding is L2(BN(Dense(pool(features)))) with BN = (x - mean) / std + beta.
Inference uses the moving mean and variance. This script sets them three ways and scores LFW
fold 1 (the distillation benchmark's aligned crops) and the spread of the embeddings:
- "population": the true statistics of inference-mode features (what precise BN computes);
- "dropout 0.5": the variance the original's Dropout(0.5) before the bottleneck gives during
  training, which is what the moving variance converges to when it is trained with it;
- "lag k steps": the head's moving averages k steps (momentum 0.995, from mean 0 / variance
  1) after the statistics last changed;
- "all lag k steps": every BatchNorm's moving averages (the backbone's momentum 0.99, the
  head's 0.995) k steps from their start, as a run without precise BN has them after k steps.
"""
import argparse
import os

import numpy as np

from benchmarks.common import RESULTS, machine, write_result
from benchmarks.distill_lfw_mobilenet import ALIGN_MARGIN, ALIGN_SIZE, FACE_BOX, SHARED


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True, help="a distilled MobileNet (with its card)")
    p.add_argument("--aligned-dir", default=os.path.join(
        os.path.expanduser("~"), ".cache", "facenet", f"lfw_aligned{ALIGN_SIZE}_m{ALIGN_MARGIN}"))
    p.add_argument("--meta-dir", default=os.path.join(SHARED, "lfw_meta"))
    p.add_argument("--stat-images", type=int, default=640,
                   help="training images (folds 2-10) that give the statistics (default: 640)")
    p.add_argument("--out", default=RESULTS)
    args = p.parse_args(argv)

    import keras

    from utils.tf_preprocessing import preprocess_tf
    from benchmarks.train_lfw_mobilenet import fold1_pairs_file
    from facenet.evaluation import evaluate_pairs
    from facenet.predictor import Facenet
    from nets.mobilenet import HEAD_BATCHNORM_NAME
    from utils.lfw import read_pairs
    from utils.lfw_people import fold_entries, read_people_folds

    os.makedirs(args.out, exist_ok=True)
    crop = ",".join(f"{v:g}" for v in FACE_BOX)
    student = Facenet(model_path=args.weights, crop=crop, align="off", precision="float32",
                      fold_batchnorm=False)
    model = student.model
    bn = model.get_layer(HEAD_BATCHNORM_NAME)
    kernel = model.get_layer("Bottleneck").kernel.numpy()
    pooled = keras.Model(model.input, model.get_layer("AvgPool").output)
    folds = read_people_folds(os.path.join(args.meta_dir, "people.txt"))
    entries = fold_entries([person for fold in folds[1:] for person in fold], args.aligned_dir)
    rng = np.random.default_rng(0)
    paths = [entries[i][1] for i in rng.choice(len(entries), args.stat_images, replace=False)]
    crops = np.stack([student.prepare(path) for path in paths])
    features = pooled.predict(preprocess_tf(crops, student.preprocessing), verbose=0,
                              batch_size=64)
    pre = features @ kernel
    mask = rng.random(features.shape) < 0.5  # Dropout(0.5): keep half, scale by 2
    pre_dropout = (features * mask * 2.0) @ kernel
    true_mean, true_var = pre.mean(0), pre.var(0)
    variants = {"population": (true_mean, true_var),
                "dropout 0.5": (pre_dropout.mean(0), pre_dropout.var(0))}
    for steps in (185, 370, 740, 1850):  # 1, 2, 4 and 10 epochs of 11,864 images at batch 64
        w = 0.995 ** steps
        variants[f"lag {steps} steps"] = ((1 - w) * true_mean, w + (1 - w) * true_var)

    pairs = read_pairs(fold1_pairs_file(os.path.join(args.meta_dir, "pairs.txt"),
                                        os.path.join(args.out, "collapse_fold1_pairs.txt")),
                       args.aligned_dir)
    beta = bn.beta.numpy()
    result = {"machine": machine(), "weights": os.path.basename(args.weights),
              "beta_norm": float(np.linalg.norm(beta)),
              "signal_std": float(np.sqrt(true_var).mean()),
              "dropout_std": float(np.sqrt(pre_dropout.var(0)).mean()),
              "mean_norm": float(np.linalg.norm(true_mean)), "variants": {}}
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    saved = {id(n): [v.numpy() for v in (n.moving_mean, n.moving_variance)] for n in norms}
    probe = keras.Model(model.input, [n.input for n in norms])
    x = preprocess_tf(crops, student.preprocessing)
    sums = [[0.0, 0.0] for _ in norms]
    for lo in range(0, len(crops), 64):  # batch statistics, as training-mode BatchNorm sees
        for k, out in enumerate(probe(x[lo:lo + 64], training=True)):
            out = np.asarray(out, np.float64).reshape(-1, out.shape[-1])
            sums[k][0] += out.mean(0) * len(out)
            sums[k][1] += (out ** 2).mean(0) * len(out)
    layer_stats = [(a / len(crops), b / len(crops) - (a / len(crops)) ** 2) for a, b in sums]

    def lagged_everywhere(steps):
        for n, (mean, var) in zip(norms, layer_stats):
            w = n.momentum ** steps
            n.moving_mean.assign(((1 - w) * mean).astype("float32"))
            n.moving_variance.assign((w + (1 - w) * np.maximum(var, 0)).astype("float32"))

    for steps in (185, 370, 740):
        variants[f"all lag {steps} steps"] = steps
    for name, stats in variants.items():
        for n in norms:
            for v, value in zip((n.moving_mean, n.moving_variance), saved[id(n)]):
                v.assign(value)
        if isinstance(stats, int):
            lagged_everywhere(stats)
        else:
            bn.moving_mean.assign(stats[0].astype("float32"))
            bn.moving_variance.assign(stats[1].astype("float32"))
        student._build_forward()
        report = evaluate_pairs(student, pairs, progress=False)
        emb = student.embed(sorted({q for pair in pairs for q in (pair.path_1, pair.path_2)}))
        cos = emb @ emb.T
        spread = float(cos[~np.eye(len(emb), dtype=bool)].mean())
        result["variants"][name] = {"fold1_accuracy": report["best_threshold_accuracy"],
                                    "mean_pairwise_cosine": spread}
        print(f"{name:>16}: fold 1 {100 * report['best_threshold_accuracy']:.2f}%, mean "
              f"cosine between faces {spread:.4f}")
    for n in norms:
        for v, value in zip((n.moving_mean, n.moving_variance), saved[id(n)]):
            v.assign(value)
    print(f"|beta| {result['beta_norm']:.3f}, |mean| {result['mean_norm']:.3f}, per-unit std "
          f"{result['signal_std']:.4f} (with dropout 0.5: {result['dropout_std']:.4f})")
    write_result("distill_collapse", result, args.out)


if __name__ == "__main__":
    main()
