"""Training and embedding throughput of both backbones, by precision, from in-memory batches,
and how fast the input side (JPEG decode + letterbox, the training loader's per-image work)
runs on this machine's cores. Backend-agnostic Keras: runs on TensorFlow or, for a GPU machine
without TensorFlow, on JAX (KERAS_BACKEND=jax).

    python -m benchmarks.train_speed --steps 12
"""
import argparse
import os
import statistics
import tempfile
import time

import numpy as np

from benchmarks.common import RESULTS, machine, write_result

POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}


class BatchTimer:
    """Wall time of each training batch (a Keras callback, built lazily to import Keras late)."""

    def __new__(cls):
        import keras

        class _Timer(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                self.start = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                self.times.append(time.perf_counter() - self.start)

        timer = _Timer()
        timer.times = []
        return timer


def train_rate(backbone, precision, batch, steps, side, classes=1000):
    import keras

    from nets.facenet import facenet
    from nets.losses import triplet_loss

    keras.mixed_precision.set_dtype_policy(POLICIES[precision])
    try:
        model = facenet((side, side, 3), num_classes=classes, backbone=backbone)
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss={"Softmax": "categorical_crossentropy", "Embedding": triplet_loss()})
        rng = np.random.default_rng(0)
        x = rng.uniform(-1, 1, (batch, side, side, 3)).astype("float32")
        y = np.eye(classes, dtype="float32")[rng.integers(0, classes, batch)]
        xs, ys = np.concatenate([x] * steps), np.concatenate([y] * steps)
        timer = BatchTimer()
        model.fit(xs, (ys, ys), batch_size=batch, epochs=1, verbose=0, shuffle=False,
                  callbacks=[timer])
        warm = timer.times[3:] or timer.times[-1:]  # the first steps compile
        t = statistics.median(warm)
        embed = keras.Model(model.input, model.get_layer("Embedding").output)
        for _ in range(2):
            embed.predict_on_batch(x)
        inf = []
        for _ in range(5):
            start = time.perf_counter()
            embed.predict_on_batch(x)
            inf.append(time.perf_counter() - start)
        single = []
        for _ in range(2):
            embed.predict_on_batch(x[:1])
        for _ in range(10):
            start = time.perf_counter()
            embed.predict_on_batch(x[:1])
            single.append(time.perf_counter() - start)
        return {"backbone": backbone, "precision": precision, "batch": batch, "input": side,
                "train_images_per_s": batch / t, "train_step_s_median": t,
                "train_step_s_spread": [min(warm), max(warm)],
                "embed_images_per_s": batch / statistics.median(inf),
                "embed_single_image_ms": 1000 * statistics.median(single)}
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def decode_rate(workers, count=600, side=160):
    """Images/s of the loader's per-image work on synthetic 250x250 JPEGs, threads vs processes."""
    import concurrent.futures

    from PIL import Image

    from utils.image import LFW_CROP, prepare_image

    folder = tempfile.mkdtemp()
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (25, 25, 3), dtype=np.uint8)
    paths = []
    for i in range(count):
        img = Image.fromarray(np.roll(base, i, axis=0)).resize((250, 250), Image.BICUBIC)
        path = os.path.join(folder, f"{i}.jpg")
        img.save(path, quality=90)
        paths.append(path)

    def work(path):
        return prepare_image(path, (side, side, 3), True, LFW_CROP).shape

    out = {}
    for kind, pool_cls in (("threads", concurrent.futures.ThreadPoolExecutor),
                           ("processes", concurrent.futures.ProcessPoolExecutor)):
        with pool_cls(workers) as pool:
            list(pool.map(work if kind == "threads" else _work, paths[:50]))
            start = time.perf_counter()
            list(pool.map(work if kind == "threads" else _work, paths, chunksize=16)
                 if kind == "processes" else pool.map(work, paths))
            out[kind] = count / (time.perf_counter() - start)
    return out


def _work(path):
    from utils.image import LFW_CROP, prepare_image

    return prepare_image(path, (160, 160, 3), True, LFW_CROP).shape


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbones", nargs="+", default=["mobilenet", "inception_resnetv1"])
    p.add_argument("--precisions", nargs="+", default=["float32", "bfloat16"],
                   choices=sorted(POLICIES))
    p.add_argument("--batch-size", type=int, default=96)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--input-size", type=int, default=160)
    p.add_argument("--workers", type=int, default=os.cpu_count())
    p.add_argument("--name", default="train_speed")
    p.add_argument("--out", default=RESULTS)
    args = p.parse_args(argv)

    rows = []
    for backbone in args.backbones:
        for precision in args.precisions:
            r = train_rate(backbone, precision, args.batch_size, args.steps, args.input_size)
            rows.append(r)
            print(f"{backbone:20s} {precision:9s} train {r['train_images_per_s']:8.1f} img/s   "
                  f"embed {r['embed_images_per_s']:8.1f} img/s   one image "
                  f"{r['embed_single_image_ms']:6.1f} ms", flush=True)
    decode = decode_rate(args.workers)
    print(f"JPEG decode + crop + letterbox on {args.workers} workers: threads "
          f"{decode['threads']:.0f} img/s, processes {decode['processes']:.0f} img/s")
    write_result(args.name, {"machine": machine(), "settings": vars(args), "rows": rows,
                             "decode_images_per_s": decode}, args.out)


if __name__ == "__main__":
    main()
