"""Where one training image's time goes on one core: reading and decoding a JPEG, then
letterboxing it, as TensorFlow ops (the training loader's way) and with PIL (prediction's way
and the old loader's), on LFW's photos (after an untimed pass, from the page cache).

    python -m benchmarks.resize_cost --lfw-dir ../shared/data/lfw

TensorFlow runs the ops in a tf.data map confined to one thread (and its op pool to one), as
the loader runs them, PIL in a plain loop, so each figure is milliseconds of one core per
image.
"""
import argparse

from benchmarks.common import images_per_second, lfw_jpegs, machine, write_result


def ms_per_image(fn, items, repeats):
    """Median milliseconds per item of `fn` over `items` (common.images_per_second)."""
    rate = images_per_second(lambda: [fn(item) for item in items], len(items), repeats)
    return 1000 / rate["median"]


def tf_ms_per_image(fn, paths, repeats):
    """`ms_per_image` of `fn` as a one-thread tf.data map over the photos' paths."""
    import tensorflow as tf

    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    ds = tf.data.Dataset.from_tensor_slices(paths).map(fn).with_options(options)
    rate = images_per_second(lambda: [None for _ in ds], len(paths), repeats)
    return 1000 / rate["median"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lfw-dir", default="../shared/data/lfw")
    p.add_argument("--images", type=int, default=300)
    p.add_argument("--sizes", default="64,160", help="letterbox sides, comma-separated")
    p.add_argument("--repeats", type=int, default=3, help="timed passes (median)")
    args = p.parse_args(argv)

    import numpy as np
    import tensorflow as tf
    from PIL import Image

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from utils.image import letterbox, load_image
    from utils.tf_preprocessing import letterbox_tf

    data = lfw_jpegs(args.lfw_dir)[:args.images]

    def decode(path):
        return tf.io.decode_jpeg(tf.io.read_file(path), channels=3, dct_method="INTEGER_ACCURATE")

    rows = [{"step": "read + decode", "size": None,
             "tensorflow_ms": tf_ms_per_image(lambda d: decode(d)[0, 0], data, args.repeats),
             "pil_ms": ms_per_image(lambda d: np.asarray(load_image(d)), data,
                                    args.repeats)}]
    for size in (int(s) for s in args.sizes.split(",")):
        def graph(d, size=size):
            return letterbox_tf(decode(d), (size, size))

        def pil(d, size=size):
            return np.asarray(letterbox(load_image(d), (size, size)))

        rows.append({"step": "read + decode + letterbox", "size": size,
                     "tensorflow_ms": tf_ms_per_image(graph, data, args.repeats),
                     "pil_ms": ms_per_image(pil, data, args.repeats)})
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
