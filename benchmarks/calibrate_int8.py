"""Make the int8 calibration table of a registered model (development only: needs LFW).

    python -m benchmarks.calibrate_int8 --backbone inception_resnetv1 [--faces 300]
        [--float-nodes auto|none|NODE,NODE] [--methods minmax,percentile:99.999,...]
        [--lfw-dir ../shared/data/lfw]

Calibration faces: one aligned image of each of `--faces` people of LFW View 2 folds 2-10
(never fold 1, which scores the result). Held-out faces: another image of other people of those
folds, on which each candidate (a calibration method: min-max or a percentile of absolute
values, times a set of float nodes and bias corrections) is judged by its mean cosine to
float32; of those reaching `--min-mean-cosine` (embeddings within about 0.03 of their float32
selves), the one with the fewest nodes in float is chosen, as the fastest (the choice is not
made on fold 1); each candidate's speed at batch 32 is printed beside it. Then fold 1's 600
pairs are scored in float32 and int8 with the chosen table, which is written to
facenet/calibration/<model>.int8.json; its sha256 goes into the registry (facenet/weights.py,
`int8_table_sha256`).
"""
import argparse
import dataclasses
import os
import sys

import numpy as np

from benchmarks.common import machine, write_result

# Candidate float-node sets, per backbone: the first and last layers are where int8 is known to
# hurt small networks most (MobileNet's depthwise stack); for Inception-ResNet-V1 also its
# second convolution, the block `python -m benchmarks.int8_sensitivity` finds most sensitive,
# or that convolution in int8 with its bias corrected (the convolutions named in BIAS_CORRECTED).
CANDIDATES = {
    "inception_resnetv1": {"none": [], "first_last": ["Conv2d_1a_3x3", "Bottleneck"],
                           "first_last_bc2a": ["Conv2d_1a_3x3", "Bottleneck"],
                           "first_two_last": ["Conv2d_1a_3x3", "Conv2d_2a_3x3",
                                              "Conv2d_2a_3x3_Activation", "Bottleneck"]},
    "mobilenet": {"none": [], "first_last": ["conv1", "Bottleneck"],
                  "first_dw_last": ["conv1", "conv_dw_1", "conv_pw_1", "Bottleneck"],
                  "first_two_dw_last": ["conv1", "conv_dw_1", "conv_pw_1", "conv_dw_2",
                                        "conv_pw_2", "Bottleneck"]},
}

BIAS_CORRECTED = {"first_last_bc2a": ["Conv2d_2a_3x3"]}


def batch32_speed(session, batch, repeats=5):
    """Images/s of one batch through an ONNX Runtime session: the median of `repeats`, after
    one untimed run (the candidates' relative speed, same process, same run)."""
    import time

    session.run(None, {"images": batch})
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, {"images": batch})
        times.append(time.perf_counter() - start)
    return round(len(batch) / float(np.median(times)), 1)


def choose_candidate(scores, floor):
    """The fastest candidate that stays faithful: of those whose mean held-out cosine to
    float32 reaches `floor`, the one with the fewest nodes in float (then the best mean);
    where none does, the best mean."""
    faithful = [k for k in scores if scores[k]["held_out_mean_cosine"] >= floor]
    if not faithful:
        return max(scores, key=lambda k: scores[k]["held_out_mean_cosine"])
    return min(faithful, key=lambda k: (len(scores[k]["float_nodes"]),
                                        -scores[k]["held_out_mean_cosine"]))


