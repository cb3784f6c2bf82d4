"""Train FaceNet on your faces: softmax + triplet loss, 128-d L2-normalised embeddings.

    python txt_annotation.py                    # dataset/<person>/*.jpg -> cls_train.txt
    python train.py --backbone mobilenet        # writes logs/loss_<time>/
    python train.py --resume logs/loss_<time>   # continue a stopped run at its next epoch
    python train.py --teacher --annotation-path faces/   # distil the pretrained model (no labels)
"""
import argparse

from facenet.cli import (add_input_size, add_logging_options, configure_logging,
                         existing_file_or_none)
from facenet.training import TrainConfig
from facenet.training.augment import Augmentation
from facenet.training.distillation import LOSSES, DistillConfig
from utils.choices import (BACKBONES, LR_DECAY_TYPES, MIX_MODES, OPTIMIZERS, PREPROCESSINGS,
                           STRATEGIES, TEACHER_PRECISIONS, TRAINING_PRECISIONS)
from utils.errors import FacenetError, cli_errors

DISTILL_ONLY = ("teacher", "distill_loss", "relation_weight", "views", "dropout_keep_prob",
                "targets_dir", "precision", "cache_views_gb", "teacher_precision")
COMMAND_ONLY = ("no_progress", "quiet", "verbose")  # how the command shows the run


def add_distillation_args(p):
    """--teacher and the options that only distillation reads (facenet/training/distillation.py)."""
    d, aug = DistillConfig(), Augmentation()
    g = p.add_argument_group("distillation (with --teacher)")
    a = g.add_argument
    a("--teacher", nargs="?", const="", default=None, metavar="MODEL",
      type=existing_file_or_none,
      help="learn to reproduce this model's embeddings (any weights file the predictor loads; "
           "no value: the pretrained default) instead of training on labels; "
           "--annotation-path may then be a folder of face images")
    a("--distill-loss", default=d.loss, choices=LOSSES,
      help="cosine: 1 - cos(student, teacher) per face (the squared distance of unit "
           "embeddings, halved); relation: the batch's similarity matrix (default: %(default)s)")
    a("--relation-weight", type=float, default=d.relation_weight,
      help="weight of the relation term in cosine+relation (default: %(default)s)")
    a("--views", type=int, default=d.views,
      help="augmented views per image, each embedded once by the teacher and cached; epoch e "
           "trains on view e mod N (default: %(default)s)")
    a("--dropout-keep-prob", type=float, default=d.dropout_keep_prob,
      help="keep probability of the dropout before the bottleneck (default: %(default)s; "
           "the original's 0.5 adds noise to a regression target)")
    a("--teacher-precision", default=d.teacher_precision, choices=TEACHER_PRECISIONS,
      help="how the teacher embeds the views: auto, its float network on Keras; int8, int8 "
           "ONNX Runtime (faster targets, within a small cosine of float; needs onnxruntime) "
           "(default: %(default)s)")
    a("--targets-dir", default="", help="where the teacher's targets are kept (default: the "
                                        "run folder; point several runs at one to share them)")
    a("--cache-views-gb", type=float, default=d.cache_views_gb,
      help="keep each view rendered at the student's size beside the targets when one view "
           "takes at most this many GB, so epochs read pixels instead of rendering them; 0: "
           "render every epoch (default: %(default)s)")
    a("--precision", default=d.precision, choices=TRAINING_PRECISIONS,
      help="the student's arithmetic: auto = bfloat16 where it is faster on this machine "
           "(default: %(default)s)")
    for name, help_ in (("scale", "side of the view / side of the face box, low and high"),
                        ("rotation", "degrees, either way"),
                        ("shift", "centre offset as a share of the face box side"),
                        ("flip", "probability of a mirror image"),
                        ("brightness", "pixel factor in 1 +- this"),
                        ("contrast", "contrast factor in 1 +- this"),
                        ("saturation", "colour factor in 1 +- this"),
                        ("greyscale", "probability of a grey view"),
                        ("blur", "probability of a Gaussian blur"),
                        ("blur_sigma", "its sigma in pixels of a 160-pixel view, low and high"),
                        ("mix", "probability of blending in the same view of another image "
                                "(the teacher embeds the blend)"),
                        ("mix_share", "the own image's share of a blend, low and high"),
                        ("erase", "probability of a rectangle filled with the mean colour"),
                        ("erase_area", "its area as a share of the view, low and high")):
        default = getattr(aug, name)
        pair = isinstance(default, tuple)
        a(f"--aug-{name.replace('_', '-')}", type=float, default=default,
          nargs=2 if pair else None, metavar=("LOW", "HIGH") if pair else None,
          help=f"{help_} (default: {' '.join(map(str, default)) if pair else default})")
    a("--aug-mix-mode", default=aug.mix_mode, choices=MIX_MODES,
      help="mixup: a weighted average of the two views; cutmix: a square of the other "
           "(default: %(default)s)")


