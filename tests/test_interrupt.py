"""Ctrl-C during train.py: one line saying which epoch it stopped in and how to resume, exit
status 130, and the last complete epoch intact on disk; the same line for a distillation run."""
import os
import signal
import time

import pytest

from test_crashes import completed_epochs, make_dataset, run_dir_of, start, wait_for
from utils.errors import TrainingInterrupted


@pytest.mark.slow
def test_ctrl_c_mid_epoch_says_how_to_resume_and_keeps_the_last_epoch(tmp_path):
    from nets.facenet import facenet
    from nets.weights_io import load_weights
    from facenet.training.checkpoints import find_resume_state

    annotation = make_dataset(tmp_path / "data")
    save_dir = str(tmp_path / "logs")
    with open(tmp_path / "train.log", "w") as log:
        proc = start(["--annotation-path", annotation, "--save-dir", save_dir, "--epochs", "20",
                      "--input-shape", "32", "32", "3", "--batch-size", "6", "--no-lfw-eval",
                      "--val-split", "0.1", "--precise-bn-batches", "2", "--no-progress"],
                     log)
        try:
            assert wait_for(lambda: run_dir_of(save_dir)
                            and completed_epochs(run_dir_of(save_dir)) >= 1, proc)
            time.sleep(0.3)  # a little into the next epoch
            os.kill(proc.pid, signal.SIGINT)
            proc.wait(timeout=120)  # exits too: a data pipeline left to the exit can hang it
        finally:
            if proc.poll() is None:
                proc.kill()
    output = open(tmp_path / "train.log").read()
    assert proc.returncode == 130, output[-3000:]
    assert "Traceback" not in output
    run_dir = run_dir_of(save_dir)
    done = completed_epochs(run_dir)
    assert output.strip().splitlines()[-1] == (f"interrupted in epoch {done + 1}; resume with "
                                               f"`python train.py --resume {run_dir}`")
    _, _, state = find_resume_state(run_dir)  # the committed state is whole, and names its epoch
    assert state["epoch"] == done == len(state["history"]["loss"]) >= 1
    model = facenet((32, 32, 3), num_classes=10, backbone="mobilenet")
    assert len(load_weights(model, os.path.join(run_dir, "last_epoch_weights.weights.h5"))
               .filled) == 57


def test_ctrl_c_in_a_distillation_run_says_how_to_resume(monkeypatch, capsys, tmp_path):
    import facenet.training.distillation
    import train

    def interrupted(cfg, *args, **kwargs):
        raise TrainingInterrupted(str(tmp_path / "distill_x"), 3)

    monkeypatch.setattr(facenet.training.distillation, "distill", interrupted)
    with pytest.raises(SystemExit) as exit_:
        train.main(["--teacher", "--annotation-path", str(tmp_path)])
    assert exit_.value.code == 130
    assert capsys.readouterr().err.strip() == (f"interrupted in epoch 4; resume with "
                                               f"`python train.py --resume {tmp_path}/distill_x`")


def test_ctrl_c_before_any_epoch_is_saved_says_so(tmp_path):
    from facenet.training.checkpoints import run_guard

    run_dir = tmp_path / "loss_1"
    with pytest.raises(TrainingInterrupted, match="before any epoch was saved") as error:
        with run_guard(str(run_dir), made_here=True):
            run_dir.mkdir()
            raise KeyboardInterrupt
    assert error.value.saved_epochs == 0 and not run_dir.exists()
