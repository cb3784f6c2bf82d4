"""What a run keeps on disk, every file written atomically: checkpoints with their model cards,
the loss history and plot, the checks and clean-up of a run folder, and the resume state, which is
written last, so a run killed at any moment resumes from its last complete epoch."""
import contextlib
import gc
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import traceback

import numpy as np

from nets.weights_io import CLASSIFIER_LAYER
from utils.errors import FacenetError, SettingError, TrainingInterrupted
from utils.fileio import atomic_path, card_path_for, sha256_of, write_json_atomic

RESUME_DIR = "resume"
RESUME_POINTER = "resume.json"
# A per-epoch file: ep{epoch:03d}-loss...weights.h5 or its card, ep{epoch:03d}-loss....json
EPOCH_FILE = re.compile(r"ep(\d+)-")

logger = logging.getLogger(__name__)


def uncompiled(model):
    """`model`'s layers (the same weights, no copy) in a model that is not compiled: its
    save_weights writes the weights alone, where Keras 3 writes a compiled model's optimizer
    variables with them (Adam's two moments: three times the size), and a clone of it carries
    no compile settings."""
    import keras

    return keras.Model(model.input, model.outputs, name=model.name)


@contextlib.contextmanager
def disk_errors(run_dir, epoch):
    """Around the writing of epoch `epoch`'s files: a failed write (a full disk) is one
    FacenetError naming the folder and the last complete epoch, which is intact (the resume
    state is committed last). The HDF5 objects of the failed file are freed here, their close
    errors silenced: left to the interpreter's exit they crashed it (a segmentation fault)."""
    try:
        yield
    except OSError as e:
        reason = os.strerror(e.errno) if e.errno else str(e).splitlines()[0][:120]
        traceback.clear_frames(e.__traceback__)
        e.__traceback__ = None
        del e
        hook = sys.unraisablehook
        sys.unraisablehook = lambda *args: None  # h5py: "Can't decrement id ref count"
        try:
            gc.collect()
            _close_hdf5_files_under(run_dir)
            gc.collect()
        finally:
            sys.unraisablehook = hook
        done = saved_epochs(run_dir)
        last = (f"epoch {done} is the last complete one: free space, then resume with "
                f"`python train.py --resume {run_dir}`" if done else
                "no epoch was complete: free space and start again")
        raise FacenetError(f"could not save epoch {epoch} in {run_dir} ({reason}); "
                           f"{last}") from None


def _close_hdf5_files_under(folder):
    """Close what HDF5 still holds open of files under `folder` (a write that failed leaves
    them open, and HDF5 closing them at exit crashed the interpreter)."""
    import h5py

    root = os.path.abspath(folder)
    for fid in h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE):
        try:
            name = os.path.abspath(os.fsdecode(fid.name))
            if not name.startswith(root + os.sep):
                continue
            fid._close_open_objects(h5py.h5f.OBJ_LOCAL | ~h5py.h5f.OBJ_FILE)
            fid._close_open_objects(h5py.h5f.OBJ_LOCAL | h5py.h5f.OBJ_FILE)
        except Exception:  # noqa: BLE001 - closing a failed file fails too; it is let go
            pass


def save_weights_with_card(model, path, card):
    """The weights of `model`, without its optimizer, and the card beside them (None: none)."""
    with atomic_path(path) as tmp:
        uncompiled(model).save_weights(tmp)
    if card is not None:
        write_json_atomic(card_path_for(path), {**card, "weights_file": os.path.basename(path),
                                                "weights_sha256": sha256_of(path)})


def save_epoch_checkpoint(model, path, card):
    """A per-epoch file: the embedding network alone, what prediction, evaluation, export and a
    new run's --model-path load. The classifier (128 x classes: 5.4 MB for CASIA-WebFace's
    10,575 people, of a 160 px MobileNet's 19.1) stays in the best and last files and the resume
    state, the files that continue training with the same classes. A model without one is
    saved whole."""
    from nets.facenet import embedding_model

    if CLASSIFIER_LAYER in {layer.name for layer in model.layers}:
        model = embedding_model(model)
        if card is not None:
            card = {**{k: v for k, v in card.items() if k != "num_classes"}, "mode": "predict"}
    save_weights_with_card(model, path, card)


