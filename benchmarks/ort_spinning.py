"""ONNX Runtime's idle threads spinning or sleeping, on the default int8 model, in one run:
images/s at batch 1 and 32, the two sessions alternating. Run it on a quiet CPU and again
beside other work (e.g. a training run) to see what facenet/engine.py's rule weighs.

    python -m benchmarks.ort_spinning [--backbone inception_resnetv1] [--repeats 5]

The faces are LFW fold 1's aligned crops where LFW is present (--lfw-dir), else random pixels
(an int8 convolution's speed does not depend on them).
Writes benchmarks/results/ort_spinning.json.
"""
import argparse
import os
import tempfile
import time

import numpy as np

from benchmarks.common import machine, write_result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="inception_resnetv1")
    p.add_argument("--lfw-dir", default="../shared/data/lfw")
    p.add_argument("--pairs", default="../shared/data/lfw_meta/pairs.txt")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    from facenet import Facenet
    from facenet.engine import make_session, threads_running_elsewhere

    f = Facenet(backbone=args.backbone, engine="onnx", precision="int8", align="off")
    if os.path.isdir(args.lfw_dir):
        from benchmarks.engine_speed import fold1_crops

        with tempfile.TemporaryDirectory() as tmp:
            crops = np.load(fold1_crops(args.backbone, args.lfw_dir, args.pairs, tmp)[0])[:32]
    else:
        crops = np.random.default_rng(0).integers(0, 256, (32, *f.input_shape), np.uint8)
    busy = threads_running_elsewhere()
    sessions = {"spinning": make_session(f.onnx_path, spin=True),
                "sleeping": make_session(f.onnx_path, spin=False)}
    rates = {name: {"batch1": [], "batch32": []} for name in sessions}
    for s in sessions.values():
        s.run(None, {"images": crops})
    for _ in range(args.repeats):
        for name, s in sessions.items():
            t = time.perf_counter()
            for _ in range(3):
                s.run(None, {"images": crops})
            rates[name]["batch32"].append(3 * len(crops) / (time.perf_counter() - t))
            t = time.perf_counter()
            for i in range(len(crops)):
                s.run(None, {"images": crops[i:i + 1]})
            rates[name]["batch1"].append(len(crops) / (time.perf_counter() - t))
    medians = {name: {k: round(float(np.median(v)), 1) for k, v in r.items()}
               for name, r in rates.items()}
    for name, m in medians.items():
        print(f"{name:>9}: batch 1 {m['batch1']:7.1f} img/s, batch 32 {m['batch32']:7.1f} img/s")
    print(f"other threads running at the start: {busy}")
    write_result("ort_spinning", {"machine": machine(), "backbone": args.backbone,
                                  "other_threads_running_at_start": busy,
                                  "command": "python -m benchmarks.ort_spinning " +
                                             " ".join(argv or []),
                                  "medians_img_s": medians, "runs": rates})


if __name__ == "__main__":
    main()
