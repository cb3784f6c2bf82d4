"""Training FaceNet: settings, checks, model, data and the fit, resumable at any epoch."""
import dataclasses
import datetime
import os

from utils.choices import BACKBONES, LR_DECAY_TYPES, OPTIMIZERS
from utils.errors import FacenetError, SettingError


@dataclasses.dataclass
class TrainConfig:
    """Every constant at the top of the original train.py, with its default."""
    annotation_path: str = "cls_train.txt"
    backbone: str = "mobilenet"
    model_path: str = ""
    input_shape: tuple = (160, 160, 3)
    init_epoch: int = 0
    epochs: int = 100
    batch_size: int = 96
    init_lr: float = 1e-3
    min_lr: float = None  # None: init_lr * 0.01
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_decay_type: str = "cos"
    save_period: int = 1
    save_dir: str = "logs"
    num_workers: int = 0  # tf.data decodes in parallel (AUTOTUNE); kept for the original's option
    lfw_eval: bool = True
    lfw_dir: str = "lfw"
    lfw_pairs: str = "model_data/lfw_pair.txt"
    lfw_crop: str = "none"
    crop: str = "none"  # face box of the training images, e.g. "lfw" for 250x250 LFW images
    crop_jitter: float = 0.0  # random sub-box of the face box, side down to 1 - this; 0 = original
    val_split: float = 0.01
    seed: int = 0
    patience: int = 10
    preprocessing: str = None  # None: the pretrained card's when starting from it, else scale01
    skip_missing: bool = False  # train without annotation lines whose image is gone
    precise_bn_batches: int = 20  # re-estimate BatchNorm statistics each epoch; 0 = original
    resume: str = ""
    strategy: str = "auto"  # auto | single | mirrored | multiworker (facenet/distribute.py)
    verbose: int = 1


def check_config(cfg):
    """Reject impossible settings before anything is built, naming the allowed values."""
    from nets.facenet import check_input_shape
    from utils.dataloader import check_batch_size

    if cfg.backbone not in BACKBONES:
        raise SettingError(f"unknown backbone {cfg.backbone!r}; choose one of {list(BACKBONES)}")
    if cfg.optimizer not in OPTIMIZERS:
        raise SettingError(f"unknown optimizer {cfg.optimizer!r}; choose one of {list(OPTIMIZERS)}")
    if cfg.lr_decay_type not in LR_DECAY_TYPES:
        raise SettingError(f"unknown lr_decay_type {cfg.lr_decay_type!r}; "
                           f"choose one of {list(LR_DECAY_TYPES)}")
    check_batch_size(cfg.batch_size)
    check_input_shape(tuple(cfg.input_shape), cfg.backbone)
    if cfg.init_lr <= 0 or (cfg.min_lr is not None and cfg.min_lr <= 0):
        raise SettingError(f"learning rates must be positive, got init_lr={cfg.init_lr}, "
                           f"min_lr={cfg.min_lr}")
    if not 0 <= cfg.init_epoch < cfg.epochs:
        raise SettingError(f"need 0 <= init_epoch < epochs, got {cfg.init_epoch} and {cfg.epochs}")
    if not 0 <= cfg.val_split < 1:
        raise SettingError(f"val_split must be in [0, 1), got {cfg.val_split}")
    if cfg.save_period < 1:
        raise SettingError(f"save_period must be at least 1, got {cfg.save_period}")


def remove_partial_files(run_dir, completed_epochs):
    """Delete what a killed run left of an epoch it did not complete: temporary files, and
    checkpoints of later epochs (the epoch is redone, and its checkpoint written again)."""
    import re
    import shutil

    for folder in (run_dir, os.path.join(run_dir, "resume")):
        if os.path.isdir(folder):
            for name in os.listdir(folder):
                path = os.path.join(folder, name)
                match = re.match(r"ep(\d{3})-", name)
                if name.startswith(".tmp-") or (match and int(match.group(1)) > completed_epochs):
                    shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)


