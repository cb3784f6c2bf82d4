"""Embedding speed: images/s by backbone, batch size, precision and BatchNorm handling (kept
as separate layers, as the original ran it, or folded into the convolutions, as the predictor
runs it), against the original's way (one `model.predict` call per image), in the same run.

    python -m benchmarks.inference                       # both backbones, float32 and bfloat16
    python -m benchmarks.inference --backbones mobilenet --batch-sizes 32 --precisions float32
"""
import argparse

import numpy as np

from benchmarks.common import images_per_second, machine, write_result


def build(backbone, precision, size):
    from nets.facenet import facenet
    from utils.precision import dtype_policy

    with dtype_policy(precision):
        model = facenet((size, size, 3), backbone=backbone, mode="predict")
    return model  # random weights: the speed does not depend on their values


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbones", default="mobilenet,inception_resnetv1")
    p.add_argument("--batch-sizes", default="1,8,32,64")
    p.add_argument("--precisions", default="float32,bfloat16")
    p.add_argument("--batchnorm", default="separate,folded",
                   help="separate (the network as built), folded (nets/batchnorm_folding)")
    p.add_argument("--size", type=int, default=160)
    p.add_argument("--images", type=int, default=128, help="images per timed run")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--per-image", type=int, default=32,
                   help="images for the one-predict-call-per-image baseline")
    args = p.parse_args(argv)

    import tensorflow as tf

    from nets.batchnorm_folding import fold_batchnorm

    rng = np.random.default_rng(1)
    data = rng.uniform(0, 1, (args.images, args.size, args.size, 3)).astype(np.float32)
    rows = []
    for backbone in args.backbones.split(","):
        for precision in args.precisions.split(","):
            model = build(backbone, precision, args.size)

            def per_image():  # the original: model.predict on one image at a time
                for i in range(args.per_image):
                    model.predict(data[i:i + 1], verbose=0)

            base = images_per_second(per_image, args.per_image, max(2, args.repeats // 2))
            print(f"{backbone:20s} {precision:9s} one predict() per image: "
                  f"{base['median']:8.1f} img/s", flush=True)
            for batchnorm in args.batchnorm.split(","):
                net = fold_batchnorm(model) if batchnorm == "folded" else model
                forward = tf.function(lambda x, net=net: net(x, training=False), input_signature=[
                    tf.TensorSpec([None, args.size, args.size, 3], tf.float32)])
                for bs in (int(b) for b in args.batch_sizes.split(",")):
                    def batched(bs=bs):
                        for i in range(0, args.images, bs):
                            forward(data[i:i + bs]).numpy()

                    r = images_per_second(batched, args.images, args.repeats)
                    rows.append({"backbone": backbone, "precision": precision,
                                 "batchnorm": batchnorm, "batch_size": bs,
                                 "images_per_s": r, "per_image_predict": base,
                                 "ratio_vs_per_image": round(r["median"] / base["median"], 2)})
                    print(f"{backbone:20s} {precision:9s} {batchnorm:8s} batch {bs:3d}: "
                          f"{r['median']:8.1f} img/s ({r['min']:.0f}-{r['max']:.0f}), "
                          f"{rows[-1]['ratio_vs_per_image']:.1f}x one call per image", flush=True)

    def median(backbone, precision, batchnorm, bs):
        for r in rows:
            if (r["backbone"], r["precision"], r["batchnorm"], r["batch_size"]) == (
                    backbone, precision, batchnorm, bs):
                return r["images_per_s"]["median"]
        return None

    for backbone in args.backbones.split(","):
        for bs in (int(b) for b in args.batch_sizes.split(",")):
            for batchnorm in args.batchnorm.split(","):
                f32 = median(backbone, "float32", batchnorm, bs)
                b16 = median(backbone, "bfloat16", batchnorm, bs)
                if f32 and b16:
                    print(f"{backbone:20s} batch {bs:3d} {batchnorm:8s}: bfloat16 / float32 = "
                          f"{b16 / f32:.2f}")
            for precision in args.precisions.split(","):
                sep = median(backbone, precision, "separate", bs)
                fold = median(backbone, precision, "folded", bs)
                if sep and fold:
                    print(f"{backbone:20s} batch {bs:3d} {precision:9s}: folded / separate = "
                          f"{fold / sep:.2f}")
    write_result("inference", {"machine": machine(), "settings": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
