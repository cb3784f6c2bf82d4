"""Embedding speed of the registered pretrained models as shipped (each at its own input size,
BatchNorm folded, the predictor's forward pass), in the same run.

    python -m benchmarks.model_speed --batch-size 32 --precisions float32,auto

Random uint8 crops, so decoding and alignment are left out: this is the network's cost.
"""
import argparse
import os

import numpy as np

from benchmarks.common import images_per_second, machine, write_result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="facenet_mobilenet,facenet_inception_resnetv1",
                   help="registered model names or weight files (with their cards), comma-separated")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--batches", type=int, default=8, help="batches per timed call (default: 8)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--precisions", default="float32,auto")
    args = p.parse_args(argv)

    from facenet import weights
    from facenet.predictor import Facenet

    result = {"machine": machine(), "batch_size": args.batch_size, "rows": []}
    rng = np.random.default_rng(0)
    for precision in args.precisions.split(","):
        rates = {}
        for name in args.models.split(","):
            path = name if os.path.exists(name) else weights.fetch(name)
            predictor = Facenet(model_path=path, align="off", precision=precision)
            h, w, _ = predictor.input_shape
            batch = rng.integers(0, 256, (args.batch_size, h, w, 3), dtype=np.uint8)

            def run():
                for _ in range(args.batches):
                    predictor.embed_arrays(batch)

            rate = images_per_second(run, args.batch_size * args.batches, args.repeats)
            rates[name] = rate["median"]
            result["rows"].append({"model": name, "input": [h, w], "precision": precision,
                                   "resolved_precision": predictor.precision,
                                   "images_per_second": rate})
            print(f"{name:>28} {h}x{w} {precision:>8} ({predictor.precision}): "
                  f"{rate['median']:.1f} img/s (min {rate['min']}, max {rate['max']})")
        names = args.models.split(",")
        if len(names) == 2:
            ratio = rates[names[0]] / rates[names[1]]
            result[f"ratio_{precision}"] = round(ratio, 2)
            print(f"{precision}: {names[0]} is {ratio:.2f}x {names[1]}")
    write_result("model_speed", result)


if __name__ == "__main__":
    main()
