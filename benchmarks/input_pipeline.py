"""Training input: the tf.data triplet pipeline from JPEG files against the original's per-image
PIL loop, and MobileNet training images/s from files against from memory, in the same run.

    python -m benchmarks.input_pipeline --lfw-dir ../shared/data/lfw --people \
        ../shared/data/lfw_meta/people.txt
"""
import argparse
import statistics
import time

import numpy as np

from benchmarks.common import images_per_second, machine, write_result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lfw-dir", default="../shared/data/lfw")
    p.add_argument("--people", default="../shared/data/lfw_meta/people.txt")
    p.add_argument("--size", type=int, default=160)
    p.add_argument("--batch-size", type=int, default=96)
    p.add_argument("--batches", type=int, default=20, help="batches per pipeline timing")
    p.add_argument("--train-steps", type=int, default=12, help="training steps per timing")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)

    import keras
    import tensorflow as tf

    from nets.facenet import facenet
    from nets.losses import triplet_loss
    from facenet.training.data import TripletSampler, triplet_dataset
    from utils.image import letterbox, load_image
    from utils.lfw_people import fold_entries, read_people_folds

    people = [x for fold in read_people_folds(args.people)[1:] for x in fold]
    entries = fold_entries(people, args.lfw_dir, min_images=2)
    paths = [p for _, p in entries]
    labels = [c for c, _ in entries]
    classes = max(labels) + 1
    bs, size = args.batch_size, args.size
    n_batches = args.batches
    ds = triplet_dataset(paths, labels, classes, (size, size, 3), bs, n_batches,
                         args.repeats + 1, 0, 0, True, "scale01")
    it = iter(ds)
    next(it)  # start-up

    def pipeline():
        for _ in range(n_batches):
            next(it)

    sampler = TripletSampler(labels, 0)
    order = sampler.epoch(0, n_batches, bs)
    rng = np.random.default_rng(0)

    def original_loop():  # the original's generator: one image at a time with PIL, main thread
        for b in range(n_batches):
            batch = []
            for i in order[b * bs:(b + 1) * bs]:
                image = letterbox(load_image(paths[i]), (size, size))
                if rng.random() < 0.5:
                    image = image.transpose(0)  # FLIP_LEFT_RIGHT
                batch.append(np.asarray(image, np.float32) / 255.0)
            np.stack(batch)

    images = n_batches * bs
    rows = {"tf.data pipeline": images_per_second(pipeline, images, args.repeats, warmup=False),
            "original per-image PIL loop": images_per_second(original_loop, images, args.repeats,
                                                             warmup=False)}
    for k, v in rows.items():
        print(f"{k:32s} {v['median']:8.1f} img/s", flush=True)

    model = facenet((size, size, 3), num_classes=classes, backbone="mobilenet", mode="train")
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss={"Softmax": "categorical_crossentropy", "Embedding": triplet_loss()})
    steps = args.train_steps
    files = triplet_dataset(paths, labels, classes, (size, size, 3), bs, steps,
                            args.repeats + 1, 0, 1, True, "scale01")
    x, y = next(iter(files))
    memory = tf.data.Dataset.from_tensors((x, y)).repeat()  # one batch held in memory

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.rates.append(round(steps * bs / (time.perf_counter() - self.start), 1))

    def train(data):
        timer = EpochTimer()
        timer.rates = []
        model.fit(data, steps_per_epoch=steps, epochs=args.repeats + 1, verbose=0,
                  callbacks=[timer])
        return timer.rates[1:]  # the first epoch compiles the step and fills the pipeline

    for name, data in (("MobileNet training from files", files),
                       ("MobileNet training from memory", memory)):
        runs = train(data)
        rows[name] = {"median": statistics.median(runs), "runs": runs}
    ratio = rows["MobileNet training from files"]["median"] / \
        rows["MobileNet training from memory"]["median"]
    speedup = rows["tf.data pipeline"]["median"] / rows["original per-image PIL loop"]["median"]
    for k in ("MobileNet training from files", "MobileNet training from memory"):
        print(f"{k:32s} {rows[k]['median']:8.1f} img/s  {rows[k]['runs']}", flush=True)
    print(f"pipeline / original loop: {speedup:.2f}x; training from files / from memory: "
          f"{100 * ratio:.1f}%")
    write_result("input_pipeline", {"machine": machine(), "settings": vars(args),
                                    "images": len(paths), "rows": rows,
                                    "pipeline_vs_original": round(speedup, 2),
                                    "files_vs_memory": round(ratio, 4)})


if __name__ == "__main__":
    main()
