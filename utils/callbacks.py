"""End-of-epoch bookkeeping: checkpoints, resume state, loss history and plot, LFW accuracy,
TensorBoard scalars, early stopping. Every file is written atomically; the resume state is
written last, so a run killed at any moment resumes from its last complete epoch."""
import contextlib
import gc
import json
import os
import shutil
import tempfile
import traceback

import keras
import numpy as np

from utils.errors import FacenetError, TrainingInterrupted
from utils.fileio import atomic_path, card_path_for, sha256_of, write_json_atomic

RESUME_DIR = "resume"
RESUME_POINTER = "resume.json"


def save_weights_with_card(model, path, card):
    with atomic_path(path) as tmp:
        model.save_weights(tmp)
    if card is not None:
        write_json_atomic(card_path_for(path), {**card, "weights_file": os.path.basename(path),
                                                "weights_sha256": sha256_of(path)})


def save_resume_state(run_dir, model, state):
    """Write weights (with the optimizer's variables) and state into a fresh folder, then point
    to it."""
    root = os.path.join(run_dir, RESUME_DIR)
    os.makedirs(root, exist_ok=True)
    name = f"epoch_{state['epoch']:03d}"
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=root)
    try:
        model.save_weights(os.path.join(tmp, "model.weights.h5"))  # holds the optimizer too
        with open(os.path.join(tmp, "state.json"), "w", encoding="utf-8") as f:
            json.dump(state, f, indent=1)
        final = os.path.join(root, name)
        if os.path.exists(final):
            shutil.rmtree(final)
        os.rename(tmp, final)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
    write_json_atomic(os.path.join(run_dir, RESUME_POINTER), {"state": f"{RESUME_DIR}/{name}"})
    for old in os.listdir(root):
        if old != name:
            shutil.rmtree(os.path.join(root, old), ignore_errors=True)


def find_resume_state(path):
    """The resume folder of a run directory (or of a checkpoint file inside one)."""
    run_dir = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    pointer = os.path.join(run_dir, RESUME_POINTER)
    if not os.path.exists(pointer):
        raise FacenetError(f"{path} is not a training run that can be resumed (no {RESUME_POINTER}"
                           f" in {run_dir}); pass the run folder under the save dir")
    try:
        with open(pointer, encoding="utf-8") as f:
            state_dir = os.path.join(run_dir, json.load(f)["state"])
        with open(os.path.join(state_dir, "state.json"), encoding="utf-8") as f:
            return run_dir, state_dir, json.load(f)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise FacenetError(f"the resume state of {run_dir} is unreadable ({e}); resume from a "
                           f"copy of the run, or start it again") from None


def saved_epochs(run_dir):
    """How many epochs of the run in `run_dir` are saved for a resume (0: none yet)."""
    try:
        return find_resume_state(run_dir)[2]["epoch"]
    except FacenetError:
        return 0


@contextlib.contextmanager
def run_guard(run_dir, made_here):
    """Around a run's work once its folder exists. A failure before an epoch is saved removes
    a folder this run made (a failed start leaves no empty run folder behind); Ctrl-C becomes
    TrainingInterrupted, naming the folder and the epochs saved in it."""
    try:
        yield
    except BaseException as e:
        saved = saved_epochs(run_dir)
        if made_here and not saved:
            shutil.rmtree(run_dir, ignore_errors=True)
        if isinstance(e, KeyboardInterrupt) and not isinstance(e, TrainingInterrupted):
            # Free the interrupted fit's data pipeline now: left to the interpreter's exit,
            # its threads (waiting to run Python) can hang the process for minutes.
            traceback.clear_frames(e.__traceback__)
            gc.collect()
            raise TrainingInterrupted(run_dir, saved) from None
        raise


def resume_settings(cfg, state, run_dir, keep, log=print, convert=None):
    """Give `cfg` the run's own saved settings, except those in `keep` (how long, how loud);
    `convert(key, value)` turns a saved JSON value back into its type. Returns the run's total
    epochs (`cfg.epochs` when given, else the saved ones); a finished run is refused."""
    from utils.errors import FacenetError

    saved = state["config"]
    for key, value in saved.items():
        if key not in keep:
            setattr(cfg, key, convert(key, value) if convert else value)
    epochs = cfg.epochs or saved["epochs"]
    if state["epoch"] >= epochs:
        raise FacenetError(f"{run_dir} already finished {state['epoch']} of {epochs} epochs; "
                           f"pass --epochs N to train further")
    log(f"Resuming {run_dir} at epoch {state['epoch'] + 1} of {epochs}.")
    return epochs


def restore_resume_state(model, state_dir):
    """Weights and optimizer variables (iterations, moments) of a compiled model: a Keras 3
    weights file of a compiled model holds both, once the optimizer is built to receive them."""
    model.optimizer.build(model.trainable_variables)
    model.load_weights(os.path.join(state_dir, "model.weights.h5"))


def write_history(run_dir, history):
    for key, name in (("loss", "epoch_loss.txt"), ("val_loss", "epoch_val_loss.txt")):
        with atomic_path(os.path.join(run_dir, name)) as tmp, open(tmp, "w") as f:
            f.writelines(f"{v}\n" for v in history[key])
    plot_losses(run_dir, history)


