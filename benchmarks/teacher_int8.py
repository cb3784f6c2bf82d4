"""How close, and how much faster, the distillation's teacher targets are on int8 ONNX Runtime
(`--teacher-precision int8`) than on the float network: the same augmented views of the
recipe's images embedded both ways, in one run.

    python -m benchmarks.teacher_int8 [--images 1024] [--view 0]

Uses the distillation recipe's images (`python -m benchmarks.distill_lfw_mobilenet` aligns
them; --work is its folder, holding images.txt). Prints and writes the cosine between each
image's two targets (mean, 1st percentile, minimum) and each engine's images/s on these views
(batch 64, after one untimed batch). Writes benchmarks/results/teacher_int8.json.
"""
import argparse
import os
import sys
import time

import numpy as np

from benchmarks.common import RESULTS, machine, write_result
from benchmarks.distill_lfw_mobilenet import FACE_BOX


def embed_timed(model, views, batch=64):
    model.embed_arrays(views[:batch])  # warm-up: graphs, sessions
    start = time.perf_counter()
    out = np.concatenate([model.embed_arrays(views[i:i + batch])
                          for i in range(0, len(views), batch)])
    return out, len(views) / (time.perf_counter() - start)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default=os.path.join(RESULTS, "distill_lfw_mobilenet_112"),
                   help="the distillation recipe's folder (its images.txt)")
    p.add_argument("--images", type=int, default=1024)
    p.add_argument("--view", type=int, default=0)
    args = p.parse_args(argv)

    from facenet.predictor import Facenet
    from facenet.training.augment import Augmentation
    from facenet.training.distillation import ViewRenderer, list_images

    listing = os.path.join(args.work, "images.txt")
    if not os.path.isfile(listing):
        raise SystemExit(f"no {listing}: run python -m benchmarks.distill_lfw_mobilenet first "
                         f"(or give its folder with --work)")
    paths = list_images(listing)[:args.images]
    renderer = ViewRenderer(paths, FACE_BOX, Augmentation(), seed=0)
    views = renderer.batch(np.arange(len(paths)), args.view, 160)
    float_teacher = Facenet(align="off", precision="auto", engine="keras")
    int8_teacher = Facenet(align="off", precision="int8", engine="onnx")
    f, f_rate = embed_timed(float_teacher, views)
    q, q_rate = embed_timed(int8_teacher, views)
    cos = np.sum(f * q, axis=1)
    result = {"machine": machine(), "images": len(paths), "view": args.view,
              "float": {"engine": f"{float_teacher.engine} {float_teacher.precision}",
                        "img_s": round(f_rate, 1)},
              "int8": {"engine": "onnx int8", "img_s": round(q_rate, 1)},
              "cosine": {"mean": round(float(cos.mean()), 5),
                         "p01": round(float(np.percentile(cos, 1)), 5),
                         "min": round(float(cos.min()), 5)},
              "command": "python -m benchmarks.teacher_int8 " + " ".join(
                  sys.argv[1:] if argv is None else argv)}
    print(f"{len(paths)} views: float ({result['float']['engine']}) {f_rate:.1f} img/s, int8 "
          f"{q_rate:.1f} img/s ({q_rate / f_rate:.2f}x); cosine between the targets: mean "
          f"{cos.mean():.5f}, 1st percentile {np.percentile(cos, 1):.5f}, min {cos.min():.5f}")
    write_result("teacher_int8", result)


if __name__ == "__main__":
    main()