def save_resume_state(run_dir, model, state):
    """Write weights (with the optimizer's variables: the one copy of them a run keeps) and
    state into a fresh folder, then point to it. The previous epoch's state stays (one more),
    so that a resume state deleted or damaged later still leaves an epoch to resume from."""
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
    kept = sorted((d for d in os.listdir(root) if RESUME_STATE.fullmatch(d)), reverse=True)
    for old in [d for d in os.listdir(root) if d not in kept[:2]]:
        shutil.rmtree(os.path.join(root, old), ignore_errors=True)


RESUME_STATE = re.compile(r"epoch_(\d+)")
RESUME_WEIGHTS = "model.weights.h5"


def state_problem(state_dir):
    """(state, None) when a resume state is whole, else (None, why): its weights file missing
    or not a readable HDF5 file (truncated, damaged), its state.json unreadable."""
    weights = os.path.join(state_dir, RESUME_WEIGHTS)
    try:
        with open(os.path.join(state_dir, "state.json"), encoding="utf-8") as f:
            state = json.load(f)
        int(state["epoch"])
    except FileNotFoundError:
        return None, f"{os.path.join(state_dir, 'state.json')} is missing"
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as e:
        return None, f"{os.path.join(state_dir, 'state.json')} is unreadable ({e})"
    if not os.path.isfile(weights):
        return None, f"{weights} is missing"
    try:
        import h5py

        with h5py.File(weights, "r") as f:
            f.visit(lambda name: None)  # reads every group's index: a cut file fails here
    except (OSError, ValueError, RuntimeError) as e:
        return None, f"{weights} is damaged or truncated ({str(e).splitlines()[0][:120]})"
    return state, None


def find_resume_state(path):
    """(run folder, resume folder, state) of a run directory (or of a checkpoint file inside
    one): the newest epoch whose resume state is whole. A newer one that is missing or damaged
    is named in a warning; none whole is a FacenetError naming the file and what is wrong."""
    run_dir = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    pointer = os.path.join(run_dir, RESUME_POINTER)
    if not os.path.exists(pointer):
        raise FacenetError(f"{path} is not a training run that can be resumed (no {RESUME_POINTER}"
                           f" in {run_dir}); pass the run folder under the save dir")
    try:
        with open(pointer, encoding="utf-8") as f:
            newest = os.path.join(run_dir, json.load(f)["state"])
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as e:
        raise FacenetError(f"the resume pointer {pointer} is unreadable ({e}); resume from a "
                           f"copy of the run, or start it again") from None
    root = os.path.join(run_dir, RESUME_DIR)
    older = sorted((d for d in (os.listdir(root) if os.path.isdir(root) else [])
                    if RESUME_STATE.fullmatch(d) and os.path.join(root, d) != newest),
                   reverse=True)
    problems = []
    for state_dir in [newest] + [os.path.join(root, d) for d in older]:
        state, why = state_problem(state_dir)
        if state is None:
            problems.append(why)
            continue
        if problems:
            logger.warning(f"{problems[0]}: resuming from epoch {state['epoch']}, the last "
                           f"complete epoch whose resume state is whole")
        return run_dir, state_dir, state
    raise FacenetError(f"cannot resume {run_dir}: {problems[0]}, and no earlier epoch's resume "
                       f"state is whole. Start a new run from its weights with --model-path "
                       f"{os.path.join(run_dir, 'last_epoch_weights.weights.h5')}")


def saved_epochs(run_dir):
    """How many epochs of the run in `run_dir` are saved for a resume (0: none yet)."""
    try:
        return find_resume_state(run_dir)[2]["epoch"]
    except FacenetError:
        return 0


def prune_epoch_checkpoints(run_dir, keep):
    """Delete all but the newest `keep` per-epoch checkpoints (ep*.weights.h5) of `run_dir`,
    with their cards; keep 0 deletes none. best_ and last_epoch_weights are never touched.
    Returns the names of the weight files deleted."""
    if keep <= 0:
        return []
    found = sorted((int(match.group(1)), name) for name in os.listdir(run_dir)
                   if name.endswith(".weights.h5") and (match := EPOCH_FILE.match(name)))
    removed = []
    for _, name in found[:-keep]:
        path = os.path.join(run_dir, name)
        for file in (path, card_path_for(path)):
            if os.path.exists(file):
                os.remove(file)
        removed.append(name)
    return removed