def plot_losses(run_dir, history):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = range(1, len(history["loss"]) + 1)
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, color in (("loss", "red"), ("val_loss", "coral")):
        values = np.asarray(history[key])
        ax.plot(epochs, values, color, lw=2, label=key.replace("_", " "))
        # The original smoothed with a Savitzky-Golay filter (scipy); this is a centred moving
        # average (window 5, or 15 from 25 epochs), edges padded, so NumPy is enough.
        if len(values) >= 5:
            k = 5 if len(values) < 25 else 15
            smooth = np.convolve(np.pad(values, (k // 2, k // 2), mode="edge"),
                                 np.ones(k) / k, mode="valid")
            ax.plot(epochs, smooth, color, ls="--", lw=1.5, label=f"smooth {key}")
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Loss")
    ax.grid(True)
    ax.legend(loc="upper right")
    with atomic_path(os.path.join(run_dir, "epoch_loss.png")) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


class EpochRecorder(keras.callbacks.Callback):
    """Everything the original's callbacks did at the end of an epoch, resumable.

    write=False (a non-chief worker of a multi-worker run): keep the state and the early
    stopping decision, in step with the chief, but write nothing and skip the LFW check."""

    def __init__(self, run_dir, state, card, save_period=1, patience=10, lfw_eval=None,
                 log=print, write=True):
        super().__init__()
        self.run_dir, self.state, self.card = run_dir, state, card
        self.save_period, self.patience = save_period, patience
        self.lfw_eval, self.log = (lfw_eval if write else None), log
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
            self.log(f"Epoch {done}: LFW accuracy {100 * lfw:.2f}%")
        history = self.state["history"]
        for key, value in (("loss", loss), ("val_loss", val_loss), ("lr", lr), ("lfw", lfw)):
            history[key].append(value)
        card = self.card
        if not self.write:
            self._improved(loss, val_loss)
            self.state["epoch"] = done
            self._maybe_stop()
            return
        if done % self.save_period == 0:
            name = f"ep{done:03d}-loss{loss:.3f}-val_loss{val_loss:.3f}.weights.h5"
            save_weights_with_card(self.model, os.path.join(self.run_dir, name), card)
        save_weights_with_card(self.model, os.path.join(self.run_dir,
                                                        "last_epoch_weights.weights.h5"), card)
        if self._improved(loss, val_loss):
            save_weights_with_card(self.model, os.path.join(self.run_dir,
                                                            "best_epoch_weights.weights.h5"),
                                   {**card, "best_by": self.best_by})
        self.state["epoch"] = done
        save_resume_state(self.run_dir, self.model, self.state)  # the commit point of the epoch
        write_history(self.run_dir, history)
        import tensorflow as tf

        with self.writer.as_default():
            tf.summary.scalar("learning_rate", lr, step=done)
            if lfw is not None:
                tf.summary.scalar("lfw_accuracy", lfw, step=done)
        self.writer.flush()
        self._maybe_stop()

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
            self.log(f"Early stopping: {self.best_by} has not improved for {self.patience} "
                     f"epochs.")
            self.model.stop_training = True


class PreciseBatchNorm(keras.callbacks.Callback):
    """Re-estimate every BatchNorm layer's moving mean and variance from `batches` training
    batches before each validation and at each epoch's end ("precise BN").

    Why: the moving averages start at mean 0 / variance 1 and move by 1% (0.5% in the head) per
    step. With the few hundred steps per epoch of a small dataset they still hold mostly their
    initial values after several epochs, and as activations are far smaller than that, the
    inference-mode network maps every face to the same embedding. Population statistics for the
    current weights fix this; on large datasets they change little.
    """

    def __init__(self, dataset, batches=20):
        super().__init__()
        self.iterator, self.batches = iter(dataset), batches
        self.probe, self.epoch, self.done = None, None, None

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
        norms = [layer for layer in self.model.layers
                 if isinstance(layer, keras.layers.BatchNormalization)]
        if self.probe is None:
            self.probe = keras.Model(self.model.input, [layer.input for layer in norms])
        dropouts = [layer for layer in self.model.layers if isinstance(layer, keras.layers.Dropout)]
        rates = [layer.rate for layer in dropouts]
        for layer in dropouts:  # the statistics of inference: no dropout
            layer.rate = 0.0
        means = [0.0] * len(norms)
        squares = [0.0] * len(norms)
        try:
            for _ in range(self.batches):
                x = next(self.iterator)[0]
                for k, out in enumerate(self.probe(x, training=True)):
                    out = np.asarray(out, dtype=np.float64).reshape(-1, out.shape[-1])
                    means[k] += out.mean(axis=0) / self.batches
                    squares[k] += (out ** 2).mean(axis=0) / self.batches
        finally:
            for layer, rate in zip(dropouts, rates):
                layer.rate = rate
        for layer, mean, square in zip(norms, means, squares):
            layer.moving_mean.assign(mean.astype("float32"))
            layer.moving_variance.assign(np.maximum(square - mean ** 2, 0).astype("float32"))
