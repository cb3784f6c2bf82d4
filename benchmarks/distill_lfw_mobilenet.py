"""Distil the pretrained Inception-ResNet-V1 into MobileNet on the LFW images of folds 2-10
(every image, people with one image included: no labels are used) and score fold 1's 600 pairs
(people never seen) after every epoch.

    python -m benchmarks.distill_lfw_mobilenet --epochs 30 --input-size 112

The images are MTCNN-aligned once, with room around the face for the augmented views (a
200-pixel crop whose central 80% is the aligned face the predictor sees). Fold 1 is scored on
that central face, at the best threshold of its 600 pairs, as the training benchmark does;
the teacher is scored the same way for reference. Resumable with --resume RUN_DIR.
Writes benchmarks/results/<name>.json and a plot of accuracy per epoch.
"""
import argparse
import dataclasses
import os
import time

from benchmarks.common import RESULTS, machine, plot_accuracy, write_result
from facenet.cli import add_logging_options, configure_logging
from utils.choices import TEACHER_PRECISIONS

SHARED = os.path.join("..", "shared", "data")
ALIGN_SIZE, ALIGN_MARGIN = 200, 0.1  # the margin-0 face is the central 160/200 of the crop
FACE_BOX = (ALIGN_MARGIN, ALIGN_MARGIN, 1 - ALIGN_MARGIN, 1 - ALIGN_MARGIN)


def training_set(lfw_dir, meta_dir, aligned_dir, work, limit=0):
    """The recipe's data: LFW aligned once (with room around the face), the images of the
    people of folds 2-10 as an annotation file, fold 1's pairs; fold-1 people never train."""
    from benchmarks.train_lfw_mobilenet import aligned_lfw, fold1_pairs_file
    from utils.annotation import write_annotation
    from utils.lfw_people import fold_entries, read_people_folds

    os.makedirs(work, exist_ok=True)
    image_dir = aligned_dir or os.path.join(os.path.expanduser("~"), ".cache", "facenet",
                                            f"lfw_aligned{ALIGN_SIZE}_m{ALIGN_MARGIN}")
    t = time.perf_counter()
    fallbacks = aligned_lfw(lfw_dir, image_dir, ALIGN_SIZE, ALIGN_MARGIN)
    print(f"Aligned crops in {image_dir} ({time.perf_counter() - t:.0f} s); {fallbacks} "
          f"image(s) without a face use the fixed face box")
    folds = read_people_folds(os.path.join(meta_dir, "people.txt"))
    entries = fold_entries([person for fold in folds[1:] for person in fold], image_dir)
    if limit:
        entries = entries[:limit]
    fold1_people = {n for n, _ in folds[0]}
    assert not fold1_people & {os.path.basename(os.path.dirname(p)) for _, p in entries}, \
        "fold-1 people leaked into training"
    images = os.path.join(work, "images.txt")
    write_annotation(entries, images, absolute=True)
    pairs_file = fold1_pairs_file(os.path.join(meta_dir, "pairs.txt"),
                                  os.path.join(work, "fold1_pairs.txt"))
    return {"entries": entries, "images": images, "image_dir": image_dir,
            "pairs_file": pairs_file, "fallbacks": fallbacks,
            "crop": ",".join(f"{v:g}" for v in FACE_BOX)}


