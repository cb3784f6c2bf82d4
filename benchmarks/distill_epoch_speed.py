"""Where a distillation epoch's time goes: the recipe's epochs against the student's training
step alone, in one run, on the recipe's data (LFW folds 2-10, aligned; fold 1 scored).

    python -m benchmarks.distill_epoch_speed --targets-dir RUN/teacher_targets

- step only: the same student, loss and optimizer fed from one view held in memory as a
  tensor dataset (no rendering, no BatchNorm re-estimation, no scoring);
- recipe: `distill` epochs as a run makes them, views read from the cache beside the targets
  (`--cache-views-gb`, the default) or rendered every epoch (`--cache-views-gb 0`), each epoch
  timed with its BatchNorm re-estimation and its fold-1 score.
The first epoch of each (tracing, first reads) is not counted. Point --targets-dir at a run's
teacher_targets (benchmarks/distill_lfw_mobilenet.py) to skip the teacher's pass.
Writes benchmarks/results/distill_epoch_speed.json.
"""
import argparse
import os
import tempfile
import time

from benchmarks.common import RESULTS, machine, write_result
from benchmarks.distill_lfw_mobilenet import SHARED, training_set
from facenet.cli import add_logging_options, configure_logging


def step_only_rate(cfg, views, targets, epochs):
    """Images/s of the student's step on one view held in memory, after an untimed epoch."""
    import keras
    import tensorflow as tf

    from facenet.training.distillation import build_student, distill_loss
    from utils.tf_preprocessing import preprocess_tf

    model, _ = build_student(cfg)
    model.compile(optimizer=keras.optimizers.Adam(cfg.init_lr), loss=distill_loss(cfg.loss))
    n = views.images
    steps = n // cfg.batch_size
    ds = (tf.data.Dataset.from_tensor_slices((views.load(0)[:], targets.load(0)))
          .shuffle(n, seed=0).batch(cfg.batch_size, drop_remainder=True)
          .map(lambda x, y: (preprocess_tf(x, cfg.preprocessing), y)).repeat().prefetch(2))
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
        seconds.append(time.perf_counter() - start)
    return steps * cfg.batch_size / min(seconds), seconds


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lfw-dir", default=os.path.join(SHARED, "lfw"))
    p.add_argument("--meta-dir", default=os.path.join(SHARED, "lfw_meta"))
    p.add_argument("--aligned-dir", default=None)
    p.add_argument("--targets-dir", default=None,
                   help="teacher targets to reuse (default: made in a temporary folder)")
    p.add_argument("--input-size", type=int, default=112)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=2, help="timed epochs of each (default: 2)")
    p.add_argument("--cache-views-gb", type=float, default=2.0)
    p.add_argument("--precision", default="auto", choices=["auto", "float32", "bfloat16"])
    p.add_argument("--limit", type=int, default=0, help="the first N images only (a quick try)")
    p.add_argument("--out", default=RESULTS)
    add_logging_options(p)
    args = p.parse_args(argv)
    configure_logging(args)

    from facenet.training.distillation import (DistillConfig, StudentViews, TeacherTargets,
                                               ViewRenderer, distill, list_images)
    from utils.image import parse_crop

    work = tempfile.mkdtemp(prefix="distill-epoch-speed-")
    data = training_set(args.lfw_dir, args.meta_dir, args.aligned_dir, work, args.limit)
    targets_dir = args.targets_dir or os.path.join(work, "teacher_targets")
    size = args.input_size
    cfg = DistillConfig(images=data["images"], input_shape=(size, size, 3), views=1,
                        epochs=args.epochs + 1, batch_size=args.batch_size, crop=data["crop"],
                        precision=args.precision, save_dir=work, lfw_dir=data["image_dir"],
                        lfw_pairs=data["pairs_file"], lfw_crop=data["crop"],
                        targets_dir=targets_dir, cache_views_gb=args.cache_views_gb, verbose=0)
    start = time.perf_counter()
    _, history, _ = distill(cfg)
    total = time.perf_counter() - start
    n = len(data["entries"])
    steps = n // args.batch_size
    recipe = [steps * args.batch_size / s for s in history["seconds"][1:]]

    views = StudentViews(os.path.join(targets_dir, f"views_{size}px"), n, size)
    if not views.has(0):  # a run without the cache: the step-only feed needs the pixels
        views.render(0, ViewRenderer(list_images(cfg.images), parse_crop(cfg.crop),
                                     cfg.augmentation, cfg.seed))
    targets = TeacherTargets(targets_dir, {"images": n})
    step_rate, step_seconds = step_only_rate(cfg, views, targets, args.epochs)
    result = {"machine": machine(), "images": n, "batch_size": args.batch_size,
              "input_size": size, "cache_views_gb": args.cache_views_gb,
              "recipe_epoch_seconds": history["seconds"], "recipe_images_per_s": recipe,
              "step_only_epoch_seconds": step_seconds, "step_only_images_per_s": step_rate,
              "recipe_share_of_step_only": max(recipe) / step_rate,
              "run_seconds_with_setup": round(total, 1), "fold1": history["lfw"]}
    print(f"{n} images, {size} px, batch {args.batch_size}: recipe epoch "
          f"{max(recipe):.0f} img/s, step only {step_rate:.0f} img/s "
          f"({100 * result['recipe_share_of_step_only']:.0f}%)")
    name = "distill_epoch_speed" + ("" if args.cache_views_gb else "_rendered")
    write_result(name, result, args.out)


if __name__ == "__main__":
    main()
