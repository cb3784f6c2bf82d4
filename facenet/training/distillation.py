"""Distillation: a student network learns to reproduce a teacher's L2-normalised embedding of
the same augmented face view. No labels are needed: any folder of face crops will do.

The teacher (any model the predictor loads; by default the pretrained Inception-ResNet-V1)
embeds `views` augmented views of every image once, in inference mode, and the targets are
kept per view on disk, each made when an epoch first needs it (a run trains after one view).
Epoch e trains on view e mod `views`, so the teacher's cost is paid `views` times, not once
per epoch (docs/training.md: distillation has the measurements).
A run is resumable at any epoch, and a resumed run renders exactly the views it would have.
"""
import concurrent.futures
import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import os
import time

import numpy as np

from facenet.training.augment import (Augmentation, blend, partner_index, render,
                                      view_params)
from utils.choices import TEACHER_PRECISIONS
from utils.errors import FacenetError, SettingError
from utils.fileio import atomic_path, sha256_of, write_json_atomic
from utils.image import load_image

LOSSES = ("cosine", "relation", "cosine+relation")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class DistillConfig:
    """Settings of a distillation run (train.py --teacher)."""
    images: str = "cls_train.txt"  # an annotation file (labels ignored) or a folder of faces
    teacher: str = ""  # weights file of the teacher; "": the registry's pretrained default
    backbone: str = "mobilenet"
    input_shape: tuple = (160, 160, 3)
    preprocessing: str = "standardize"
    epochs: int = 30
    batch_size: int = 64
    init_lr: float = 1e-3
    min_lr: float = 1e-5
    weight_decay: float = 0.0
    loss: str = "cosine"
    relation_weight: float = 1.0  # weight of the relation term in "cosine+relation"
    views: int = 8  # augmented views per image, each embedded once by the teacher
    crop: str = "none"  # the face box inside each image, as train.py --crop
    augmentation: Augmentation = dataclasses.field(default_factory=Augmentation)
    dropout_keep_prob: float = 1.0  # the original's 0.5 adds noise to a regression target
    precise_bn_batches: int = 20
    # "auto": bfloat16 where it trains faster (utils/precision.py), or "float32" / "bfloat16"
    # (mixed: bfloat16 compute, float32 weights)
    precision: str = "auto"
    # The teacher's engine for the targets: "auto" its float network on Keras (float32, or
    # bfloat16 where faster); "int8": int8 ONNX Runtime, several times faster on CPUs with
    # int8 instructions, its embeddings within a small cosine of float (docs/distillation.md)
    teacher_precision: str = "auto"
    init_weights: str = ""  # start the student from these weights (a fresh schedule); "": scratch
    targets_dir: str = ""  # where teacher targets are kept; "": inside the run folder
    # Render each view once at the student's size and keep it beside the targets when one view
    # takes at most this many GB (the epochs then only read pixels); 0: render every epoch
    cache_views_gb: float = 2.0
    save_dir: str = "logs"
    lfw_eval: bool = True
    lfw_dir: str = "lfw"
    lfw_pairs: str = "model_data/lfw_pair.txt"
    lfw_crop: str = "none"
    seed: int = 0
    workers: int = 0  # rendering threads; 0: the number of cores
    resume: str = ""
    verbose: int = 2


