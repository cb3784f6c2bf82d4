"""Where one training image's time goes on one core: reading and decoding a JPEG, then
letterboxing it, as TensorFlow ops (the training loader's way) and with PIL (prediction's way
and the old loader's), on LFW's photos (read once first, so they come from the page cache).

    python -m benchmarks.resize_cost --lfw-dir ../shared/data/lfw

TensorFlow runs the ops in a tf.data map confined to one thread (and its op pool to one), as
the loader runs them, PIL in a plain loop, so each figure is milliseconds of one core per
image.
"""
import argparse
import os
import sys
import time

from benchmarks.common import machine, write_result


def lfw_files(lfw_dir, count):
    files = sorted(os.path.join(root, f) for root, _, names in os.walk(lfw_dir)
                   for f in names if f.lower().endswith(".jpg"))[:count]
    if not files:
        sys.exit(f"no .jpg files under --lfw-dir {lfw_dir}; point it at LFW's image folder")
    for path in files:
        with open(path, "rb") as f:
            f.read()
    return files


def per_image_ms(fn, items, repeats):
    """Best of `repeats` passes of `fn` over `items`, in milliseconds per item."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - start)
    return 1000 * best / len(items)


def tf_per_image_ms(fn, data, repeats):
    """`per_image_ms` of `fn` as a one-thread tf.data map over the encoded photos."""
    import tensorflow as tf

    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    ds = tf.data.Dataset.from_tensor_slices(data).map(fn).with_options(options)
    return per_image_ms(lambda _: [None for _ in ds], [None], repeats) / len(data)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lfw-dir", default="../shared/data/lfw")
    p.add_argument("--images", type=int, default=300)
    p.add_argument("--sizes", default="64,160", help="letterbox sides, comma-separated")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)

    import numpy as np
    import tensorflow as tf
    from PIL import Image

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from utils.image import letterbox, load_image
    from utils.tf_preprocessing import letterbox_tf

    data = lfw_files(args.lfw_dir, args.images)

    def decode(path):
        return tf.io.decode_jpeg(tf.io.read_file(path), channels=3, dct_method="INTEGER_ACCURATE")

    rows = [{"step": "read + decode", "size": None,
             "tensorflow_ms": tf_per_image_ms(lambda d: decode(d)[0, 0], data, args.repeats),
             "pil_ms": per_image_ms(lambda d: np.asarray(load_image(d)), data,
                                    args.repeats)}]
    for size in (int(s) for s in args.sizes.split(",")):
        def graph(d, size=size):
            return letterbox_tf(decode(d), (size, size))

        def pil(d, size=size):
            return np.asarray(letterbox(load_image(d), (size, size)))

        rows.append({"step": "read + decode + letterbox", "size": size,
                     "tensorflow_ms": tf_per_image_ms(graph, data, args.repeats),
                     "pil_ms": per_image_ms(pil, data, args.repeats)})
    rows = [{k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}
            for row in rows]
    sample = Image.open(data[0]).size
    print(f"{len(data)} LFW photos ({sample[0]}x{sample[1]}), one core, ms per image:")
    for row in rows:
        where = f" to {row['size']} px" if row["size"] else ""
        print(f"  {row['step'] + where:<38} TensorFlow {row['tensorflow_ms']:.3f}   "
              f"PIL {row['pil_ms']:.3f}")
    write_result("resize_cost", {"machine": machine(), "images": len(data), "rows": rows})


if __name__ == "__main__":
    main()
