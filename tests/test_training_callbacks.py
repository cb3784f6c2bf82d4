"""End-of-epoch callbacks: early stopping on every worker with only the chief writing
checkpoints and history, and precise BatchNorm statistics."""
import json
import os

import keras
import numpy as np
import pytest

from facenet.training.callbacks import EpochRecorder, PreciseBatchNorm
from facenet.training.checkpoints import find_resume_state
from utils.fileio import sha256_of


def compiled_model():
    x_in = keras.Input((4,))
    x = keras.layers.Dropout(0.5)(x_in)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.BatchNormalization(name="bn2")(keras.layers.Dense(3, name="mid")(x))
    model = keras.Model(x_in, keras.layers.Dense(2, name="out")(x))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    return model


def new_state():
    return {"epoch": 0, "best_val_loss": float("inf"), "wait": 0,
            "history": {"loss": [], "val_loss": [], "lr": [], "lfw": []}}


def recorder_over(model, run_dir, write, patience=2):
    recorder = EpochRecorder(str(run_dir), new_state(), {"backbone": "test"}, save_period=2,
                             patience=patience, write=write)
    recorder.set_model(model)
    recorder.on_train_begin()
    return recorder


VAL_LOSSES = [3.0, 2.0, 2.5, 2.6]  # best at epoch 2, then two epochs without improvement


@pytest.mark.parametrize("write", [True, False])
def test_early_stopping_and_what_each_worker_writes(tmp_path, write):
    model = compiled_model()
    recorder = recorder_over(model, tmp_path / "run", write)
    stopped = []
    for epoch, val_loss in enumerate(VAL_LOSSES):
        recorder.on_epoch_end(epoch, {"loss": 10.0 - epoch, "val_loss": val_loss})
        stopped.append(bool(model.stop_training))
    assert stopped == [False, False, False, True]  # patience 2, on the chief and the others
    state = recorder.state
    assert (state["epoch"], state["best_val_loss"], state["wait"]) == (4, 2.0, 2)
    assert state["history"]["val_loss"] == VAL_LOSSES
    assert state["history"]["lr"] == pytest.approx([1e-3] * 4)
    if not write:  # a non-chief worker: in step, but nothing on disk
        assert not (tmp_path / "run").exists()
        return
    files = sorted(os.listdir(tmp_path / "run"))
    assert [f for f in files if f.endswith(".h5")] == [
        "best_epoch_weights.weights.h5", "ep002-loss9.000-val_loss2.000.weights.h5",
        "ep004-loss7.000-val_loss2.600.weights.h5", "last_epoch_weights.weights.h5"]
    best = tmp_path / "run" / "best_epoch_weights.weights.h5"
    with open(tmp_path / "run" / "best_epoch_weights.json") as f:
        card = json.load(f)
    assert card == {"backbone": "test", "best_by": "val_loss", "weights_file": best.name,
                    "weights_sha256": sha256_of(str(best))}
    assert (tmp_path / "run" / "epoch_val_loss.txt").read_text().split() == [
        str(v) for v in VAL_LOSSES]
    assert find_resume_state(str(tmp_path / "run"))[2]["epoch"] == 4


def test_precise_batchnorm_takes_the_population_statistics_without_dropout():
    model = compiled_model()
    rng = np.random.default_rng(1)
    batches = [(rng.normal(5.0, 2.0, (16, 4)).astype(np.float32), None) for _ in range(6)]
    callback = PreciseBatchNorm(batches, batches=3)
    callback.set_model(model)
    callback.on_epoch_begin(0)
    callback.on_test_begin()  # before validation ...
    callback.on_epoch_end(0)  # ... and not again at the end of the same epoch
    seen = np.concatenate([x for x, _ in batches[:3]]).astype(np.float64)
    bn = model.get_layer("bn")
    np.testing.assert_allclose(bn.moving_mean.numpy(), seen.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), seen.var(axis=0), rtol=1e-4)
    assert [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == [
        0.5]
    callback.on_epoch_begin(1)
    callback.on_epoch_end(1)  # a new epoch: the next three batches
    seen = np.concatenate([x for x, _ in batches[3:]]).astype(np.float64)
    np.testing.assert_allclose(bn.moving_mean.numpy(), seen.mean(axis=0), rtol=1e-5)
