"""End-of-epoch work as Keras callbacks: EpochRecorder (checkpoints, resume state, loss history
and plot, LFW accuracy, TensorBoard scalars, early stopping) and PreciseBatchNorm (population
statistics of every BatchNorm for the current weights)."""
import logging
import os

import keras
import numpy as np
from keras import ops

from facenet.training.checkpoints import (disk_errors, prune_epoch_checkpoints,
                                          save_epoch_checkpoint, save_resume_state,
                                          save_weights_with_card, uncompiled, write_history)

logger = logging.getLogger(__name__)


class EpochRecorder(keras.callbacks.Callback):
    """Everything the original's callbacks did at the end of an epoch, resumable.

    Checkpoints hold the weights only; the resume state keeps the optimizer, once.
    keep_checkpoints N > 0: only the newest N per-epoch checkpoints stay, older ones deleted
    once the epoch is saved (0: all stay, as the original). write=False (a non-chief worker of
    a multi-worker run): keep the state and the early stopping decision, in step with the
    chief, but write nothing and skip the LFW check."""

    def __init__(self, run_dir, state, card, save_period=1, patience=10, lfw_eval=None,
                 write=True, keep_checkpoints=0):
        super().__init__()
        self.run_dir, self.state, self.card = run_dir, state, card
        self.save_period, self.patience = save_period, patience
        self.keep_checkpoints = keep_checkpoints
        self.lfw_eval = lfw_eval if write else None
        self.write = write
        self.writer = None

    def on_train_begin(self, logs=None):
        import tensorflow as tf

        if not self.write:
            return
        self.writer = tf.summary.create_file_writer(os.path.join(self.run_dir, "tensorboard",
                                                                 "scalars"))

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        done = epoch + 1
        loss, val_loss = float(logs.get("loss", np.nan)), float(logs.get("val_loss", np.nan))
        lr = float(np.asarray(self.model.optimizer.learning_rate))
        lfw = self.lfw_eval(self.model) if self.lfw_eval else None
        if lfw is not None:
            logger.info(f"Epoch {done}: LFW accuracy {100 * lfw:.2f}%")
        history = self.state["history"]
        for key, value in (("loss", loss), ("val_loss", val_loss), ("lr", lr), ("lfw", lfw)):
            history[key].append(value)
        card = self.card
        if not self.write:
            self._improved(loss, val_loss)
            self.state["epoch"] = done
            self._maybe_stop()
            return
        with disk_errors(self.run_dir, done):
            self._save(done, loss, val_loss, card)
        prune_epoch_checkpoints(self.run_dir, self.keep_checkpoints)
        with disk_errors(self.run_dir, done):
            write_history(self.run_dir, history)
        import tensorflow as tf

        with self.writer.as_default():
            tf.summary.scalar("learning_rate", lr, step=done)
            if lfw is not None:
                tf.summary.scalar("lfw_accuracy", lfw, step=done)
        self.writer.flush()
        self._maybe_stop()

    def _save(self, done, loss, val_loss, card):
        if done % self.save_period == 0:
            # a run without validation has no val_loss: its name says nothing of one
            validated = "" if np.isnan(val_loss) else f"-val_loss{val_loss:.3f}"
            name = f"ep{done:03d}-loss{loss:.3f}{validated}.weights.h5"
            save_epoch_checkpoint(self.model, os.path.join(self.run_dir, name), card)
        save_weights_with_card(self.model, os.path.join(self.run_dir,
                                                        "last_epoch_weights.weights.h5"), card)
        if self._improved(loss, val_loss):
            save_weights_with_card(self.model, os.path.join(self.run_dir,
                                                            "best_epoch_weights.weights.h5"),
                                   {**card, "best_by": self.best_by})
        self.state["epoch"] = done
        save_resume_state(self.run_dir, self.model, self.state)  # the commit point of the epoch

    @property
    def best_by(self):
        """What picks the best epoch: "val_loss", or "loss" in a run without validation."""
        return self.state.get("best_by", "val_loss")

    def _improved(self, loss, val_loss):
        """Whether this epoch is the best so far (kept in the state as best_<measure>); counts
        the epochs since the last that was."""
        value, key = (loss if self.best_by == "loss" else val_loss), f"best_{self.best_by}"
        if value < self.state.get(key, float("inf")):
            self.state[key], self.state["wait"] = value, 0
            return True
        self.state["wait"] += 1
        return False

    def _maybe_stop(self):
        if self.state["wait"] >= self.patience:
            logger.info(f"Early stopping: {self.best_by} has not improved for {self.patience} "
                        f"epochs.")
            self.model.stop_training = True