def check_writable(folder):
    """Fail at start, not after hours of training, when checkpoints cannot be written."""
    try:
        os.makedirs(folder, exist_ok=True)
        probe = os.path.join(folder, ".write-test")
        with open(probe, "wb") as f:
            f.write(b"\0" * 1024)
        os.remove(probe)
    except OSError as e:
        raise FacenetError(f"cannot write to the save folder {folder}: {e}. Choose another "
                           f"--save-dir or free some space.") from None


def load_lines(annotation_path, skip_missing=False, log=print):
    """The annotation's lines, checked before any model is built."""
    import collections

    from utils.annotation import AnnotationError, read_annotation

    entries = read_annotation(annotation_path)
    missing = [p for _, p in entries if not os.path.exists(p)]
    if missing and not skip_missing:
        raise AnnotationError(f"{len(missing)} images of {annotation_path} do not exist, e.g. "
                              f"{missing[:3]}; run txt_annotation.py again, or pass "
                              f"--skip-missing to train without them")
    if missing:
        log(f"warning: skipping {len(missing)} images that no longer exist, e.g. {missing[0]}")
        gone = set(missing)
        entries = [(c, p) for c, p in entries if p not in gone]
    counts = collections.Counter(label for label, _ in entries)
    if len(counts) < 2 or max(counts.values(), default=0) < 2:
        raise AnnotationError(f"{annotation_path} has {len(counts)} classes with images and "
                              f"{sum(n >= 2 for n in counts.values())} with 2 or more: training "
                              f"needs at least 2 classes and one with 2 images")
    return entries


def add_weight_decay(model, weight_decay):
    """L2 on conv, depthwise and dense kernels, as the original; 0: none."""
    import keras

    if weight_decay > 0:
        kinds = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)
        for layer in model.layers:
            if isinstance(layer, kinds):
                layer.kernel.regularizer = keras.regularizers.L2(weight_decay)


def build_model(cfg, num_classes, log=print):
    from nets.facenet import facenet
    from nets.weights_io import load_weights

    model = facenet(tuple(cfg.input_shape), num_classes=num_classes, backbone=cfg.backbone,
                    mode="train")
    add_weight_decay(model, cfg.weight_decay)
    if cfg.model_path and not cfg.resume:
        report = load_weights(model, cfg.model_path, partial=True)
        log(f"Start weights: {report}")
        if not report.filled:
            raise FacenetError(f"{cfg.model_path} filled no layer of the {cfg.backbone} model")
    return model


def make_lfw_eval(cfg, preprocessing, log=print):
    """A function model -> LFW accuracy (each distinct image once), or None if LFW is absent."""
    if not cfg.lfw_eval:
        return None
    from facenet.evaluation import evaluate_pairs, load_lfw_pairs

    if not (os.path.isdir(cfg.lfw_dir) and os.path.isfile(cfg.lfw_pairs)):
        log(f"warning: LFW evaluation skipped: {cfg.lfw_dir} or {cfg.lfw_pairs} not found "
            f"(pass --lfw-dir and --lfw-pairs, or --no-lfw-eval)")
        return None
    pairs, _ = load_lfw_pairs(cfg.lfw_pairs, cfg.lfw_dir)

    def evaluate(model):
        from facenet.predictor import Facenet
        from nets.facenet import embedding_model

        predictor = Facenet.from_keras(embedding_model(model), preprocessing, cfg.lfw_crop,
                                       batch_size=64)
        report = evaluate_pairs(predictor, pairs, progress=False)
        return report.get("accuracy_mean", report["best_threshold_accuracy"])

    return evaluate


