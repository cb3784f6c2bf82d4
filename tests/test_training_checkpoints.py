"""What a run keeps on disk: the resume state round trips weights, optimizer and state; a folder
that is not a run is named; the loss history and its plot."""
import os

import numpy as np
import pytest

from facenet.training.checkpoints import (find_resume_state, restore_resume_state,
                                          save_resume_state, write_history)
from test_training_callbacks import compiled_model, new_state
from utils.errors import FacenetError


def test_resume_state_round_trips_weights_optimizer_and_state(tmp_path):
    model = compiled_model()
    x = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    model.fit(x, x[:, :2], epochs=2, batch_size=4, verbose=0)  # 4 Adam steps: moments, count
    for epoch in (1, 2):
        save_resume_state(str(tmp_path), model, {**new_state(), "epoch": epoch})
    assert os.listdir(tmp_path / "resume") == ["epoch_002"]  # the older one is gone
    run_dir, state_dir, state = find_resume_state(str(tmp_path / "ep002-loss1.weights.h5"))
    assert run_dir == str(tmp_path) and state["epoch"] == 2
    fresh = compiled_model()
    restore_resume_state(fresh, state_dir)
    for a, b in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert int(fresh.optimizer.iterations) == 4
    for a, b in zip(fresh.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_folder_that_is_not_a_run_is_named(tmp_path):
    with pytest.raises(FacenetError, match=f"{tmp_path} is not a training run that can be "
                                           f"resumed .*pass the run folder"):
        find_resume_state(str(tmp_path))


def test_history_files_and_plot(tmp_path):
    write_history(str(tmp_path), {"loss": [3.0, 2.5, 2.0, 1.5, 1.2, 1.1],
                                  "val_loss": [3.1, 2.7, 2.2, 1.9, 1.8, 1.8]})
    assert (tmp_path / "epoch_loss.txt").read_text() == "3.0\n2.5\n2.0\n1.5\n1.2\n1.1\n"
    assert (tmp_path / "epoch_loss.png").read_bytes()[:4] == b"\x89PNG"