class ChannelMoments(keras.layers.Layer):
    """The per-channel mean and variance of its input over every axis but the last, as one
    (2, channels) float32 tensor: all of a BatchNorm input that precise BN needs."""

    def __init__(self, **kwargs):
        super().__init__(dtype="float32", **kwargs)  # float32 under a mixed-precision policy

    def call(self, x):
        x = ops.cast(x, "float32")
        mean, variance = ops.moments(x, axes=list(range(len(x.shape) - 1)))
        return ops.stack([mean, variance])


def batchnorm_probe(model):
    """(probe, norms): a model over `model`'s own layers (shared weights), its Dropout layers
    replaced by identities, whose outputs are the ChannelMoments of each BatchNormalization's
    input, in the order of `norms`. The model, its layers and their settings stay as they were."""
    norms, moments = [], []

    def without_dropout(layer):
        if isinstance(layer, keras.layers.Dropout):
            return keras.layers.Identity(name=layer.name)
        return layer  # the layer itself: its weights, not a copy

    def call(layer, *args, **kwargs):
        if isinstance(layer, keras.layers.BatchNormalization):
            norms.append(layer)
            moments.append(ChannelMoments(name=f"{layer.name}_moments")(args[0]))
        return layer(*args, **kwargs)

    # cloned from an uncompiled view: cloning a compiled model compiles the clone from its
    # config, which fails for an unregistered loss (the triplet loss)
    twin = keras.models.clone_model(uncompiled(model), clone_function=without_dropout,
                                    call_function=call)
    if not norms:
        return None, []
    return keras.Model(twin.input, moments, name=f"{model.name}_batchnorm_probe"), norms


class PreciseBatchNorm(keras.callbacks.Callback):
    """Re-estimate every BatchNorm layer's moving mean and variance from `batches` training
    batches before each validation and at each epoch's end ("precise BN").

    Why: the moving averages start at mean 0 / variance 1 and move by 1% (0.5% in the head) per
    step. With the few hundred steps per epoch of a small dataset they still hold mostly their
    initial values after several epochs, and as activations are far smaller than that, the
    inference-mode network maps every face to the same embedding. Population statistics for the
    current weights fix this; on large datasets they change little.

    How: a probe (batchnorm_probe) runs each batch in training mode (every BatchNorm normalises
    by the batch's statistics, as in training) without dropout (as in inference), and returns
    only each BatchNorm input's per-channel mean and variance; those are averaged over the
    batches in float64: the mean of the means, and the mean of variance + mean^2 less the
    squared mean.
    """

    def __init__(self, dataset, batches=20):
        super().__init__()
        self.iterator, self.batches = iter(dataset), batches
        self.probe, self.norms, self.epoch, self.done = None, None, None, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_test_begin(self, logs=None):
        self.recalibrate()

    def on_epoch_end(self, epoch, logs=None):
        self.recalibrate()

    def recalibrate(self):
        if self.batches <= 0 or self.done == self.epoch:
            return
        self.done = self.epoch
        if self.norms is None:
            self.probe, self.norms = batchnorm_probe(self.model)
        if not self.norms:
            return
        means = [0.0] * len(self.norms)
        squares = [0.0] * len(self.norms)
        for _ in range(self.batches):
            x = next(self.iterator)[0]
            for k, moments in enumerate(self.probe(x, training=True)):
                mean, variance = np.asarray(moments, dtype=np.float64)
                means[k] += mean / self.batches
                squares[k] += (variance + mean ** 2) / self.batches
        for layer, mean, square in zip(self.norms, means, squares):
            layer.moving_mean.assign(mean.astype("float32"))
            layer.moving_variance.assign(np.maximum(square - mean ** 2, 0).astype("float32"))