def remove_partial_files(run_dir, completed_epochs):
    """Delete what a killed run left of an epoch it did not complete: temporary files, and
    checkpoints of later epochs (the epoch is redone, and its checkpoint written again)."""
    for folder in (run_dir, os.path.join(run_dir, RESUME_DIR)):
        if os.path.isdir(folder):
            for name in os.listdir(folder):
                path = os.path.join(folder, name)
                match = EPOCH_FILE.match(name)
                if name.startswith(".tmp-") or (match and int(match.group(1)) > completed_epochs):
                    shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)


def make_run_dir(save_dir, prefix):
    """A new run folder `save_dir/<prefix>_<time>`, created exclusively: a run owns its folder.
    Two runs started in the same second get `..._2` and so on, instead of writing each other's
    checkpoints, history and resume state."""
    import datetime

    stamp = datetime.datetime.now().strftime("%Y_%m_%d_%H_%M_%S")
    check_writable(save_dir)
    base = os.path.join(save_dir, f"{prefix}_{stamp}")
    for n in range(1, 1000):
        run_dir = base if n == 1 else f"{base}_{n}"
        try:
            os.mkdir(run_dir)
            return run_dir
        except FileExistsError:
            continue
        except OSError as e:
            raise FacenetError(f"cannot make the run folder {run_dir}: {e}. Choose another "
                               f"--save-dir or free some space.") from None
    raise FacenetError(f"{base}: a thousand runs started this second; choose another --save-dir")


def check_writable(folder):
    """Fail at start, not after hours of training, when checkpoints cannot be written."""
    import tempfile

    try:
        os.makedirs(folder, exist_ok=True)
        # a probe of this process's own: two runs starting at once must not remove each
        # other's (a shared name failed one of them as "cannot write")
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-") as f:
            f.write(b"\0" * 1024)
            f.flush()
    except OSError as e:
        raise FacenetError(f"cannot write to the save folder {folder}: {e}. Choose another "
                           f"--save-dir or free some space.") from None


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


def given_settings(cfg):
    """The settings of a config that differ from its defaults: those a caller of the library
    set (a command passes the options it was given instead)."""
    import dataclasses

    default = type(cfg)()
    return {f.name for f in dataclasses.fields(cfg)
            if getattr(cfg, f.name) != getattr(default, f.name)}


def resume_settings(cfg, state, run_dir, keep, convert=None, given=None):
    """Give `cfg` the run's own saved settings, except those in `keep` (how long, how loud);
    `convert(key, value)` turns a saved JSON value back into its type. A setting in `given`
    (default: given_settings(cfg)) that differs from the run's is a SettingError: a resumed
    run silently trained otherwise than asked. Returns the run's total epochs (`cfg.epochs`
    when given, else the saved ones); a finished run is refused."""
    saved = state["config"]
    given = given_settings(cfg) if given is None else set(given)
    differ = []
    for key in sorted(given - set(keep)):
        if key in saved:
            value = convert(key, saved[key]) if convert else saved[key]
            if getattr(cfg, key) != value:
                differ.append(f"{key} {getattr(cfg, key)!r} (the run's: {value!r})")
    if differ:
        raise SettingError(
            f"{run_dir} was trained with other settings than given on resume: "
            f"{'; '.join(differ)}. A resumed run keeps its own settings (only "
            f"{', '.join(k for k in keep if k != 'resume')} may change): leave those options "
            f"out, or start a new run from its weights with --model-path")
    for key, value in saved.items():
        if key not in keep:
            setattr(cfg, key, convert(key, value) if convert else value)
    epochs = cfg.epochs or saved["epochs"]
    if state["epoch"] >= epochs:
        raise FacenetError(f"{run_dir} already finished {state['epoch']} of {epochs} epochs; "
                           f"pass --epochs N to train further")
    logger.info(f"Resuming {run_dir} at epoch {state['epoch'] + 1} of {epochs}.")
    return epochs


def restore_resume_state(model, state_dir):
    """Weights and optimizer variables (iterations, moments) of a compiled model: a Keras 3
    weights file of a compiled model holds both, once the optimizer is built to receive them."""
    from utils.errors import WeightFileError

    model.optimizer.build(model.trainable_variables)
    path = os.path.join(state_dir, RESUME_WEIGHTS)
    try:
        model.load_weights(path)
    except (OSError, ValueError, KeyError) as e:
        raise WeightFileError(f"cannot resume from {path}: {str(e).splitlines()[0][:200]}; "
                              f"it does not fit this run's model (damaged, or another "
                              f"model's)") from None


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