def list_images(source):
    """Paths of the training images: the lines of an annotation file (`class;path`, labels
    ignored) or every image file under a folder, sorted."""
    if os.path.isdir(source):
        found = []
        for root, dirs, files in os.walk(source):
            dirs.sort()
            found += [os.path.join(root, f) for f in sorted(files)
                      if f.lower().endswith(IMAGE_SUFFIXES) and not f.startswith(".")]
        if not found:
            raise FacenetError(f"{source} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
        return found
    from utils.annotation import read_annotation

    return [path for _, path in read_annotation(source)]


def face_box(image, crop):
    """The face box of `image` in pixels: the crop fractions, or the whole image."""
    x0, y0, x1, y1 = crop if crop is not None else (0.0, 0.0, 1.0, 1.0)
    return (x0 * image.width, y0 * image.height, x1 * image.width, y1 * image.height)


class ViewRenderer:
    """Renders views of the training images in threads (PIL releases the GIL)."""

    def __init__(self, paths, crop, augmentation, seed, workers=0):
        self.paths, self.crop, self.augmentation, self.seed = paths, crop, augmentation, seed
        self.pool = concurrent.futures.ThreadPoolExecutor(workers or os.cpu_count() or 2)
        self.failed = set()

    def one(self, index, view, sizes, params=None):
        """The view at each of `sizes`, from one decode of the image; a mixed view blends in
        the same view of its partner image."""
        params = params or view_params(self.augmentation, self.seed, index, view)
        try:
            image = load_image(self.paths[index])
        except Exception as e:  # a broken image: grey, named once, the run goes on
            if index not in self.failed:
                self.failed.add(index)
                logger.warning(f"{self.paths[index]}: unreadable ({e}); trained on as grey")
            return [np.full((size, size, 3), 128, np.uint8) for size in sizes]
        box = face_box(image, self.crop)
        own = [render(image, box, params, size) for size in sizes]
        if not params["mix"] or len(self.paths) < 2:
            return own
        other = partner_index(params, index, len(self.paths))
        unmixed = dict(view_params(self.augmentation, self.seed, other, view), mix=0.0)
        return [blend(a, b, params)
                for a, b in zip(own, self.one(other, view, sizes, unmixed))]

    def batches(self, indices, view, sizes):
        """One uint8 (len(indices), size, size, 3) array per size in `sizes`."""
        rendered = list(self.pool.map(lambda i: self.one(i, view, sizes), indices))
        return [np.stack([r[k] for r in rendered]) for k in range(len(sizes))]

    def batch(self, indices, view, size):
        """uint8 (len(indices), size, size, 3) views of the images `indices`."""
        return self.batches(indices, view, [size])[0]


def augmentation_record(augmentation):
    """The augmentation as the targets' meta.json records it: options left off are omitted, so
    targets cached before an option existed still match a setup that leaves it off."""
    record = json.loads(json.dumps(dataclasses.asdict(augmentation)))  # tuples as lists
    off = {"mix": 0.0, "erase": 0.0}
    for key in off:
        if record[key] == off[key]:
            record = {k: v for k, v in record.items()
                      if k != key and not k.startswith(key + "_")}
    return record


def _fingerprint(paths):
    return hashlib.sha256("\n".join(paths).encode("utf-8", "surrogateescape")).hexdigest()


class TeacherTargets:
    """The teacher's embedding of every view, one (N, D) float32 file per view, written
    atomically; `meta.json` records what they were computed from, so stale targets are refused
    instead of trained on."""

    # Fields written only when set: targets that have one must not serve a run without it.
    SYMMETRIC = ("teacher_precision",)

    def __init__(self, folder, meta):
        self.folder, self.meta = folder, meta
        os.makedirs(folder, exist_ok=True)
        meta_path = os.path.join(folder, "meta.json")
        if os.path.exists(meta_path):
            try:
                with open(meta_path, encoding="utf-8") as f:
                    saved = dict(json.load(f))
            except (OSError, ValueError, TypeError, RecursionError) as e:
                raise FacenetError(f"{meta_path} is unreadable ({type(e).__name__}: "
                                   f"{str(e)[:120]}); delete {folder} to compute the teacher's "
                                   f"targets again") from None
            for key in [*meta, *(k for k in self.SYMMETRIC if k not in meta)]:
                if saved.get(key) != meta.get(key):
                    raise FacenetError(
                        f"{meta_path}: field {key!r} is {saved.get(key)!r}, this run has "
                        f"{meta.get(key)!r}; these teacher targets belong to another setup. Use "
                        f"another --targets-dir or delete {folder}")
        else:
            write_json_atomic(meta_path, meta)

    def path(self, view):
        return os.path.join(self.folder, f"view_{view:03d}.npy")

    def has(self, view):
        return os.path.exists(self.path(view))

    def load(self, view):
        targets = np.load(self.path(view))
        if targets.shape[0] != self.meta["images"] or not np.isfinite(targets).all():
            raise FacenetError(f"{self.path(view)} is damaged (shape {targets.shape} or "
                               f"non-finite values); delete it to compute it again")
        return targets

    def compute(self, view, teacher, renderer, student_views=None, batch_size=64):
        """Embed view `view` of every image with the teacher, and keep the student's rendering
        of the same view in `student_views` when given (one decode for both); returns the
        seconds it took."""
        start = time.perf_counter()
        n, size = self.meta["images"], teacher.input_shape[0]
        parts = []
        with (student_views.writer(view) if student_views else contextlib.nullcontext()) as px:
            sizes = [size] + ([student_views.size] if px is not None else [])
            for lo in range(0, n, batch_size):
                idx = np.arange(lo, min(n, lo + batch_size))
                rendered = renderer.batches(idx, view, sizes)
                parts.append(teacher.embed_arrays(rendered[0]))
                if px is not None:
                    px[idx] = rendered[1]
        with atomic_path(self.path(view)) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, np.concatenate(parts).astype(np.float32))
        seconds = time.perf_counter() - start
        logger.info(f"Teacher targets of view {view} ({os.path.basename(self.path(view))}): "
                    f"{n} images in {seconds:.0f} s "
                    f"({n / seconds:.0f} img/s)")
        return seconds


