"""Every engine x precision x backbone in one run, on LFW fold 1's aligned faces, and the
start-to-verdict time of `predict.py A B`.

    python -m benchmarks.engine_speed [--lfw-dir ../shared/data/lfw] [--backbones ...]
        [--variants keras:float32,keras:bfloat16,onnx:float32,onnx:int8,openvino:float32,...]

Per variant: images/s at batch 1 and 32 (median of --repeats), fold-1 accuracy (600 pairs,
best threshold), the largest pair-distance difference to Keras float32, and the peak memory of
the process that ran it. Each variant runs in a fresh process on crops aligned once (MTCNN,
cached) and saved as .npy, so its peak memory is its own and an ONNX Runtime or OpenVINO
process imports no TensorFlow. OpenVINO (package `openvino`) runs the same ONNX models as
ONNX Runtime; it is skipped when not installed.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

DEFAULT_VARIANTS = ("keras:float32", "keras:bfloat16", "onnx:float32", "onnx:int8",
                    "openvino:float32", "openvino:int8")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fold1_crops(backbone, lfw_dir, pairs_path, out_dir):
    """Aligned crops of fold 1's distinct images (the predictor's own alignment, cached) and
    the pairs as index pairs: (crops .npy path, pairs .npy path)."""
    from facenet import Facenet
    from utils.lfw import read_pairs

    pairs = read_pairs(pairs_path, lfw_dir)[:600]
    paths = list(dict.fromkeys(p for pair in pairs for p in (pair.path_1, pair.path_2)))
    index = {p: i for i, p in enumerate(paths)}
    f = Facenet(backbone=backbone, engine="keras", precision="float32", align_cache=True,
                align_choice="central")
    crops, _ = f.prepare_faces(paths)
    table = np.array([(index[p.path_1], index[p.path_2], p.same) for p in pairs], np.int64)
    c, t = os.path.join(out_dir, f"{backbone}_crops.npy"), os.path.join(out_dir,
                                                                           f"{backbone}_pairs.npy")
    np.save(c, crops)
    np.save(t, table)
    return c, t


def embedder(backbone, engine, precision):
    """(function uint8 batch -> embeddings, what ran). Keras and ONNX Runtime through the
    predictor; OpenVINO on the predictor's cached ONNX model."""
    if engine in ("keras", "onnx"):
        from facenet import Facenet

        f = Facenet(backbone=backbone, engine=engine, precision=precision, align="off")
        return f.embed_arrays, f"{f.engine} {f.precision}"
    if engine == "openvino":
        import openvino as ov

        from facenet import Facenet

        # the ONNX Runtime predictor makes (or finds) the cached ONNX model; OpenVINO reads it
        path = Facenet(backbone=backbone, engine="onnx", precision=precision,
                       align="off").onnx_path
        compiled = ov.Core().compile_model(path, "CPU")
        return (lambda x: compiled(x)[0]), f"openvino {ov.__version__} {precision}"
    raise SystemExit(f"unknown engine {engine!r}")


def peak_rss_mb():
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, it does not count the
    parent's memory from before exec)."""
    with open("/proc/self/status", encoding="ascii") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return round(kb / 1024)


def run_variant(backbone, engine, precision, crops_path, pairs_path, repeats):
    """One variant, in this process: the figures as a dict."""
    from benchmarks.common import images_per_second
    from utils.metrics import summarize

    crops, pairs = np.load(crops_path), np.load(pairs_path)
    t = time.perf_counter()
    embed, what = embedder(backbone, engine, precision)
    start_s = time.perf_counter() - t
    embed(crops[:32])  # warm up
    one = crops[:48]
    b1 = images_per_second(lambda: [embed(one[i:i + 1]) for i in range(len(one))], len(one),
                           repeats, warmup=False)
    emb = []

    def all_32():
        emb.clear()
        emb.extend(embed(crops[i:i + 32]) for i in range(0, len(crops), 32))

    b32 = images_per_second(all_32, len(crops), repeats, warmup=False)
    e = np.concatenate(emb)
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    d = np.linalg.norm(e[pairs[:, 0]] - e[pairs[:, 1]], axis=1)
    s = summarize(d, pairs[:, 2].astype(bool), np.zeros(len(pairs), int))
    return {"ran": what, "start_seconds": round(start_s, 2), "batch1_img_s": b1,
            "batch32_img_s": b32, "fold1_accuracy": s["best_threshold_accuracy"],
            "fold1_best_threshold": s.get("best_threshold"),
            "tensorflow_imported": "tensorflow" in sys.modules,
            "peak_rss_mb": peak_rss_mb(),
            "distances": d.tolist()}


