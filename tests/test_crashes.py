"""A training run killed with SIGKILL, mid-epoch or while writing its checkpoints, resumes from
its last complete epoch; every checkpoint on disk loads; the loss history has no gap or repeat."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT

EPOCHS = 6


def make_dataset(root, people=10, per_person=6):
    from PIL import Image
    import numpy as np

    rng = np.random.default_rng(0)
    lines = []
    for c in range(people):
        (root / f"p{c}").mkdir(parents=True)
        base = rng.integers(0, 255, (8, 8, 3))
        for i in range(per_person):
            img = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype("uint8")
            path = root / f"p{c}" / f"{i}.png"
            Image.fromarray(img).resize((40, 40)).save(path)
            lines.append(f"{c};{path}")
    annotation = root / "cls_train.txt"
    annotation.write_text("\n".join(lines) + "\n")
    return str(annotation)


def _default_sigint():
    """A child of a background job inherits SIGINT ignored, and Python then never raises
    KeyboardInterrupt: give train.py the terminal's default, as a user's shell does."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(args, log):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "train.py", *args], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, preexec_fn=_default_sigint)


def run_dir_of(save_dir):
    runs = [d for d in os.listdir(save_dir) if d.startswith("loss_")] if os.path.isdir(save_dir) else []
    return os.path.join(save_dir, runs[0]) if runs else None


def completed_epochs(run_dir):
    try:
        with open(os.path.join(run_dir, "resume.json")) as f:
            name = json.load(f)["state"]
        return int(name.rsplit("_", 1)[1])
    except (OSError, ValueError, TypeError):
        return 0


def wait_for(condition, proc, timeout=300):
    end = time.time() + timeout
    while time.time() < end:
        if condition():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    return False


@pytest.mark.slow
def test_sigkill_mid_epoch_and_at_epoch_end_then_resume(tmp_path):
    annotation = make_dataset(tmp_path / "data")
    save_dir = str(tmp_path / "logs")
    common = ["--input-shape", "32", "32", "3", "--batch-size", "6", "--no-lfw-eval",
              "--val-split", "0.1", "--precise-bn-batches", "2", "--no-progress"]
    log = open(tmp_path / "train.log", "w")
    first = start(["--annotation-path", annotation, "--save-dir", save_dir, "--epochs",
                   str(EPOCHS), *common], log)
    # 1) mid-epoch: once epoch 1 is complete, wait a little into epoch 2 and kill.
    assert wait_for(lambda: run_dir_of(save_dir) and completed_epochs(run_dir_of(save_dir)) >= 1,
                    first), open(tmp_path / "train.log").read()[-3000:]
    time.sleep(0.3)
    first.send_signal(signal.SIGKILL)
    first.wait()
    run_dir = run_dir_of(save_dir)
    done = completed_epochs(run_dir)
    assert 1 <= done < EPOCHS
    print(f"killed mid-epoch after {done} complete epochs")

    # 2) at an epoch's end: kill as soon as the next epoch's checkpoint starts to appear.
    second = start(["--resume", run_dir, "--epochs", str(EPOCHS), "--no-progress"], log)
    last = os.path.join(run_dir, "last_epoch_weights.weights.h5")
    stamp = os.path.getmtime(last)
    assert wait_for(lambda: any(n.startswith(".tmp-") for n in os.listdir(run_dir))
                    or os.path.getmtime(last) != stamp, second)
    second.send_signal(signal.SIGKILL)
    second.wait()
    done_2 = completed_epochs(run_dir)
    assert done_2 >= done
    print(f"killed at an epoch end after {done_2} complete epochs")

    # 3) resume to the end, with the debug lines too.
    third = subprocess.run([sys.executable, "train.py", "--resume", run_dir, "--epochs",
                            str(EPOCHS), "--no-progress", "--verbose"], cwd=ROOT,
                           capture_output=True, text=True,
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert third.returncode == 0, third.stdout[-2000:] + third.stderr[-2000:]
    assert f"Resuming {run_dir} at epoch {done_2 + 1} of {EPOCHS}" in third.stderr
    assert "Training on one device (the default strategy)." in third.stderr  # a debug line
    assert third.stdout.strip().splitlines()[-1] == f"Done: {run_dir}"
    assert completed_epochs(run_dir) == EPOCHS

    losses = open(os.path.join(run_dir, "epoch_loss.txt")).read().split()
    val_losses = open(os.path.join(run_dir, "epoch_val_loss.txt")).read().split()
    with open(os.path.join(run_dir, "resume", f"epoch_{EPOCHS:03d}", "state.json")) as f:
        history = json.load(f)["history"]
    assert len(losses) == len(val_losses) == len(history["loss"]) == EPOCHS
    assert [float(v) for v in losses] == pytest.approx(history["loss"])
    assert not [n for n in os.listdir(run_dir) if n.startswith(".tmp-")]

    from nets.facenet import facenet
    from nets.weights_io import load_weights

    model = facenet((32, 32, 3), num_classes=10, backbone="mobilenet")
    checkpoints = [n for n in os.listdir(run_dir) if n.endswith(".weights.h5")]
    epochs_saved = sorted(int(n[2:5]) for n in checkpoints if n.startswith("ep"))
    assert epochs_saved[-1] == EPOCHS and len(set(epochs_saved)) == len(epochs_saved)
    for name in checkpoints:  # whole: every layer; per epoch, all but the classifier
        report = load_weights(model, os.path.join(run_dir, name))
        assert len(report.filled) == (56 if name.startswith("ep") else 57), name


def test_resume_removes_what_an_unfinished_epoch_left(tmp_path):
    from facenet.training.checkpoints import remove_partial_files

    names = ["ep001-loss1.000-val_loss1.000.weights.h5", "ep002-loss1.000-val_loss1.000.json",
             "ep003-loss0.900-val_loss0.900.weights.h5", ".tmp-abc.weights.h5",
             "last_epoch_weights.weights.h5"]
    for name in names:
        (tmp_path / name).write_text("x")
    (tmp_path / "resume" / ".tmp-xyz").mkdir(parents=True)
    remove_partial_files(str(tmp_path), completed_epochs=2)
    assert sorted(os.listdir(tmp_path)) == sorted(names[:2] + ["last_epoch_weights.weights.h5",
                                                                "resume"])
    assert os.listdir(tmp_path / "resume") == []