class StudentViews:
    """Every image's view rendered once at the student's size, one uint8 (N, S, S, 3) file per
    view (and `plain.npy`, the un-augmented face box, for the BatchNorm statistics). A view is a
    pure function of (seed, image, view), so the files are as valid as the targets beside them;
    the epochs then read pixels instead of decoding and warping every image again."""

    PLAIN = -1

    def __init__(self, folder, images, size):
        self.folder, self.images, self.size = folder, images, size
        os.makedirs(folder, exist_ok=True)

    def path(self, view):
        name = "plain" if view == self.PLAIN else f"view_{view:03d}"
        return os.path.join(self.folder, f"{name}.npy")

    def has(self, view):
        return os.path.exists(self.path(view))

    def load(self, view):
        """The view's pixels, memory-mapped (the page cache keeps them across epochs)."""
        try:
            pixels = np.load(self.path(view), mmap_mode="r")
        except (OSError, ValueError) as e:
            raise FacenetError(f"{self.path(view)} is damaged ({e}); delete it to render it "
                               f"again") from e
        if pixels.shape != (self.images, self.size, self.size, 3) or pixels.dtype != np.uint8:
            raise FacenetError(f"{self.path(view)} holds {pixels.dtype} {pixels.shape}, not "
                               f"uint8 ({self.images}, {self.size}, {self.size}, 3); delete it "
                               f"to render it again")
        return pixels

    @contextlib.contextmanager
    def writer(self, view):
        """Yield a (N, S, S, 3) array to fill; it becomes the view's file only when complete."""
        with atomic_path(self.path(view)) as tmp:
            pixels = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                               shape=(self.images, self.size, self.size, 3))
            yield pixels
            pixels.flush()
            del pixels

    def render(self, view, renderer, batch_size=64):
        """Render the view without the teacher (its targets exist already)."""
        with self.writer(view) as pixels:
            for lo in range(0, self.images, batch_size):
                idx = np.arange(lo, min(self.images, lo + batch_size))
                pixels[idx] = renderer.batch(idx, view, self.size)


def view_cache_fits(images, size, limit_gb):
    """Whether one view of `images` faces at `size` pixels fits the cache limit."""
    return limit_gb > 0 and images * size * size * 3 <= limit_gb * 1e9


def distill_loss(kind, relation_weight=1.0):
    """Loss between the student's and the teacher's unit embeddings (y_true = teacher's).

    "cosine": 1 - cos(s, t) per face; for unit vectors ||s - t||^2 = 2 - 2 cos, so the squared
    distance is the same loss, doubled. "relation": the squared difference of the batch's
    cosine-similarity matrices (the structure between faces, not each face's direction).
    """
    from keras import ops

    if kind not in LOSSES:
        raise SettingError(f"unknown distillation loss {kind!r}; choose one of {list(LOSSES)}")

    def cosine(t, s):
        return 1.0 - ops.mean(ops.sum(s * t, axis=-1))

    def relation(t, s):
        diff = ops.matmul(s, ops.transpose(s)) - ops.matmul(t, ops.transpose(t))
        return ops.mean(ops.square(diff))

    def loss(y_true, y_pred):
        t, s = ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")
        if kind == "cosine":
            return cosine(t, s)
        if kind == "relation":
            return relation(t, s)
        return cosine(t, s) + relation_weight * relation(t, s)

    loss.__name__ = "distill_" + kind.replace("+", "_")
    return loss


def _saved_value(key, value):
    """A setting of a saved run, back from JSON to its type."""
    if key == "augmentation":
        return Augmentation(**{k: tuple(v) if isinstance(v, list) else v
                               for k, v in value.items()})
    return tuple(value) if key == "input_shape" else value


