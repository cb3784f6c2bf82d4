"""Train MobileNet FaceNet from scratch on the people of LFW folds 2-10 and score fold 1's 600
pairs (never trained on) after every epoch, against a raw-pixel baseline on the same pairs.

    python -m benchmarks.train_lfw_mobilenet --epochs 25 --input-size 96

With --finetune-pretrained it instead fine-tunes the pretrained default model for one epoch on
the same people and reports fold-1 accuracy before and after.
Writes benchmarks/results/<name>.json and a plot of accuracy per epoch.
"""
import argparse
import os
import time

import numpy as np

from benchmarks.common import RESULTS, machine, plot_accuracy, write_result  # noqa: E402
from facenet.cli import add_logging_options, configure_logging  # noqa: E402
from utils.choices import OPTIMIZERS  # noqa: E402

SHARED = os.path.join("..", "shared", "data")


def raw_pixel_accuracy(pairs, side=32, crop=True):
    """Best-threshold accuracy of the L2 distance between standardised, downscaled grey crops
    (LFW's fixed face box when `crop`, the whole image for aligned crops)."""
    from utils.image import LFW_CROP, crop_fraction, load_image
    from utils.metrics import ACCURACY_THRESHOLDS, rates

    cache = {}

    def vec(path):
        if path not in cache:
            img = load_image(path)
            img = (crop_fraction(img, LFW_CROP) if crop else img).convert("L").resize((side, side))
            v = np.asarray(img, np.float64).ravel()
            v = (v - v.mean()) / max(v.std(), 1e-6)
            cache[path] = v / np.linalg.norm(v)
        return cache[path]

    d = np.array([np.linalg.norm(vec(p.path_1) - vec(p.path_2)) for p in pairs])
    same = np.array([p.same for p in pairs])
    _, _, acc = rates(d, same, ACCURACY_THRESHOLDS / 2)  # distances of unit vectors: 0..2
    return float(acc.max())


def aligned_lfw(lfw_dir, out_dir, size, margin=0.0):
    """MTCNN-aligned crops of every LFW image in `out_dir` (same layout, .jpg), made once.

    Images where no face is found get LFW's fixed face box instead (grown by `margin` as the
    aligned crops are), as eval_lfw.py --align does, so training and the fold-1 pairs keep
    every image. They are listed in `fallback_images.json`; returns their count."""
    import json

    from facenet.align_dataset import align_dataset
    from utils.fileio import write_json_atomic
    from utils.image import LFW_CROP, crop_fraction, load_image

    align_dataset(lfw_dir, out_dir, size=size, margin=margin, choice="central", ext="jpg",
                  progress=False)
    x0, y0, x1, y1 = LFW_CROP
    grow = (x1 - x0) * margin / (1 - 2 * margin)
    box = (max(0, x0 - grow), max(0, y0 - grow), min(1, x1 + grow), min(1, y1 + grow))
    record = os.path.join(out_dir, "fallback_images.json")
    fallbacks = []
    if os.path.exists(record):
        with open(record, encoding="utf-8") as f:
            fallbacks = json.load(f)
    for person in sorted(os.listdir(lfw_dir)):
        if not os.path.isdir(os.path.join(lfw_dir, person)):
            continue
        for name in sorted(os.listdir(os.path.join(lfw_dir, person))):
            target = os.path.join(out_dir, person, os.path.splitext(name)[0] + ".jpg")
            if not os.path.exists(target):
                image = crop_fraction(load_image(os.path.join(lfw_dir, person, name)), box)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                image.resize((size, size)).save(target, quality=95)
                fallbacks.append(f"{person}/{name}")
                write_json_atomic(record, fallbacks)
    return len(fallbacks)


