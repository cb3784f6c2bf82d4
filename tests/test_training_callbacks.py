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


def test_a_run_without_validation_names_its_checkpoints_without_val_loss(tmp_path):
    recorder = recorder_over(compiled_model(), tmp_path / "run", write=True)
    recorder.state["best_by"] = "loss"
    for epoch in range(2):
        recorder.on_epoch_end(epoch, {"loss": 5.0 - epoch})  # no val_loss in the logs
    names = [f for f in os.listdir(tmp_path / "run") if f.startswith("ep0")]
    assert sorted(names) == ["ep002-loss4.000.json", "ep002-loss4.000.weights.h5"]


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


def probed_model():
    """A small network with several BatchNorms (on 4-d and 2-d inputs, with and without scale)
    and a Dropout between them, its weights and starting statistics away from the defaults."""
    x_in = keras.Input((5, 5, 3))
    x = keras.layers.Conv2D(4, 1, name="conv")(x_in)
    x = keras.layers.BatchNormalization(name="bn_conv")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(0.5, name="drop")(x)
    x = keras.layers.Dense(3, name="dense")(x)
    x = keras.layers.BatchNormalization(name="bn_dense", scale=False, epsilon=1e-3)(x)
    x = keras.layers.BatchNormalization(name="bn_head", momentum=0.995)(
        keras.layers.Dense(2, name="head")(x))
    model = keras.Model(x_in, x)
    rng = np.random.default_rng(2)
    for variable in model.weights:
        variable.assign(rng.uniform(0.5, 1.5, variable.shape).astype("float32"))
    return model


def reference_moments(model, batches):
    """Each BatchNorm input's mean and variance over all `batches`, in float64 NumPy: the
    network run in training mode (batch statistics) with no dropout."""
    w = {v.path: np.asarray(v, dtype=np.float64) for v in model.weights}

    def norm(x, name, eps):
        axes = tuple(range(x.ndim - 1))
        scaled = (x - x.mean(axes)) / np.sqrt(x.var(axes) + eps)
        return scaled * w.get(f"{name}/gamma", 1.0) + w[f"{name}/beta"]

    seen = {"bn_conv": [], "bn_dense": [], "bn_head": []}
    for x in batches:
        x = np.asarray(x, np.float64) @ w["conv/kernel"][0, 0] + w["conv/bias"]
        seen["bn_conv"].append(x.reshape(-1, 4))
        x = np.maximum(norm(x, "bn_conv", 1e-3), 0).mean(axis=(1, 2))
        x = x @ w["dense/kernel"] + w["dense/bias"]  # the Dropout: off
        seen["bn_dense"].append(x)
        x = norm(x, "bn_dense", 1e-3) @ w["head/kernel"] + w["head/bias"]
        seen["bn_head"].append(x)
    return {name: (np.concatenate(v).mean(0), np.concatenate(v).var(0))
            for name, v in seen.items()}


def unregistered_loss(y_true, y_pred):
    """A loss Keras cannot rebuild from a config, as the triplet loss."""
    return keras.ops.mean(keras.ops.square(y_pred))


def test_precise_batchnorm_matches_float64_in_the_graph_and_leaves_the_model_alone():
    model = probed_model()
    model.compile(optimizer="adam", loss=unregistered_loss)  # as training compiles it
    config = json.dumps(model.get_config(), sort_keys=True, default=str)
    layers = list(model.layers)
    dropout = model.get_layer("drop")
    rng = np.random.default_rng(3)
    batches = [rng.normal(5.0, 2.0, (8, 5, 5, 3)).astype(np.float32) for _ in range(4)]
    expected = reference_moments(model, batches)
    rates_seen = []

    def data():  # notes the Dropout's rate while the callback runs
        for x in batches:
            rates_seen.append(dropout.rate)
            yield x, None

    callback = PreciseBatchNorm(data(), batches=4)
    callback.set_model(model)
    callback.on_epoch_begin(0)
    callback.on_epoch_end(0)
    # float32 in the graph against float64: within 1e-5 relative (measured: 2e-7)
    for name, (mean, variance) in expected.items():
        bn = model.get_layer(name)
        np.testing.assert_allclose(np.asarray(bn.moving_mean), mean, rtol=1e-5)
        np.testing.assert_allclose(np.asarray(bn.moving_variance), variance, rtol=1e-5)
    assert rates_seen == [0.5] * 4  # dropout was off in the probe, not on the model's layer
    assert json.dumps(model.get_config(), sort_keys=True, default=str) == config
    assert list(model.layers) == layers and model.get_layer("drop") is dropout
    assert dropout.rate == 0.5 and callback.probe.get_layer("dense") is model.get_layer("dense")


def test_a_full_disk_while_saving_is_one_error_and_the_last_epoch_stays(tmp_path, monkeypatch):
    """ENOSPC in the middle of writing an HDF5 checkpoint (simulated at h5py's dataset
    writes): OSError, h5py's "Can't decrement id ref count", then a segmentation fault before;
    now one FacenetError naming the folder and the last complete epoch, which still loads."""
    import errno

    import h5py

    from facenet.training.checkpoints import restore_resume_state
    from utils.errors import FacenetError

    model = compiled_model()
    recorder = recorder_over(model, tmp_path / "run", write=True)
    recorder.on_epoch_end(0, {"loss": 3.0, "val_loss": 3.0})
    written = h5py.Group.create_dataset

    def create_dataset(self, *args, **kwargs):
        if len(self.file) > 0:  # something of the file was written: the disk fills up
            raise OSError(errno.ENOSPC, "Can't synchronously write data")
        return written(self, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", create_dataset)
    with pytest.raises(FacenetError, match=r"could not save epoch 2 in .*run \(No space left "
                                           r"on device\); epoch 1 is the last complete one"):
        recorder.on_epoch_end(1, {"loss": 2.0, "val_loss": 2.0})
    monkeypatch.undo()
    _, state_dir, state = find_resume_state(str(tmp_path / "run"))
    assert state["epoch"] == 1
    restore_resume_state(compiled_model(), state_dir)
    assert not [f for f in os.listdir(tmp_path / "run") if f.startswith(".tmp")]
