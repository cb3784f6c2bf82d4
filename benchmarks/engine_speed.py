"""Every engine x precision x backbone in one run, on LFW fold 1's aligned faces, and the
start-to-verdict time of `predict.py A B`.

    python -m benchmarks.engine_speed [--lfw-dir ../shared/data/lfw] [--backbones ...]
        [--variants keras:float32,keras:bfloat16,onnx:float32,onnx:int8,openvino:float32,...]
    python -m benchmarks.engine_speed --predict-only [--predict-images A B]

`predict.py A B` runs with `--engine auto` and `--engine keras`, alternating, --repeats times
each (after one untimed run of each, which makes any missing cached model): seconds from
process start to the printed distance and to exit, and the peak resident memory
(/usr/bin/time -v). `--predict-only` times only that.

Per variant: images/s at batch 1 and 32 (median of --repeats), fold-1 accuracy (600 pairs,
best threshold), the largest pair-distance difference to Keras float32, and the peak memory of
the process that ran it. Each variant runs in a fresh process on crops aligned once (MTCNN,
cached) and saved as .npy, so its peak memory is its own and an ONNX Runtime or OpenVINO
process imports no TensorFlow. OpenVINO (package `openvino`) runs the same ONNX models as
ONNX Runtime; it is skipped when not installed. LiteRT (package `ai-edge-litert`) runs this
project's TFLite exports (`python -m facenet.export --format tflite`, made once per run in a
separate process, since converting needs TensorFlow): `litert:float32`, and `litert:int8`, which
is TFLite's dynamic-range int8 (int8 weights, activations quantized on the fly), not the static
int8 of ONNX Runtime; skipped when not installed.
"""
import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

DEFAULT_VARIANTS = ("keras:float32", "keras:bfloat16", "onnx:float32", "onnx:int8",
                    "openvino:float32", "openvino:int8", "litert:float32", "litert:int8")
OPTIONAL = {"openvino": "openvino", "litert": "ai_edge_litert"}  # engine: module it needs
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
    if engine == "litert":
        import ai_edge_litert
        from ai_edge_litert.interpreter import Interpreter

        path = os.environ["ENGINE_SPEED_TFLITE"]
        run = Interpreter(model_path=path, num_threads=os.cpu_count()).get_signature_runner(
            "serving_default")
        version = getattr(ai_edge_litert, "__version__", "")
        return (lambda x: run(images=x)["embeddings"]), f"litert {version} {precision}".strip()
    raise SystemExit(f"unknown engine {engine!r}")


def make_tflite(backbone, precision, out_dir):
    """The TFLite export the litert variant runs, made in a child process (TensorFlow)."""
    out = os.path.join(out_dir, f"{backbone}_{precision}.tflite")
    r = subprocess.run([sys.executable, "-m", "facenet.export", "--backbone", backbone,
                        "--format", "tflite", "--quantize", precision, "--out", out],
                       capture_output=True, text=True, cwd=ROOT, timeout=1200)
    if r.returncode:
        raise RuntimeError((r.stderr or r.stdout).strip().splitlines()[-1:])
    return out


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


def in_child(args_list, timeout, env=None):
    """Run `python -m benchmarks.engine_speed ARGS` and return its JSON line (or an error)."""
    r = subprocess.run([sys.executable, "-m", "benchmarks.engine_speed"] + args_list,
                       capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                       env={**os.environ, **(env or {})})
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode or not lines:
        return {"error": (r.stderr or r.stdout).strip().splitlines()[-1:]}
    return json.loads(lines[-1])


