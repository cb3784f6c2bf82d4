"""The training run: the model, the LFW check, and the fit, resumable at any epoch."""
import dataclasses
import datetime
import logging
import os

from utils.errors import FacenetError

logger = logging.getLogger(__name__)
LFW_CROPS_IN_MEMORY = 512 * 2**20  # bytes of LFW crops held between epochs' checks


def add_weight_decay(model, weight_decay):
    """L2 on conv, depthwise and dense kernels, as the original; 0: none."""
    import keras

    if weight_decay > 0:
        kinds = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)
        for layer in model.layers:
            if isinstance(layer, kinds):
                layer.kernel.regularizer = keras.regularizers.L2(weight_decay)


def build_model(cfg, num_classes):
    from nets.facenet import facenet
    from nets.weights_io import load_weights

    model = facenet(tuple(cfg.input_shape), num_classes=num_classes, backbone=cfg.backbone,
                    mode="train")
    add_weight_decay(model, cfg.weight_decay)
    if cfg.model_path and not cfg.resume:
        report = load_weights(model, cfg.model_path, partial=True)
        logger.info(f"Start weights: {report}")
        if not report.filled:
            raise FacenetError(f"{cfg.model_path} filled no layer of the {cfg.backbone} model")
    return model


def make_lfw_eval(cfg, preprocessing):
    """A function model -> LFW accuracy (each distinct image once), or None if LFW is absent."""
    if not cfg.lfw_eval:
        return None
    from facenet.evaluation import evaluate_pairs, headline_accuracy, load_lfw_pairs, score_pairs

    if not (os.path.isdir(cfg.lfw_dir) and os.path.isfile(cfg.lfw_pairs)):
        logger.warning(f"LFW evaluation skipped: {cfg.lfw_dir} or {cfg.lfw_pairs} not found "
                       f"(pass --lfw-dir and --lfw-pairs, or --no-lfw-eval)")
        return None
    from utils.lfw import parse_folds

    folds = getattr(cfg, "lfw_folds", "")  # a distillation's settings have none
    pairs, _ = load_lfw_pairs(cfg.lfw_pairs, cfg.lfw_dir,
                              folds=parse_folds(folds) if folds else None)
    if len({p.fold for p in pairs}) == 1:  # what eval_lfw.py says of one fold, said once
        logger.info(f"LFW check on {len(pairs)} pairs of one fold: the accuracy at their own "
                    f"best threshold, not cross-validated")
    paths = list(dict.fromkeys(p for pair in pairs for p in (pair.path_1, pair.path_2)))
    side = cfg.input_shape[0]
    keep_crops = len(paths) * side * side * 3 <= LFW_CROPS_IN_MEMORY
    held = {}  # the predictor (rebuilt only for another model) and, when small, the crops

    def evaluate(model):
        import numpy as np

        from facenet.predictor import Facenet
        from nets.facenet import embedding_model

        if held.get("model") is not model:  # its forward graph follows the weights as they train
            held.update(model=model, predictor=Facenet.from_keras(
                embedding_model(model), preprocessing, cfg.lfw_crop, batch_size=64))
        predictor = held["predictor"]
        if not keep_crops:
            report = evaluate_pairs(predictor, pairs, progress=False)
        else:
            if "crops" not in held:  # decoded and cropped once, not every epoch
                held["crops"] = predictor.prepare_faces(paths)[0]
            crops = held["crops"]
            emb = np.concatenate([predictor.embed_arrays(crops[i:i + 64])
                                  for i in range(0, len(crops), 64)])
            report = score_pairs(dict(zip(paths, emb)), pairs)
        return headline_accuracy(report)[0]

    return evaluate