def main(argv=None):
    from facenet.training.augment import NO_AUGMENTATION, Augmentation
    from facenet.training.distillation import LOSSES

    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lfw-dir", default=os.path.join(SHARED, "lfw"))
    p.add_argument("--meta-dir", default=os.path.join(SHARED, "lfw_meta"))
    p.add_argument("--aligned-dir", default=None,
                   help="where the aligned crops go (default: ~/.cache/facenet/"
                        "lfw_aligned200_m0.1)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--input-size", type=int, default=112)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--init-lr", type=float, default=1e-3)
    p.add_argument("--min-lr", type=float, default=1e-5)
    p.add_argument("--loss", default="cosine", choices=LOSSES)
    p.add_argument("--views", type=int, default=8)
    p.add_argument("--precision", default="auto", choices=["auto", "float32", "bfloat16"])
    p.add_argument("--teacher-precision", default="auto", choices=TEACHER_PRECISIONS,
                   help="int8: the teacher's targets on int8 ONNX Runtime (train.py "
                        "--teacher-precision)")
    p.add_argument("--init-weights", nargs="?", const="shipped", default="",
                   help="start the student from these weights with a fresh schedule; no "
                        "value: the shipped MobileNet (to continue its training)")
    p.add_argument("--cache-views-gb", type=float, default=2.0,
                   help="render each view once at the student's size (0: every epoch)")
    p.add_argument("--dropout-keep-prob", type=float, default=1.0)
    p.add_argument("--no-augment", action="store_true", help="plain face crops only")
    p.add_argument("--mix", type=float, default=0.0,
                   help="share of views blended with another face (train.py --aug-mix)")
    p.add_argument("--mix-mode", default="mixup", choices=["mixup", "cutmix"])
    p.add_argument("--erase", type=float, default=0.0,
                   help="share of views with an erased rectangle (train.py --aug-erase)")
    p.add_argument("--limit", type=int, default=0, help="train on the first N images only")
    p.add_argument("--resume", default="", help="a stopped run's folder: repeat the run's "
                                                "command with --resume to go on")
    p.add_argument("--name", default=None)
    p.add_argument("--out", default=RESULTS)
    add_logging_options(p)
    args = p.parse_args(argv)
    configure_logging(args)  # the run's lines (epochs, LFW accuracy) on stderr

    from facenet.training.distillation import DistillConfig, distill
    from facenet.evaluation import evaluate_pairs
    from facenet.predictor import Facenet
    from utils.lfw import read_pairs

    name = args.name or f"distill_lfw_mobilenet_{args.input_size}"
    work = os.path.join(args.out, name)
    data = training_set(args.lfw_dir, args.meta_dir, args.aligned_dir, work, args.limit)
    entries, image_dir, pairs_file, crop, fallbacks = (
        data["entries"], data["image_dir"], data["pairs_file"], data["crop"], data["fallbacks"])
    images = data["images"]
    pairs = read_pairs(pairs_file, image_dir)

    result = {"machine": machine(), "train_images": len(entries), "fold1_pairs": len(pairs),
              "align_fallbacks": fallbacks}
    teacher = Facenet(crop=crop, align="off", precision="auto")
    result["teacher_fold1"] = evaluate_pairs(teacher, pairs,
                                             progress=False)["best_threshold_accuracy"]
    print(f"Teacher on fold 1 (same crops): {100 * result['teacher_fold1']:.2f}%")
    del teacher

    init_weights = args.init_weights
    if init_weights == "shipped":
        from facenet import weights as registry

        init_weights = registry.fetch(registry.default_model("mobilenet"))
    augmentation = (dataclasses.replace(NO_AUGMENTATION, flip=0.5) if args.no_augment
                    else Augmentation(mix=args.mix, mix_mode=args.mix_mode, erase=args.erase))
    cfg = DistillConfig(images=images, input_shape=(args.input_size, args.input_size, 3),
                        epochs=args.epochs, batch_size=args.batch_size, init_lr=args.init_lr,
                        min_lr=args.min_lr, loss=args.loss, views=args.views, crop=crop,
                        augmentation=augmentation, precision=args.precision,
                        dropout_keep_prob=args.dropout_keep_prob, save_dir=work,
                        lfw_dir=image_dir, lfw_pairs=pairs_file, lfw_crop=crop,
                        targets_dir=os.path.join(work, "teacher_targets"),  # shared by runs
                        resume=args.resume, verbose=2, init_weights=init_weights,
                        cache_views_gb=args.cache_views_gb,
                        teacher_precision=args.teacher_precision)
    t = time.perf_counter()
    run_dir, history, _ = distill(cfg)
    result.update(settings={k: (v if k != "augmentation" else vars(v))
                            for k, v in vars(cfg).items()},
                  run_dir=run_dir, seconds=round(time.perf_counter() - t, 1),
                  resumed=bool(args.resume), history=history,
                  fold1_per_epoch=history["lfw"], fold1_final=history["lfw"][-1],
                  fold1_best=max(history["lfw"]))
    plot_accuracy(history["lfw"], result["teacher_fold1"], os.path.join(args.out, f"{name}.png"),
                  f"MobileNet {args.input_size}px distilled from Inception-ResNet-V1",
                  "MobileNet student, LFW fold 1", "Inception-ResNet-V1 teacher")
    print(f"Final {100 * history['lfw'][-1]:.2f}%, best {100 * result['fold1_best']:.2f}%, "
          f"teacher {100 * result['teacher_fold1']:.2f}%")
    write_result(name, result, args.out)


if __name__ == "__main__":
    main()