def validation_plan(held_out, batch_size):
    """(validation steps, what picks best_epoch_weights, a note for the log or None).

    Validation needs one full batch of held-out images: on fewer (one image, on a small
    dataset) its loss, and so the choice of the best epoch, is chance."""
    if held_out >= batch_size:
        return held_out // batch_size, "val_loss", None
    why = (f"{held_out} held-out images are fewer than one batch of {batch_size}" if held_out
           else "--val-split is 0")
    return 0, "loss", (f"no validation ({why}): best_epoch_weights is the epoch of the lowest "
                       f"training loss; raise --val-split or lower --batch-size to validate")


def train(cfg, log=print):
    """Run (or resume) a training run; returns (run folder, history, trained model).

    A run that fails before its first epoch is saved removes the folder it made, so a failed
    start leaves none behind. Ctrl-C raises TrainingInterrupted, which names the folder and
    the epochs saved in it."""
    from facenet.distribute import is_chief, pick_strategy
    from utils.callbacks import find_resume_state, resume_settings, run_guard

    state, state_dir = None, None
    if cfg.resume:
        run_dir, state_dir, state = find_resume_state(cfg.resume)
        cfg.epochs = resume_settings(  # the run's own settings, except how long and how loud
            cfg, state, run_dir, ("resume", "epochs", "init_epoch", "verbose", "strategy"), log,
            lambda key, value: tuple(value) if key == "input_shape" else value)
        cfg.init_epoch = state["epoch"]
    check_config(cfg)
    if not cfg.resume:
        stamp = datetime.datetime.now().strftime("%Y_%m_%d_%H_%M_%S")
        run_dir = os.path.join(cfg.save_dir, f"loss_{stamp}")
    strategy = pick_strategy(cfg.strategy, log)
    chief = is_chief() if cfg.strategy != "single" else True
    made_here = chief and not os.path.exists(run_dir)
    if chief:  # the one process that writes (or cleans up) the run folder
        if cfg.resume:
            remove_partial_files(run_dir, cfg.init_epoch)
        check_writable(run_dir)
    with run_guard(run_dir, made_here):
        history, model = _train(cfg, run_dir, state, state_dir, strategy, chief, log)
    return run_dir, history, model