def in_child(args_list, timeout):
    """Run `python -m benchmarks.engine_speed ARGS` and return its JSON line (or an error)."""
    r = subprocess.run([sys.executable, "-m", "benchmarks.engine_speed"] + args_list,
                       capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode or not lines:
        return {"error": (r.stderr or r.stdout).strip().splitlines()[-1:]}
    return json.loads(lines[-1])


def predict_timing(images, engine, timeout=300):
    """Seconds from process start to the verdict of `predict.py A B`, and its peak memory."""
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "predict.py", *images, "--engine", engine, "--out", ""],
                       capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    verdict = [ln for ln in r.stdout.splitlines() if ln.strip()][-1:] if r.stdout else []
    return {"engine": engine, "seconds": round(seconds, 2), "returncode": r.returncode,
            "verdict": verdict, "peak_rss_mb_of_children_so_far": round(peak)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lfw-dir", default="../shared/data/lfw")
    p.add_argument("--pairs", default="../shared/data/lfw_meta/pairs.txt")
    p.add_argument("--backbones", default="inception_resnetv1,mobilenet")
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--one", nargs=4, metavar=("BACKBONE", "ENGINE:PRECISION", "CROPS", "PAIRS"),
                   help=argparse.SUPPRESS)  # a child's single variant
    args = p.parse_args(argv)
    if args.one:
        backbone, variant, crops, pairs = args.one
        engine, precision = variant.split(":")
        print(json.dumps(run_variant(backbone, engine, precision, crops, pairs, args.repeats)))
        return
    if not os.path.isdir(args.lfw_dir):
        raise SystemExit(f"no LFW at --lfw-dir {args.lfw_dir}")
    import importlib.util

    from benchmarks.common import machine, write_result
    from utils.precision import cpu_flags

    result = {"machine": machine(), "cpu_flags": sorted(
        f for f in cpu_flags() if "vnni" in f or "amx" in f or f.startswith("avx512")),
        "command": "python -m benchmarks.engine_speed " + " ".join(argv or sys.argv[1:]),
        "rows": {}, "skipped": {}}
    with tempfile.TemporaryDirectory(prefix="engine-speed-") as tmp:
        for backbone in args.backbones.split(","):
            crops, pairs = fold1_crops(backbone, args.lfw_dir, args.pairs, tmp)
            reference = None
            for variant in args.variants.split(","):
                engine = variant.split(":")[0]
                if engine == "openvino" and importlib.util.find_spec("openvino") is None:
                    result["skipped"][f"{backbone} {variant}"] = "openvino not installed"
                    continue
                row = in_child(["--one", backbone, variant, crops, pairs,
                                "--repeats", str(args.repeats)], timeout=600)
                d = np.array(row.pop("distances", []))
                if variant == "keras:float32" and len(d):
                    reference = d
                if reference is not None and len(d):
                    row["max_distance_difference_vs_keras_float32"] = round(
                        float(np.abs(d - reference).max()), 4)
                result["rows"][f"{backbone} {variant}"] = row
                print(f"{backbone:>18} {variant:<17} " + (
                    f"b1 {row['batch1_img_s']['median']:7.1f} img/s, b32 "
                    f"{row['batch32_img_s']['median']:7.1f} img/s, fold 1 "
                    f"{100 * row['fold1_accuracy']:.2f}%, peak {row['peak_rss_mb']} MB, "
                    f"max |d - keras f32| {row.get('max_distance_difference_vs_keras_float32')}"
                    if "error" not in row else f"error: {row['error']}"), flush=True)
    example = os.path.join(ROOT, "model_data", "examples")
    images = [os.path.join(example, n) for n in ("jerry_seinfeld_1.jpg", "jerry_seinfeld_2.jpg")]
    if all(os.path.exists(i) for i in images):
        result["predict_start_to_verdict"] = [predict_timing(images, e)
                                              for e in ("auto", "keras")]
        for r in result["predict_start_to_verdict"]:
            print(f"predict.py A B --engine {r['engine']}: {r['seconds']} s to the verdict")
    write_result("engine_speed", result)


if __name__ == "__main__":
    main()