def train(cfg, given=None):
    """Run (or resume) a training run; returns (run folder, history, trained model).
    `given`: the settings the user set, which a resume refuses to change (default: those that
    differ from TrainConfig's defaults).

    A run that fails before its first epoch is saved removes the folder it made, so a failed
    start leaves none behind. Ctrl-C raises TrainingInterrupted, which names the folder and
    the epochs saved in it."""
    from facenet.training.checkpoints import (check_writable, find_resume_state,
                                              make_run_dir, remove_partial_files,
                                              resume_settings, run_guard)
    from facenet.training.config import check_config
    from facenet.training.distribute import is_chief, pick_strategy

    state, state_dir = None, None
    if cfg.resume:
        run_dir, state_dir, state = find_resume_state(cfg.resume)
        new_keep = ("keep_checkpoints",) if cfg.keep_checkpoints is not None else ()
        cfg.epochs = resume_settings(  # the run's own settings, except how long and how loud
            cfg, state, run_dir,
            ("resume", "epochs", "init_epoch", "verbose", "strategy", "save_dir", *new_keep),
            lambda key, value: tuple(value) if key == "input_shape" else value, given)
        cfg.init_epoch = state["epoch"]
    if cfg.keep_checkpoints is None:
        cfg.keep_checkpoints = 0
    check_config(cfg)
    strategy = pick_strategy(cfg.strategy)
    chief = is_chief() if cfg.strategy != "single" else True
    made_here = chief and not cfg.resume
    if not cfg.resume and chief:  # a new folder of its own (make_run_dir)
        run_dir = make_run_dir(cfg.save_dir, "loss")
    elif not cfg.resume:  # a worker that writes no file: the chief's name, not made here
        stamp = datetime.datetime.now().strftime("%Y_%m_%d_%H_%M_%S")
        run_dir = os.path.join(cfg.save_dir, f"loss_{stamp}")
    if chief and cfg.resume:  # the one process that writes (or cleans up) the run folder
        remove_partial_files(run_dir, cfg.init_epoch)
        check_writable(run_dir)
    from facenet.training.data import pipeline_errors

    with run_guard(run_dir, made_here), pipeline_errors():
        history, model = _train(cfg, run_dir, state, state_dir, strategy, chief)
    return run_dir, history, model


def extension_note(finished, epochs, schedule):
    """What --epochs on a finished run does to the learning rate: its schedule now spans
    `epochs`, and the added epochs train at its rates there (the flat tail: the final one)."""
    rates = ", ".join(f"{schedule(e):.3g}" for e in range(finished, epochs))
    added = (f"epoch {epochs} trains" if epochs == finished + 1
             else f"epochs {finished + 1}-{epochs} train")
    return (f"the run had finished its {finished} epochs: {added} at learning rate {rates} "
            f"(its schedule stretched to {epochs} epochs); for a "
            f"schedule of its own, start a new run with --model-path on its weights")


def too_few_images(images, batch, multiple):
    """The error for fewer training images than one batch, naming the largest batch that fits
    (a multiple of `multiple`: whole triplets on each replica)."""
    fits = images // multiple * multiple
    what = (f"use --batch-size {fits} (the largest that fits) or add images" if fits
            else f"add images (a batch is at least {multiple})")
    return f"{images} training images are fewer than one batch of {batch}; {what}"


