"""Exported models against the Keras model: embedding parity on 200 LFW images, LFW fold-1
accuracy, file size and single-image latency (median of 50 runs), for each format.

    python -m benchmarks.export_parity --lfw-dir ../shared/data/lfw \
        --pairs ../shared/data/lfw_meta/pairs.txt
ONNX (the engine's own models, float32 and int8: facenet/onnx_build.py) is included when
onnxruntime is importable.
"""
import argparse
import os
import statistics
import tempfile
import time

import numpy as np

from benchmarks.common import machine, write_result


def size_of(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)
    return os.path.getsize(path)


def runners(predictor, tmp):
    """{name: (path, function uint8 batch -> embeddings)} for every format that exports here."""
    import tensorflow as tf

    from facenet.export import export

    out = {"keras": (None, predictor.embed_arrays)}
    sm = export(predictor, "savedmodel", os.path.join(tmp, "savedmodel"))
    serve = tf.saved_model.load(sm).signatures["serving_default"]
    out["savedmodel"] = (sm, lambda x: serve(images=tf.constant(x))["embeddings"].numpy())
    for q in ("float32", "float16", "int8"):
        path = export(predictor, "tflite", os.path.join(tmp, f"model_{q}.tflite"), q)
        interpreter = tf.lite.Interpreter(path, num_threads=os.cpu_count())
        run = interpreter.get_signature_runner("serving_default")
        out[f"tflite {q}"] = (path, lambda x, run=run: np.concatenate(
            [run(images=x[i:i + 1])["embeddings"] for i in range(len(x))]))
    try:
        import onnxruntime as ort
        path = export(predictor, "onnx", os.path.join(tmp, "model.onnx"))
        onnx_model = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        out["onnx"] = (path, lambda x: onnx_model.run(None, {"images": x})[0])
        from facenet import Facenet

        on_int8 = Facenet(model_path=predictor.model_path, backbone=predictor.backbone,
                          crop=predictor.crop, align="off", engine="onnx", precision="int8")
        path = export(on_int8, "onnx", os.path.join(tmp, "model_onnx_int8.onnx"), "int8")
        int8_model = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        out["onnx int8"] = (path, lambda x: int8_model.run(None, {"images": x})[0])
    except Exception as e:  # not installed here: say so in the result
        print(f"ONNX skipped: {type(e).__name__}: {e}")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lfw-dir", default="../shared/data/lfw")
    p.add_argument("--pairs", default="../shared/data/lfw_meta/pairs.txt")
    p.add_argument("--parity-images", type=int, default=200)
    p.add_argument("--latency-runs", type=int, default=50)
    args = p.parse_args(argv)

    from facenet import Facenet
    from facenet.evaluation import load_lfw_pairs

    predictor = Facenet(crop="lfw", align="off", precision="float32")  # what exports hold
    pairs, _ = load_lfw_pairs(args.pairs, args.lfw_dir)
    fold1 = [x for x in pairs if x.fold == 0]
    paths = list(dict.fromkeys(q for x in fold1 for q in (x.path_1, x.path_2)))
    images = np.stack([predictor.prepare(q) for q in paths])
    index = {q: i for i, q in enumerate(paths)}
    same = np.array([x.same for x in fold1])
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        fns = runners(predictor, tmp)
        ref = predictor.embed_arrays(images[:args.parity_images])
        for name, (path, fn) in fns.items():
            emb = np.concatenate([fn(images[i:i + 32]) for i in range(0, len(images), 32)])
            cos = (emb[:args.parity_images] * ref).sum(1) / np.linalg.norm(
                emb[:args.parity_images], axis=1)
            d = np.linalg.norm(emb[[index[x.path_1] for x in fold1]] -
                               emb[[index[x.path_2] for x in fold1]], axis=1)
            # fold 1 alone: its best threshold over the pairs (no other folds to train it on)
            acc = max(np.mean((d < t) == same) for t in np.arange(0, 4, 0.01))
            one = images[:1]
            fn(one)
            times = []
            for _ in range(args.latency_runs):
                t = time.perf_counter()
                fn(one)
                times.append(1000 * (time.perf_counter() - t))
            rows[name] = {"cosine_min": round(float(cos.min()), 6),
                          "cosine_mean": round(float(cos.mean()), 6),
                          "fold1_accuracy": round(float(acc), 4),
                          "size_mb": round(size_of(path) / 1e6, 1) if path else None,
                          "latency_ms_median": round(statistics.median(times), 1)}
            r = rows[name]
            print(f"{name:16s} cos min {r['cosine_min']:.6f} mean {r['cosine_mean']:.6f}  "
                  f"fold-1 {100 * r['fold1_accuracy']:.2f}%  size {r['size_mb']} MB  "
                  f"latency {r['latency_ms_median']} ms", flush=True)
    write_result("export_parity", {"machine": machine(), "settings": vars(args),
                                   "images_fold1": len(paths), "rows": rows})


if __name__ == "__main__":
    main()