def check_config(cfg):
    from nets.facenet import BACKBONES, check_input_shape

    if cfg.backbone not in BACKBONES:
        raise SettingError(f"unknown backbone {cfg.backbone!r}; choose one of {sorted(BACKBONES)}")
    check_input_shape(tuple(cfg.input_shape), cfg.backbone)
    if cfg.loss not in LOSSES:
        raise SettingError(f"unknown distillation loss {cfg.loss!r}; choose one of {list(LOSSES)}")
    if cfg.views < 1:
        raise SettingError(f"views must be at least 1, got {cfg.views}")
    if cfg.teacher_precision not in TEACHER_PRECISIONS:
        raise SettingError(f"teacher_precision must be one of {TEACHER_PRECISIONS}, got "
                           f"{cfg.teacher_precision!r}")
    if cfg.batch_size < 2:
        raise SettingError(f"batch_size must be at least 2, got {cfg.batch_size}")
    if not 0 < cfg.dropout_keep_prob <= 1:
        raise SettingError(f"dropout_keep_prob must be in (0, 1], got {cfg.dropout_keep_prob}")
    if cfg.epochs < 1:
        raise SettingError(f"epochs must be at least 1, got {cfg.epochs}")
    if cfg.init_weights and not cfg.resume:
        check_start_weights(cfg.init_weights, cfg.backbone)


def check_start_weights(path, backbone):
    """Refuse start weights that are missing or of another backbone before any work is done."""
    from facenet.weights import read_card

    if not os.path.isfile(path):
        raise SettingError(f"start weights {path} not found; give a weights file to continue "
                           f"from, or none to start from scratch")
    card = read_card(path)
    if card and card.get("backbone") not in (None, backbone):
        raise SettingError(f"start weights {path} are a {card['backbone']} (its card), the "
                           f"student is a {backbone}; pass --backbone {card['backbone']}")


def _student_batches(renderer, targets, n, cfg, first_epoch, views=None):
    """Endless (uint8 views, teacher targets) batches, epoch by epoch from `first_epoch`:
    epoch e shows view e mod views of every image once, in an order drawn from (seed, e).
    With `views` (StudentViews) the pixels are read from its files instead of rendered."""
    size, steps = cfg.input_shape[0], n // cfg.batch_size
    epoch = first_epoch
    while True:
        view = epoch % cfg.views
        table = targets.load(view)
        pixels = views.load(view) if views else None
        order = np.random.default_rng([cfg.seed, epoch]).permutation(n)
        for step in range(steps):
            idx = np.sort(order[step * cfg.batch_size:(step + 1) * cfg.batch_size])
            x = pixels[idx] if pixels is not None else renderer.batch(idx, view, size)
            yield x, table[idx]
        epoch += 1


def _plain_batches(renderer, n, cfg, views=None):
    """Un-augmented views (as inference sees faces) for the BatchNorm statistics."""
    rng = np.random.default_rng([cfg.seed, 10**6])
    pixels = views.load(StudentViews.PLAIN) if views else None
    while True:
        idx = np.sort(rng.choice(n, min(n, cfg.batch_size), replace=False))
        x = pixels[idx] if pixels is not None else renderer.batch(idx, -1, cfg.input_shape[0])
        yield x, np.zeros((len(idx), 1), np.float32)


def build_student(cfg, resuming=False):
    """The student network in the run's precision ("auto" resolved for this machine), started
    from `cfg.init_weights` when given (not when resuming: the resume state has its weights)."""
    from nets.facenet import facenet
    from nets.weights_io import load_weights
    from utils.precision import dtype_policy, resolve_precision

    precision = resolve_precision(cfg.precision, cfg.backbone, folded_batchnorm=False)
    with dtype_policy(precision):
        model = facenet(tuple(cfg.input_shape), backbone=cfg.backbone, mode="predict",
                        dropout_keep_prob=cfg.dropout_keep_prob)
    if cfg.init_weights and not resuming:
        report = load_weights(model, cfg.init_weights)
        logger.info(f"Student starts from {report}")
    return model, precision


def _dataset(generator, cfg, target_dim):
    import tensorflow as tf

    from utils.tf_preprocessing import preprocess_tf

    h, w, c = cfg.input_shape
    ds = tf.data.Dataset.from_generator(generator, output_signature=(
        tf.TensorSpec([None, h, w, c], tf.uint8), tf.TensorSpec([None, target_dim], tf.float32)))
    return ds.map(lambda x, y: (preprocess_tf(x, cfg.preprocessing), y)).prefetch(2)