def _train(cfg, run_dir, state, state_dir, strategy, chief):
    """The run in its folder: the data checks, the model, the fit; returns (history, model)."""
    import keras

    from facenet.training.callbacks import EpochRecorder, PreciseBatchNorm
    from facenet.training.checkpoints import restore_resume_state
    from facenet.training.data import load_lines, split_lines, triplet_dataset, validation_plan
    from facenet.training.distribute import prepare_multiworker_fit
    from facenet.weights import read_card
    from nets.losses import triplet_loss
    from nets.schedules import fit_learning_rates, get_lr_scheduler, lr_fit_notes
    from utils.image import parse_crop

    if cfg.preprocessing is None:
        card = read_card(cfg.model_path) if cfg.model_path else None
        cfg.preprocessing = (card or {}).get("preprocessing", "scale01")
    if cfg.min_lr is None:
        cfg.min_lr = cfg.init_lr * 0.01

    entries = load_lines(cfg.annotation_path, cfg.skip_missing)
    num_classes = max(label for label, _ in entries) + 1
    train_lines, val_lines = split_lines(entries, cfg.val_split)
    batch = cfg.batch_size
    replicas = strategy.num_replicas_in_sync
    steps = len(train_lines) // batch
    if steps == 0:
        raise FacenetError(too_few_images(len(train_lines), batch, 3 * replicas))
    val_steps, best_by, validation_note = validation_plan(len(val_lines), batch)

    if batch % (3 * replicas):
        raise FacenetError(f"--batch-size {batch} must be a multiple of 3 x {replicas} replicas "
                           f"= {3 * replicas}, so that each replica gets whole triplets")
    init_lr, min_lr = fit_learning_rates(batch, cfg.init_lr, cfg.min_lr, cfg.optimizer)
    for note in lr_fit_notes(batch, cfg.init_lr, cfg.min_lr, cfg.optimizer):
        logger.info(f"note: {note}")
    if validation_note:  # too few held-out images: a fallback the user should know of
        logger.warning(validation_note)
    with strategy.scope():
        model = build_model(cfg, num_classes)
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
    finished = state["epoch"] if state_dir and state["epoch"] >= state["config"]["epochs"] else 0
    state["config"]["epochs"] = cfg.epochs
    state["config"]["keep_checkpoints"] = cfg.keep_checkpoints  # a new limit holds from here on

    crop = parse_crop(cfg.crop)
    paths = [p for _, p in entries]
    labels = [label for label, _ in entries]
    index = {p: i for i, p in enumerate(paths)}
    train_paths = [p for _, p in train_lines]
    train_labels = [label for label, _ in train_lines]
    train_ds = triplet_dataset(
        train_paths, train_labels, num_classes, cfg.input_shape, batch, steps, cfg.epochs,
        cfg.init_epoch, cfg.seed, True, cfg.preprocessing, crop=crop, replicas=replicas,
        crop_jitter=cfg.crop_jitter)
    val_ds = None
    if val_steps:
        val_ds = triplet_dataset(paths, labels, num_classes, cfg.input_shape, batch, val_steps,
                                 1, 0, cfg.seed + 1, False, cfg.preprocessing,
                                 anchor_indices=[index[p] for _, p in val_lines],
                                 crop=crop, replicas=replicas).repeat()
    card = {"backbone": cfg.backbone, "input_shape": list(cfg.input_shape),
            "preprocessing": cfg.preprocessing, "embedding_size": 128, "mode": "train",
            "num_classes": num_classes}
    schedule = get_lr_scheduler(cfg.lr_decay_type, init_lr, min_lr, cfg.epochs)
    if finished:
        logger.warning(extension_note(finished, cfg.epochs, schedule))
    bn_ds = triplet_dataset(
        train_paths, train_labels, num_classes, cfg.input_shape, batch,
        max(1, cfg.precise_bn_batches), 1, 0, cfg.seed + 2, False, cfg.preprocessing,
        crop=crop).repeat()
    callbacks = [
        keras.callbacks.LearningRateScheduler(schedule),
        PreciseBatchNorm(bn_ds, cfg.precise_bn_batches),
        EpochRecorder(run_dir, state, card, cfg.save_period, cfg.patience,
                      make_lfw_eval(cfg, cfg.preprocessing) if chief else None, write=chief,
                      keep_checkpoints=cfg.keep_checkpoints),
    ]
    if chief:  # one writer of files per run: the chief of a multi-worker cluster
        callbacks.insert(2, keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard"),
                                                        update_freq="epoch"))
    validation = (f"validate on {len(val_lines)}" if val_steps
                  else "no validation: best epoch by training loss")
    logger.info(f"Train on {len(train_lines)} images of {num_classes} classes, {validation}; "
                f"{steps} steps of {batch} per epoch; lr {init_lr:.2e} -> {min_lr:.2e} "
                f"({cfg.optimizer}, {cfg.lr_decay_type}); run folder {run_dir}")
    with prepare_multiworker_fit(model, strategy, lambda: next(iter(train_ds))):
        model.fit(train_ds, steps_per_epoch=steps, epochs=cfg.epochs,
                  initial_epoch=cfg.init_epoch, validation_data=val_ds,
                  validation_steps=val_steps or None, callbacks=callbacks, verbose=cfg.verbose,
                  shuffle=False)
    return state["history"], model