def fit_verbosity(args):
    """Keras's output during fit: a progress bar (1), or one line per epoch (2) with
    --no-progress or --quiet."""
    return 2 if args.no_progress or args.quiet else 1


def distill_config(args):
    """The distillation settings of parsed train.py arguments."""
    if args.lfw_folds:  # not one of its settings: refused rather than ignored
        raise FacenetError("--lfw-folds is read by training's LFW check, not by --teacher")
    aug = Augmentation(**{k[4:]: (tuple(v) if isinstance(v, list) else v)
                          for k, v in vars(args).items() if k.startswith("aug_")})
    return DistillConfig(
        images=args.annotation_path, teacher=args.teacher or "", backbone=args.backbone,
        input_shape=tuple(args.input_shape), preprocessing=args.preprocessing or "standardize",
        epochs=args.epochs or 0, batch_size=args.batch_size, init_lr=args.init_lr,
        min_lr=args.min_lr if args.min_lr is not None else args.init_lr * 0.01,
        weight_decay=args.weight_decay, loss=args.distill_loss,
        relation_weight=args.relation_weight, views=args.views, crop=args.crop,
        augmentation=aug, dropout_keep_prob=args.dropout_keep_prob,
        precise_bn_batches=args.precise_bn_batches, targets_dir=args.targets_dir,
        init_weights=args.model_path, precision=args.precision,
        teacher_precision=args.teacher_precision,
        cache_views_gb=args.cache_views_gb,
        save_dir=args.save_dir, lfw_eval=args.lfw_eval, lfw_dir=args.lfw_dir,
        lfw_pairs=args.lfw_pairs, lfw_crop=args.lfw_crop, seed=args.seed, resume=args.resume,
        verbose=fit_verbosity(args))


def build_parser():
    d = TrainConfig()
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--annotation-path", default=d.annotation_path, help="class;path lines (default: %(default)s)")
    a("--backbone", default=d.backbone, choices=BACKBONES, help="network (default: %(default)s)")
    a("--model-path", default=d.model_path, type=existing_file_or_none,
      help="start from these weights (by layer name; the classifier may differ; with --teacher "
           "the student's, e.g. the shipped model, with a fresh schedule); '' = from scratch")
    add_input_size(p, d.input_shape)
    a("--init-epoch", type=int, default=d.init_epoch, help="first epoch (default: 0)")
    a("--epochs", type=int, default=None,
      help=f"last epoch (default: {d.epochs}; with --resume, the run's own)")
    a("--batch-size", type=int, default=d.batch_size,
      help="images per batch, a multiple of 3 (default: %(default)s)")
    a("--init-lr", type=float, default=d.init_lr,
      help="base learning rate, times batch/64 and clipped to the optimizer's range as "
           "the original did; the log says when it clips (default: %(default)s)")
    a("--min-lr", type=float, default=None,
      help="final base learning rate, fitted the same way to 1%% of those ranges "
           "(default: init-lr * 0.01)")
    a("--optimizer", default=d.optimizer, choices=OPTIMIZERS, help="(default: %(default)s)")
    a("--momentum", type=float, default=d.momentum, help="adam beta_1 / sgd momentum (default: 0.9)")
    a("--weight-decay", type=float, default=d.weight_decay,
      help="L2 on conv and dense kernels (default: 0)")
    a("--lr-decay-type", default=d.lr_decay_type, choices=LR_DECAY_TYPES,
      help="learning-rate schedule (default: %(default)s)")
    a("--save-period", type=int, default=d.save_period, help="epochs between checkpoints (default: 1)")
    a("--save-dir", default=d.save_dir, help="folder of the run folders (default: %(default)s)")
    a("--keep-checkpoints", type=int, default=None, metavar="N",
      help="keep only the newest N per-epoch checkpoints (ep*.weights.h5; best and last always "
           "stay). Each holds the embedding network's weights, at 160 px: MobileNet 13.7 MB, "
           "Inception-ResNet-V1 92 MB, whatever the classes (default: 0 = keep all, as the "
           "original; with --resume, the run's own)")
    a("--num-workers", type=int, default=d.num_workers,
      help="kept for the original's option; decoding is parallel (tf.data AUTOTUNE)")
    a("--no-lfw-eval", dest="lfw_eval", action="store_false", help="no LFW accuracy per epoch")
    a("--lfw-dir", default=d.lfw_dir, help="LFW images for the per-epoch check (default: %(default)s)")
    a("--lfw-pairs", default=d.lfw_pairs, help="LFW pairs file (default: %(default)s)")
    a("--lfw-folds", default=d.lfw_folds,
      help="score only these official folds, as eval_lfw.py --folds: 1, 1,3 or 2-10 "
           "(default: all)")
    a("--lfw-crop", default=d.lfw_crop, help="face box of the LFW images: none, lfw or x0,y0,x1,y1")
    a("--crop", default=d.crop, help="face box of the training images: none, lfw or x0,y0,x1,y1")
    a("--val-split", type=float, default=d.val_split, help="held-out share (default: %(default)s)")
    a("--crop-jitter", type=float, default=d.crop_jitter,
      help="augment with a random sub-box of the face box whose side is 1 - this .. 1 of it "
           "(e.g. 0.15; default 0: flips only, as the original)")
    a("--seed", type=int, default=d.seed, help="sampling and augmentation seed (default: 0)")
    a("--patience", type=int, default=d.patience, help="early-stopping patience (default: 10)")
    a("--preprocessing", default=None, choices=PREPROCESSINGS,
      help="default: the start model's card, else scale01 (x/255)")
    a("--precise-bn-batches", type=int, default=d.precise_bn_batches,
      help="re-estimate BatchNorm statistics from N training batches each epoch, so that small "
           "datasets do not collapse in inference mode; 0 = the original's behaviour (default: 20)")
    a("--skip-missing", action="store_true",
      help="train without annotation lines whose image no longer exists (default: an error)")
    a("--resume", default="", help="a run folder (or a file in it) to continue")
    a("--strategy", default=d.strategy, choices=STRATEGIES,
      help="auto: several machines when TF_CONFIG names them, else all GPUs when there are "
           "several, else one device (default: %(default)s)")
    a("--no-progress", action="store_true",
      help="one line per epoch instead of a progress bar (also with --quiet)")
    add_logging_options(p)
    add_distillation_args(p)
    return p