def predict_timing(images, engine, timeout=300):
    """Seconds from process start to the verdict of `predict.py A B` (its distance line) and
    to its exit, and its peak resident memory (/usr/bin/time -v where present)."""
    timer = ["/usr/bin/time", "-v"] if os.path.exists("/usr/bin/time") else []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        proc = subprocess.Popen(timer + [sys.executable, "predict.py", *images, "--engine",
                                         engine, "--out", ""], stdout=subprocess.PIPE,
                                stderr=err, text=True, cwd=ROOT, env=env)
        verdict, to_verdict = [], None
        for line in proc.stdout:
            if to_verdict is None and "distance" in line:
                to_verdict = time.perf_counter() - t
                verdict = [line.strip()]
        returncode = proc.wait(timeout)
        seconds = time.perf_counter() - t
        err.seek(0)
        found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err.read())
    peak = (int(found.group(1)) if found
            else resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    return {"engine": engine, "seconds_to_verdict": to_verdict and round(to_verdict, 2),
            "seconds_to_exit": round(seconds, 2), "returncode": returncode,
            "verdict": verdict, "peak_rss_mb": round(peak),
            "peak_measured_by": "/usr/bin/time -v" if found else "getrusage (children so far)"}


def predict_timings(images, repeats, engines=("auto", "keras")):
    """predict_timing per engine, alternating, after one untimed run of each; the medians."""
    for engine in engines:
        predict_timing(images, engine)  # makes any missing cached model; warms the file cache
    runs = {engine: [] for engine in engines}
    for _ in range(repeats):
        for engine in engines:
            runs[engine].append(predict_timing(images, engine))
    out = []
    for engine, rows in runs.items():
        ok = [r for r in rows if r["returncode"] == 0 and r["seconds_to_verdict"]]
        out.append({"engine": engine, "runs": rows, **({
            "median_seconds_to_verdict": float(np.median([r["seconds_to_verdict"] for r in ok])),
            "median_peak_rss_mb": float(np.median([r["peak_rss_mb"] for r in ok]))} if ok
            else {"error": "no run gave a verdict"})})
    return out


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
    p.add_argument("--predict-only", action="store_true",
                   help="time only predict.py A B (--engine auto against keras)")
    p.add_argument("--predict-images", nargs=2, metavar=("A", "B"),
                   help="the two photos predict.py compares (default: the bundled examples)")
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
        f for f in cpu_flags()
        if "vnni" in f or "amx" in f or f.startswith("avx512") or f in ("avx2", "fma")),
        "command": "python -m benchmarks.engine_speed " + " ".join(argv or sys.argv[1:]),
        "rows": {}, "skipped": {}}
    with tempfile.TemporaryDirectory(prefix="engine-speed-") as tmp:
        for backbone in ([] if args.predict_only else args.backbones.split(",")):
            crops, pairs = fold1_crops(backbone, args.lfw_dir, args.pairs, tmp)
            reference = None
            for variant in args.variants.split(","):
                engine, precision = variant.split(":")
                needs = OPTIONAL.get(engine)
                if needs and importlib.util.find_spec(needs) is None:
                    result["skipped"][f"{backbone} {variant}"] = f"{needs} not installed"
                    continue
                env = {}
                if engine == "litert":
                    try:
                        env["ENGINE_SPEED_TFLITE"] = make_tflite(backbone, precision, tmp)
                    except Exception as e:  # noqa: BLE001 - recorded, the others still run
                        result["skipped"][f"{backbone} {variant}"] = f"export failed: {e}"
                        continue
                row = in_child(["--one", backbone, variant, crops, pairs,
                                "--repeats", str(args.repeats)], timeout=600, env=env)
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
    images = args.predict_images or [os.path.join(example, n) for n in ("jerry_seinfeld_1.jpg",
                                                                        "jerry_seinfeld_2.jpg")]
    if all(os.path.exists(i) for i in images):
        result["predict_images"] = [os.path.relpath(i, ROOT) for i in images]
        result["predict_start_to_verdict"] = predict_timings(images, args.repeats)
        for r in result["predict_start_to_verdict"]:
            print(f"predict.py A B --engine {r['engine']}: "
                  f"{r.get('median_seconds_to_verdict', r.get('error'))} s to the verdict, "
                  f"peak {r.get('median_peak_rss_mb')} MB (medians of {args.repeats})")
    write_result("engine_speed", result)


if __name__ == "__main__":
    main()