def lfw_faces(meta_dir, lfw_dir, n_calib, n_held):
    """(calibration paths, held-out paths): distinct people of folds 2-10, spread evenly."""
    from utils.lfw_people import read_people_folds

    folds = read_people_folds(os.path.join(meta_dir, "people.txt"))
    people = sorted(name for fold in folds[1:] for name, _ in fold)
    step = max(1, len(people) // (n_calib + n_held))
    chosen = people[::step][:n_calib + n_held]

    def first(name):
        folder = os.path.join(lfw_dir, name)
        return os.path.join(folder, sorted(os.listdir(folder))[0])

    paths = [first(n) for n in chosen]
    return paths[:n_calib], paths[n_calib:]


def float_model_and_faces(backbone, meta_dir, lfw_dir, n_calib, n_held):
    """(Keras float32 predictor, calibration crops, held-out crops, float32 ONNX graph) of the
    registry's model of `backbone`: what calibrating and judging int8 start from."""
    from facenet.onnx_build import keras_to_onnx
    from facenet.predictor import Facenet

    keras_f = Facenet(backbone=backbone, engine="keras", precision="float32", align_cache=True)
    calib, held = lfw_faces(meta_dir, lfw_dir, n_calib, n_held)
    calib_crops, _ = keras_f.prepare_faces(calib)
    held_crops, _ = keras_f.prepare_faces(held)
    return (keras_f, calib_crops, held_crops,
            keras_to_onnx(keras_f.inference_model, keras_f.preprocessing))


def fold1_accuracy(predictor, pairs_path, lfw_dir):
    from facenet.evaluation import evaluate_pairs
    from utils.lfw import read_pairs

    pairs = read_pairs(pairs_path, lfw_dir)[:600]
    r = evaluate_pairs(predictor, pairs, progress=False)
    return r["best_threshold_accuracy"], r["distances"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", required=True, choices=sorted(CANDIDATES))
    p.add_argument("--lfw-dir", default="../shared/data/lfw")
    p.add_argument("--meta-dir", default="../shared/data/lfw_meta")
    p.add_argument("--faces", type=int, default=300)
    p.add_argument("--held-out", type=int, default=200)
    p.add_argument("--float-nodes", default="auto",
                   help="auto: the candidate with the best held-out cosine; a candidate's "
                        "label; none; or a list of nodes")
    p.add_argument("--methods", default="minmax,percentile:99.99,percentile:99.999,"
                                         "percentile:99.9995",
                   help="calibration methods to try: minmax, percentile:P")
    p.add_argument("--min-mean-cosine", type=float, default=0.9995,
                   help="candidates whose mean held-out cosine to float32 reaches this are "
                        "faithful; the one with the fewest float nodes is chosen")
    p.add_argument("--no-fold1", action="store_true", help="skip scoring fold 1")
    args = p.parse_args(argv)
    if not os.path.isdir(args.lfw_dir):
        raise SystemExit(f"no LFW at --lfw-dir {args.lfw_dir}")

    import onnxruntime as ort

    from facenet import weights as registry
    from facenet.predictor import Facenet
    from facenet.quantize import (calibrate, conv_input_means, quantize_with_table,
                                  table_path, write_table)
    from utils.fileio import sha256_of

    name = registry.default_model(args.backbone)
    keras_f, calib_crops, held_crops, proto = float_model_and_faces(
        args.backbone, args.meta_dir, args.lfw_dir, args.faces, args.held_out)
    methods = {}
    for spec in args.methods.split(","):
        kind, _, pct = spec.partition(":")
        methods[spec] = calibrate(proto, [calib_crops[i:i + 32]
                                          for i in range(0, len(calib_crops), 32)],
                                  method=kind, percentile=float(pct or 99.999))
    ref = ort.InferenceSession(proto.SerializeToString())
    ref_emb = ref.run(None, {"images": held_crops})[0]
    about = {"model": name, "weights_sha256": sha256_of(keras_f.model_path),
             "backbone": args.backbone, "input_shape": list(keras_f.input_shape),
             "preprocessing": keras_f.preprocessing,
             "faces": f"{len(calib_crops)} MTCNN-aligned LFW images, one of each of {len(calib_crops)} "
                      f"people of View 2 folds 2-10",
             "command": "python -m benchmarks.calibrate_int8 " + " ".join(
                 sys.argv[1:] if argv is None else argv)}
    candidates = CANDIDATES[args.backbone]
    if args.float_nodes in candidates:  # one candidate, by its label
        candidates = {args.float_nodes: candidates[args.float_nodes]}
    elif args.float_nodes != "auto":
        nodes = [] if args.float_nodes == "none" else args.float_nodes.split(",")
        candidates = {args.float_nodes: nodes}
    batches = [calib_crops[i:i + 32] for i in range(0, len(calib_crops), 32)]
    corrected = sorted({c for label in candidates for c in BIAS_CORRECTED.get(label, [])})
    means = conv_input_means(proto, batches, corrected) if corrected else {}
    scores = {}
    for method, ranges in methods.items():
        for label, nodes in candidates.items():
            fixes = {c: means[c] for c in BIAS_CORRECTED.get(label, [])}
            table = {"ranges": ranges, "float_nodes": nodes, "bias_correction": fixes}
            q = ort.InferenceSession(quantize_with_table(proto, table).SerializeToString())
            cos = (q.run(None, {"images": held_crops})[0] * ref_emb).sum(1)
            speed = batch32_speed(q, held_crops[:32])
            key = f"{method} {label}"
            scores[key] = {"method": method, "float_nodes": nodes,
                           "bias_correction": sorted(fixes),
                           "held_out_min_cosine": float(cos.min()),
                           "held_out_mean_cosine": float(cos.mean()),
                           "batch32_img_s": speed}
            print(f"{key:>32}: held-out cosine to float32 min {cos.min():.5f}, "
                  f"mean {cos.mean():.5f}; {speed:.1f} img/s at batch 32")
    best = choose_candidate(scores, args.min_mean_cosine)
    out = table_path(name)
    write_table(out, methods[scores[best]["method"]], scores[best]["float_nodes"],
                {**about, "method": scores[best]["method"]},
                {c: means[c] for c in scores[best]["bias_correction"]})
    print(f"Chose {best}; wrote {out} sha256 {sha256_of(out)}")
    result = {"machine": machine(), "model": name, "candidates": scores, "chosen": best, "table": os.path.basename(out),
              "table_sha256": sha256_of(out)}
    if not args.no_fold1:
        pairs_path = os.path.join(args.meta_dir, "pairs.txt")
        acc32, d32 = fold1_accuracy(keras_f, pairs_path, args.lfw_dir)
        registry.MODELS[name] = dataclasses.replace(
            registry.MODELS[name], int8_table_sha256=sha256_of(out))
        int8_f = Facenet(backbone=args.backbone, engine="onnx", precision="int8",
                         align_cache=True)
        acc8, d8 = fold1_accuracy(int8_f, pairs_path, args.lfw_dir)
        result["fold1"] = {"keras_float32": acc32, "onnx_int8": acc8,
                           "max_distance_difference": float(np.abs(d32 - d8).max())}
        print(f"Fold 1 (600 pairs, aligned): Keras float32 {100 * acc32:.2f}%, ONNX int8 "
              f"{100 * acc8:.2f}%, max distance difference {np.abs(d32 - d8).max():.4f}")
    write_result(f"calibrate_int8_{args.backbone}", result)


if __name__ == "__main__":
    main()