def fold1_pairs_file(pairs_path, out):
    lines = open(pairs_path).read().splitlines()
    with open(out, "w") as f:
        f.write("1 300\n" + "\n".join(lines[1:601]) + "\n")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lfw-dir", default=os.path.join(SHARED, "lfw"))
    p.add_argument("--meta-dir", default=os.path.join(SHARED, "lfw_meta"))
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--input-size", type=int, default=96)
    p.add_argument("--batch-size", type=int, default=96)
    p.add_argument("--min-images", type=int, default=1,
                   help="train on people with at least this many images (default: all)")
    p.add_argument("--finetune-pretrained", action="store_true")
    p.add_argument("--init-lr", type=float, default=1e-3,
                   help="base learning rate before the batch fit (default: 1e-3)")
    p.add_argument("--min-lr", type=float, default=None,
                   help="base rate of the schedule's end and flat tail, fitted like train.py's "
                        "(Adam: at most 1e-5 after the fit; default: init-lr/100)")
    p.add_argument("--optimizer", default="adam", choices=OPTIMIZERS)
    p.add_argument("--weight-decay", type=float, default=0.0,
                   help="L2 on the kernels (train.py --weight-decay; default: 0)")
    p.add_argument("--aligned", action="store_true",
                   help="train and score on MTCNN-aligned crops (made once in --aligned-dir)")
    p.add_argument("--aligned-dir", default=None,
                   help="where the aligned crops go (default: ~/.cache/facenet/lfw_aligned_SIZE)")
    p.add_argument("--crop-jitter", type=float, default=0.0,
                   help="train.py --crop-jitter: random sub-boxes of the face box (default: 0)")
    p.add_argument("--resume", default="",
                   help="a stopped run's folder (benchmarks/results/<name>/loss_...): repeat "
                        "that run's command with --resume to go on at its next epoch")
    p.add_argument("--name", default=None, help="result name (default: from the mode)")
    p.add_argument("--out", default=RESULTS)
    add_logging_options(p)
    args = p.parse_args(argv)
    configure_logging(args)  # the run's lines (epochs, LFW accuracy) on stderr
    if args.resume and args.finetune_pretrained:
        p.error("--resume is for training from scratch; the fine-tuning runs one epoch")
    if args.aligned and args.finetune_pretrained:
        p.error("--aligned is for training from scratch; the pretrained model is fine-tuned on "
                "LFW's fixed face box")

    from facenet.training import TrainConfig, train
    from utils.annotation import write_annotation
    from utils.lfw import read_pairs
    from utils.lfw_people import fold_entries, read_people_folds

    os.makedirs(args.out, exist_ok=True)
    name = args.name or ("finetune_pretrained_lfw" if args.finetune_pretrained
                         else "train_lfw_mobilenet" + ("_aligned" if args.aligned else "")
                         + (f"_jitter{args.crop_jitter:g}" if args.crop_jitter else ""))
    work = os.path.join(args.out, name)
    os.makedirs(work, exist_ok=True)
    folds = read_people_folds(os.path.join(args.meta_dir, "people.txt"))
    people = [person for fold in folds[1:] for person in fold]
    image_dir, crop, fallbacks = args.lfw_dir, "lfw", None
    if args.aligned:
        image_dir = args.aligned_dir or os.path.join(
            os.path.expanduser("~"), ".cache", "facenet", f"lfw_aligned_{args.input_size}")
        fallbacks = aligned_lfw(args.lfw_dir, image_dir, args.input_size)
        crop = "none"
        print(f"Aligned crops in {image_dir}; {fallbacks} image(s) without a face use the "
              f"fixed face box")
    entries = fold_entries(people, image_dir, args.min_images)
    annotation = os.path.join(work, "cls_train.txt")
    write_annotation(entries, annotation, absolute=True)
    pairs_file = fold1_pairs_file(os.path.join(args.meta_dir, "pairs.txt"),
                                  os.path.join(work, "fold1_pairs.txt"))
    pairs = read_pairs(pairs_file, image_dir)
    fold1_people = {n for n, _ in folds[0]}
    train_people = {os.path.basename(os.path.dirname(p)) for _, p in entries}
    assert not fold1_people & train_people, "fold-1 people leaked into training"

    result = {"machine": machine(), "train_images": len(entries),
              "train_classes": len({c for c, _ in entries}), "fold1_pairs": len(pairs),
              "aligned": args.aligned, "align_fallbacks": fallbacks}
    t = time.perf_counter()
    result["raw_pixel_baseline"] = raw_pixel_accuracy(read_pairs(pairs_file, args.lfw_dir))
    print(f"Raw-pixel baseline on fold 1 (fixed face box): "
          f"{100 * result['raw_pixel_baseline']:.2f}% ({time.perf_counter() - t:.0f} s)")
    baseline = result["raw_pixel_baseline"]
    if args.aligned:  # the baseline gains from alignment too: beat the better of the two
        result["raw_pixel_baseline_aligned"] = raw_pixel_accuracy(pairs, crop=False)
        print(f"Raw-pixel baseline on fold 1 (aligned crops): "
              f"{100 * result['raw_pixel_baseline_aligned']:.2f}%")
        baseline = max(baseline, result["raw_pixel_baseline_aligned"])
    result["baseline_used"] = baseline

    if args.finetune_pretrained:
        from facenet import weights
        from facenet.evaluation import evaluate_pairs
        from facenet.predictor import Facenet

        start = weights.fetch()
        # the fixed crop, as the training's own check of each epoch scores it
        before = evaluate_pairs(Facenet(model_path=start, crop="lfw", align="off"), pairs,
                                progress=False)
        result["fold1_before"] = before["best_threshold_accuracy"]
        cfg = TrainConfig(annotation_path=annotation, backbone="inception_resnetv1",
                          model_path=start, input_shape=(160, 160, 3), epochs=1,
                          init_lr=args.init_lr,
                          batch_size=args.batch_size, save_dir=work, lfw_dir=args.lfw_dir,
                          lfw_pairs=pairs_file, lfw_crop="lfw", crop="lfw", verbose=2)
    else:
        cfg = TrainConfig(annotation_path=annotation, backbone="mobilenet",
                          input_shape=(args.input_size, args.input_size, 3), epochs=args.epochs,
                          init_lr=args.init_lr, min_lr=args.min_lr, optimizer=args.optimizer,
                          weight_decay=args.weight_decay, crop_jitter=args.crop_jitter,
                          batch_size=args.batch_size, save_dir=work, lfw_dir=image_dir,
                          lfw_pairs=pairs_file, lfw_crop=crop, crop=crop, patience=1000,
                          resume=args.resume, verbose=2)
    t = time.perf_counter()
    run_dir, history, _ = train(cfg)
    result.update(settings={k: v for k, v in vars(cfg).items()}, run_dir=run_dir,
                  train_seconds=round(time.perf_counter() - t, 1), resumed=bool(args.resume),
                  history=history,
                  fold1_per_epoch=history["lfw"], fold1_final=history["lfw"][-1],
                  fold1_best=max(history["lfw"]),
                  final_minus_baseline=history["lfw"][-1] - baseline)
    if args.finetune_pretrained:
        result["fold1_after"] = history["lfw"][-1]
        print(f"Fold 1 before {100 * result['fold1_before']:.2f}%, after "
              f"{100 * result['fold1_after']:.2f}%")
    else:
        plot_accuracy(history["lfw"], baseline, os.path.join(args.out, f"{name}.png"),
                      f"MobileNet from scratch, {args.input_size}px"
                      + (" aligned" if args.aligned else "") + ", LFW folds 2-10",
                      "FaceNet MobileNet, LFW fold 1", "raw-pixel baseline")
        print(f"Final {100 * history['lfw'][-1]:.2f}% = baseline {100 * baseline:.2f}% "
              f"+ {100 * result['final_minus_baseline']:.2f} points")
    write_result(name, result, args.out)


if __name__ == "__main__":
    main()