def run_config(args):
    """The run's settings from parsed options: a DistillConfig with --teacher (or when
    resuming a distillation), else a TrainConfig."""
    if args.epochs is None and not args.resume:
        args.epochs = TrainConfig().epochs
    if args.teacher is not None or is_distillation_run(args.resume):
        return distill_config(args)
    cfg = TrainConfig(**{k: v for k, v in vars(args).items()
                         if k not in DISTILL_ONLY + COMMAND_ONLY and not k.startswith("aug_")},
                      verbose=fit_verbosity(args))
    cfg.input_shape = tuple(cfg.input_shape)
    return cfg


def parse_args(argv=None):
    """The run's settings of a command line, as main takes them."""
    return run_config(build_parser().parse_args(argv))


def is_distillation_run(resume):
    """Whether a --resume folder holds a distillation run (its saved settings name views)."""
    if not resume:
        return False
    from facenet.training.checkpoints import find_resume_state

    try:
        return "views" in find_resume_state(resume)[2]["config"]
    except FacenetError:
        return False  # train() reports the folder in its own words


# Options whose setting has another name in DistillConfig (the aug_* options: augmentation).
DISTILL_NAMES = {"annotation_path": "images", "distill_loss": "loss",
                 "model_path": "init_weights"}


def given_settings(argv, distillation):
    """The config settings that the command line names, whatever their values: a resume
    refuses those that differ from the run's own (an option equal to its default counts)."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    given = set(vars(parser.parse_args(argv)))
    if not distillation:
        return given
    return {"augmentation" if k.startswith("aug_") else DISTILL_NAMES.get(k, k) for k in given}


def main(argv=None):
    args = build_parser().parse_args(argv)
    configure_logging(args)  # before TensorFlow loads: its chatter off the terminal
    with cli_errors():  # Ctrl-C in a run: TrainingInterrupted says how to resume it
        cfg = run_config(args)
        given = given_settings(argv, isinstance(cfg, DistillConfig))
        if isinstance(cfg, DistillConfig):
            from facenet.training.distillation import distill

            run_dir, history, _ = distill(cfg, given=given)
        else:
            from facenet.training import train

            run_dir, history, _ = train(cfg, given=given)
    print(f"Done: {run_dir}")


if __name__ == "__main__":
    main()