def distill(cfg, evaluate=None, given=None):
    """Run (or resume) a distillation; returns (run folder, history, student model).
    `given`: the settings the user set, which a resume refuses to change (default: those that
    differ from DistillConfig's defaults).

    `evaluate`: model -> accuracy, called after each epoch (default: LFW pairs when found);
    the best epoch by it (else by loss) is kept as best.weights.h5 with its card."""
    import keras

    from facenet import weights as registry
    from facenet.predictor import Facenet
    from facenet.training.callbacks import PreciseBatchNorm
    from facenet.training.checkpoints import (check_writable, disk_errors, find_resume_state,
                                              make_run_dir, remove_partial_files, restore_resume_state,
                                              resume_settings, run_guard, save_resume_state,
                                              save_weights_with_card)
    from facenet.training.loop import add_weight_decay, make_lfw_eval
    from nets.schedules import get_lr_scheduler
    from utils.image import parse_crop

    state_dir = None
    if cfg.resume:
        run_dir, state_dir, state = find_resume_state(cfg.resume)
        cfg.epochs = resume_settings(cfg, state, run_dir, ("resume", "epochs", "verbose",
                                                           "workers", "cache_views_gb",
                                                           "save_dir"),
                                     _saved_value, given)
    check_config(cfg)
    if cfg.resume:
        remove_partial_files(run_dir, state["epoch"])
    paths = list_images(cfg.images)  # before the run folder: a refused folder leaves none
    n = len(paths)
    if n < cfg.batch_size:
        fix = f"use --batch-size {n} (the largest that fits)" if n >= 2 else "add images"
        raise FacenetError(f"{cfg.images} has {n} images, fewer than one batch of "
                           f"{cfg.batch_size}; {fix}")
    if cfg.resume:
        check_writable(run_dir)
    else:
        run_dir = make_run_dir(cfg.save_dir, "distill")
    teacher_path = cfg.teacher or registry.fetch(registry.DEFAULT_MODEL)
    int8 = cfg.teacher_precision == "int8"  # else the float network on Keras
    teacher = Facenet(model_path=teacher_path, align="off", precision="int8" if int8 else "auto",
                      engine="onnx" if int8 else "keras")
    crop = parse_crop(cfg.crop)
    renderer = ViewRenderer(paths, crop, cfg.augmentation, cfg.seed, cfg.workers)
    meta = {"images": n, "images_sha256": _fingerprint(paths),
            "teacher_sha256": sha256_of(teacher_path), "teacher_input": list(teacher.input_shape),
            "seed": cfg.seed, "crop": list(crop) if crop else None,
            "augmentation": augmentation_record(cfg.augmentation)}
    if cfg.teacher_precision != "auto":  # absent for float targets, as before the option
        meta["teacher_precision"] = cfg.teacher_precision
    targets = TeacherTargets(cfg.targets_dir or os.path.join(run_dir, "teacher"), meta)
    size = cfg.input_shape[0]
    views = None
    if view_cache_fits(n, size, cfg.cache_views_gb):
        views = StudentViews(os.path.join(targets.folder, f"views_{size}px"), n, size)
    def render(view):  # the student's pixels alone (the teacher's pass renders them too)
        if views and not views.has(view):
            start = time.perf_counter()
            views.render(view, renderer)
            logger.info(f"Rendered {os.path.basename(views.path(view))} at {size} px in "
                        f"{time.perf_counter() - start:.0f} s")

    def prepare(view):
        """Teacher targets and the student's pixels of `view`, made when an epoch first needs
        them (a run starts training after one view, not all); returns the teacher's seconds."""
        seconds = 0.0
        if not targets.has(view):
            seconds = targets.compute(view, teacher, renderer,
                                      views if views and not views.has(view) else None)
        render(view)
        return seconds

    def ready(view):
        return targets.has(view) and (views is None or views.has(view))

    first = state["epoch"] if state_dir else 0
    teacher_seconds = prepare(first % cfg.views) if first < cfg.epochs else 0.0
    render(StudentViews.PLAIN)

    if not state_dir:
        state = {"epoch": 0, "best": None, "teacher_seconds": teacher_seconds,
                 "history": {"loss": [], "lr": [], "lfw": [], "seconds": []},
                 "config": json.loads(json.dumps(dataclasses.asdict(cfg)))}
    else:
        state["teacher_seconds"] = state.get("teacher_seconds", 0.0) + teacher_seconds
    state["config"]["epochs"] = cfg.epochs
    model, precision = build_student(cfg, resuming=bool(state_dir))
    add_weight_decay(model, cfg.weight_decay)
    model.compile(optimizer=keras.optimizers.Adam(cfg.init_lr),
                  loss=distill_loss(cfg.loss, cfg.relation_weight))
    if state_dir:
        restore_resume_state(model, state_dir)
    dim = targets.load(first % cfg.views).shape[1] if first < cfg.epochs else 128
    steps = n // cfg.batch_size
    bn_ds = _dataset(lambda: _plain_batches(renderer, n, cfg, views), cfg, 1)
    if evaluate is None:
        evaluate = make_lfw_eval(cfg, cfg.preprocessing)
    card = {"backbone": cfg.backbone, "input_shape": list(cfg.input_shape),
            "preprocessing": cfg.preprocessing, "embedding_size": 128, "mode": "predict",
            "distilled_from": {"teacher": os.path.basename(teacher_path),
                               "teacher_sha256": meta["teacher_sha256"], "loss": cfg.loss,
                               "views": cfg.views}}
    if cfg.init_weights:
        card["distilled_from"]["started_from"] = {
            "weights": os.path.basename(cfg.init_weights),
            "sha256": state.setdefault("init_sha256", sha256_of(cfg.init_weights))}
    schedule = get_lr_scheduler("cos", cfg.init_lr, cfg.min_lr, cfg.epochs, no_aug_iter_ratio=0)

    class Recorder(keras.callbacks.Callback):
        """Each epoch: score, keep the best and last weights with their card, then commit the
        resume state (last, so a kill at any moment resumes from a complete epoch)."""

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            loss = float((logs or {}).get("loss", np.nan))
            if not np.isfinite(loss):
                raise FacenetError(f"the distillation loss became {loss} in epoch {epoch + 1}; "
                                   f"lower --init-lr and resume from {run_dir}")
            score = evaluate(self.model) if evaluate else None
            seconds = time.perf_counter() - self.start  # steps, BatchNorm statistics, score
            h = state["history"]
            h["loss"].append(loss)
            h["lr"].append(float(np.asarray(self.model.optimizer.learning_rate)))
            h["lfw"].append(score)
            h["seconds"].append(round(seconds, 1))
            key = score if score is not None else -loss
            with disk_errors(run_dir, epoch + 1):
                save_weights_with_card(self.model, os.path.join(run_dir, "last.weights.h5"),
                                       {**card, "epoch": epoch + 1})
                if state["best"] is None or key > state["best"]:
                    state["best"] = key
                    save_weights_with_card(self.model, os.path.join(run_dir, "best.weights.h5"),
                                           {**card, "epoch": epoch + 1,
                                            "lfw_accuracy": score})
                state["epoch"] = epoch + 1
                save_resume_state(run_dir, self.model, state)
            logger.info(f"Epoch {epoch + 1}/{cfg.epochs}: loss {loss:.4f}"
                        + (f", LFW {100 * score:.2f}%" if score is not None else "")
                        + f" ({seconds:.0f} s)")

    logger.info(f"Distil {cfg.backbone} {cfg.input_shape[0]}px from "
                f"{os.path.basename(teacher_path)} on {n} images, {cfg.views} views, {steps} "
                f"steps of {cfg.batch_size} per epoch, loss {cfg.loss}, {precision}; run folder "
                f"{run_dir}")
    # Ctrl-C: TrainingInterrupted, naming the epoch and the --resume command; the folder
    # stays (it holds the teacher's cached targets)
    callbacks = [keras.callbacks.LearningRateScheduler(schedule),
                 PreciseBatchNorm(bn_ds, cfg.precise_bn_batches), Recorder()]
    with run_guard(run_dir, made_here=False):
        epoch = first
        while epoch < cfg.epochs:  # one fit per stretch of epochs whose views are ready
            state["teacher_seconds"] += prepare(epoch % cfg.views)
            end = epoch + 1
            while end < cfg.epochs and ready(end % cfg.views):
                end += 1
            train_ds = _dataset(functools.partial(_student_batches, renderer, targets, n, cfg,
                                                  epoch, views), cfg, dim)
            stop = keras.callbacks.LambdaCallback(  # Keras still counts epochs of the whole run
                on_epoch_end=lambda e, logs, end=end: setattr(model, "stop_training",
                                                              e + 1 >= end))
            model.fit(train_ds, steps_per_epoch=steps, epochs=cfg.epochs, initial_epoch=epoch,
                      callbacks=callbacks + [stop], verbose=cfg.verbose, shuffle=False)
            epoch = end
    return run_dir, state["history"], model