def _train(cfg, run_dir, state, state_dir, strategy, chief, log):
    """The run in its folder: the data checks, the model, the fit; returns (history, model)."""
    import keras

    from facenet.distribute import prepare_multiworker_fit
    from facenet.weights import read_card
    from nets.facenet_training import (fit_learning_rates, get_lr_scheduler, lr_fit_notes,
                                       triplet_loss)
    from utils.callbacks import EpochRecorder, PreciseBatchNorm, restore_resume_state
    from utils.dataloader import split_lines, triplet_dataset
    from utils.image import parse_crop

    if cfg.preprocessing is None:
        card = read_card(cfg.model_path) if cfg.model_path else None
        cfg.preprocessing = (card or {}).get("preprocessing", "scale01")
    if cfg.min_lr is None:
        cfg.min_lr = cfg.init_lr * 0.01

    entries = load_lines(cfg.annotation_path, cfg.skip_missing, log)
    num_classes = max(label for label, _ in entries) + 1
    train_lines, val_lines = split_lines(entries, cfg.val_split)
    batch = cfg.batch_size
    steps = len(train_lines) // batch
    if steps == 0:
        raise FacenetError(f"{len(train_lines)} training images are fewer than one batch of "
                           f"{batch}; lower --batch-size or add images")
    val_steps, best_by, validation_note = validation_plan(len(val_lines), batch)

    replicas = strategy.num_replicas_in_sync
    if batch % (3 * replicas):
        raise FacenetError(f"--batch-size {batch} must be a multiple of 3 x {replicas} replicas "
                           f"= {3 * replicas}, so that each replica gets whole triplets")
    init_lr, min_lr = fit_learning_rates(batch, cfg.init_lr, cfg.min_lr, cfg.optimizer)
    for note in lr_fit_notes(batch, cfg.init_lr, cfg.min_lr, cfg.optimizer):
        log(f"note: {note}")
    if validation_note:
        log(f"note: {validation_note}")
    with strategy.scope():
        model = build_model(cfg, num_classes, log)
        if cfg.optimizer == "adam":
            optimizer = keras.optimizers.Adam(init_lr, beta_1=cfg.momentum)
        else:
            optimizer = keras.optimizers.SGD(init_lr, momentum=cfg.momentum, nesterov=True)
        model.compile(optimizer=optimizer,
                      loss={"Softmax": "categorical_crossentropy", "Embedding": triplet_loss()})
        if state_dir:
            restore_resume_state(model, state_dir)
    if not state_dir:
        state = {"epoch": cfg.init_epoch, "best_by": best_by, "wait": 0,
                 "history": {"loss": [], "val_loss": [], "lr": [], "lfw": []},
                 "config": dataclasses.asdict(cfg)}
    state.setdefault("best_by", best_by)  # a resumed run keeps its own measure of the best
    state["config"]["epochs"] = cfg.epochs

    crop = parse_crop(cfg.crop)
    paths = [p for _, p in entries]
    labels = [label for label, _ in entries]
    index = {p: i for i, p in enumerate(paths)}
    train_paths = [p for _, p in train_lines]
    train_labels = [label for label, _ in train_lines]
    train_ds = triplet_dataset(
        train_paths, train_labels, num_classes, cfg.input_shape, batch, steps, cfg.epochs,
        cfg.init_epoch, cfg.seed, True, cfg.preprocessing, crop=crop, replicas=replicas,
        crop_jitter=cfg.crop_jitter, log=log)
    val_ds = None
    if val_steps:
        val_ds = triplet_dataset(paths, labels, num_classes, cfg.input_shape, batch, val_steps,
                                 1, 0, cfg.seed + 1, False, cfg.preprocessing,
                                 anchor_indices=[index[p] for _, p in val_lines],
                                 crop=crop, replicas=replicas, log=log).repeat()
    card = {"backbone": cfg.backbone, "input_shape": list(cfg.input_shape),
            "preprocessing": cfg.preprocessing, "embedding_size": 128, "mode": "train",
            "num_classes": num_classes}
    schedule = get_lr_scheduler(cfg.lr_decay_type, init_lr, min_lr, cfg.epochs)
    bn_ds = triplet_dataset(
        train_paths, train_labels, num_classes, cfg.input_shape, batch,
        max(1, cfg.precise_bn_batches), 1, 0, cfg.seed + 2, False, cfg.preprocessing, crop=crop,
        log=log).repeat()
    callbacks = [
        keras.callbacks.LearningRateScheduler(schedule),
        PreciseBatchNorm(bn_ds, cfg.precise_bn_batches),
        EpochRecorder(run_dir, state, card, cfg.save_period, cfg.patience,
                      make_lfw_eval(cfg, cfg.preprocessing, log) if chief else None, log,
                      write=chief),
    ]
    if chief:  # one writer of files per run: the chief of a multi-worker cluster
        callbacks.insert(2, keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard"),
                                                        update_freq="epoch"))
    validation = (f"validate on {len(val_lines)}" if val_steps
                  else "no validation: best epoch by training loss")
    log(f"Train on {len(train_lines)} images of {num_classes} classes, {validation}; {steps} "
        f"steps of {batch} per epoch; lr {init_lr:.2e} -> {min_lr:.2e} ({cfg.optimizer}, "
        f"{cfg.lr_decay_type}); run folder {run_dir}")
    with prepare_multiworker_fit(model, strategy, lambda: next(iter(train_ds))):
        model.fit(train_ds, steps_per_epoch=steps, epochs=cfg.epochs,
                  initial_epoch=cfg.init_epoch, validation_data=val_ds,
                  validation_steps=val_steps or None, callbacks=callbacks, verbose=cfg.verbose,
                  shuffle=False)
    return state["history"], model
