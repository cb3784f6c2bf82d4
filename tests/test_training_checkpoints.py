"""What a run keeps on disk: checkpoints of the weights alone (per epoch, the embedding network),
the newest N of them when asked;
the resume state round trips weights, optimizer and state; a folder that is not a run is named;
the loss history and its plot."""
import json
import os

import numpy as np
import pytest

from facenet.training.checkpoints import (find_resume_state, prune_epoch_checkpoints,
                                          restore_resume_state, save_epoch_checkpoint,
                                          save_resume_state, save_weights_with_card, uncompiled,
                                          write_history)
from test_training_callbacks import compiled_model, new_state
from utils.errors import FacenetError


def test_resume_state_round_trips_weights_optimizer_and_state(tmp_path):
    model = compiled_model()
    x = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    model.fit(x, x[:, :2], epochs=2, batch_size=4, verbose=0)  # 4 Adam steps: moments, count
    for epoch in (1, 2, 3):
        save_resume_state(str(tmp_path), model, {**new_state(), "epoch": epoch})
    # the newest and the one before it (in case the newest is damaged later)
    assert sorted(os.listdir(tmp_path / "resume")) == ["epoch_002", "epoch_003"]
    run_dir, state_dir, state = find_resume_state(str(tmp_path / "ep003-loss1.weights.h5"))
    assert run_dir == str(tmp_path) and state["epoch"] == 3
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


def h5_groups(path):
    """The top-level groups of a Keras weights file ('layers', 'optimizer', ...)."""
    import h5py

    with h5py.File(path, "r") as f:
        return set(f.keys())


def test_checkpoints_hold_the_weights_and_the_resume_state_the_optimizer(tmp_path):
    model = compiled_model()
    x = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    model.fit(x, x[:, :2], epochs=1, batch_size=4, verbose=0)
    path = str(tmp_path / "ep001-loss1.000-val_loss1.000.weights.h5")
    save_weights_with_card(model, path, {"backbone": "test"})
    assert "optimizer" not in h5_groups(path) and "layers" in h5_groups(path)
    save_resume_state(str(tmp_path), model, {**new_state(), "epoch": 1})
    assert "optimizer" in h5_groups(str(tmp_path / "resume" / "epoch_001" / "model.weights.h5"))
    fresh = compiled_model()
    uncompiled(fresh).load_weights(path)
    for a, b in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert os.path.isfile(tmp_path / "ep001-loss1.000-val_loss1.000.json")


def test_only_the_newest_epoch_checkpoints_stay(tmp_path):
    names = [f"ep{e:03d}-loss1.000-val_loss1.000" for e in (1, 2, 3, 10)]
    others = ["best_epoch_weights", "last_epoch_weights"]
    for name in names + others:
        (tmp_path / f"{name}.weights.h5").write_text("x")
        (tmp_path / f"{name}.json").write_text("{}")
    assert prune_epoch_checkpoints(str(tmp_path), 0) == []  # 0: keep all
    assert len(os.listdir(tmp_path)) == 12
    assert prune_epoch_checkpoints(str(tmp_path), 2) == [f"{n}.weights.h5" for n in names[:2]]
    assert sorted(os.listdir(tmp_path)) == sorted(
        f"{n}{ext}" for n in names[2:] + others for ext in (".weights.h5", ".json"))


def test_a_mobilenet_checkpoint_at_160_px_is_at_most_15_mb(tmp_path):
    """MobileNet at 160 px trained on CASIA-WebFace's 10,575 people: the per-epoch file holds the
    embedding network, about 13.7 MB (with the classifier 19.1 MB, with Adam's moments too
    about 57 MB), and a predictor loads it whole; a new run starts from it without the
    classifier."""
    import keras

    from nets.facenet import embedding_model, facenet
    from nets.losses import triplet_loss
    from nets.weights_io import load_weights

    model = facenet((160, 160, 3), num_classes=10575, backbone="mobilenet", mode="train")
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss={"Softmax": "categorical_crossentropy", "Embedding": triplet_loss()})
    model.optimizer.build(model.trainable_variables)
    path = str(tmp_path / "ep001-loss1.000-val_loss1.000.weights.h5")
    save_epoch_checkpoint(model, path, {"backbone": "mobilenet", "mode": "train",
                                        "num_classes": 10575})
    assert os.path.getsize(path) <= 15e6
    card = json.loads((tmp_path / "ep001-loss1.000-val_loss1.000.json").read_text())
    assert card["mode"] == "predict" and "num_classes" not in card
    predictor = facenet((160, 160, 3), backbone="mobilenet", mode="predict")
    load_weights(predictor, path)  # strict: every layer of the embedding network
    x = np.random.default_rng(0).random((2, 160, 160, 3)).astype(np.float32)
    np.testing.assert_array_equal(predictor.predict(x, verbose=0),
                                  embedding_model(model).predict(x, verbose=0))
    report = load_weights(facenet((160, 160, 3), num_classes=7, backbone="mobilenet"), path,
                          partial=True)
    assert [name for name, _ in report.skipped] == ["Logits"]


@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_a_damaged_resume_state_is_named_and_the_epoch_before_used(tmp_path, damage, caplog):
    """--resume with the newest epoch's state deleted or cut short: h5py tracebacks before;
    now the file is named, and the run resumes from the last epoch whose state is whole."""
    model = compiled_model()
    for epoch in (1, 2):
        save_resume_state(str(tmp_path), model, {**new_state(), "epoch": epoch})
    weights = tmp_path / "resume" / "epoch_002" / "model.weights.h5"
    if damage == "delete":
        weights.unlink()
    else:
        weights.write_bytes(weights.read_bytes()[:2000])
    run_dir, state_dir, state = find_resume_state(str(tmp_path))
    assert state["epoch"] == 1 and state_dir.endswith("epoch_001")
    assert str(weights) in caplog.text and "resuming from epoch 1" in caplog.text
    restore_resume_state(compiled_model(), state_dir)  # the earlier state loads
    (tmp_path / "resume" / "epoch_001" / "model.weights.h5").write_bytes(b"cut")
    with pytest.raises(FacenetError, match=f"cannot resume .*{weights}.* no earlier epoch"):
        find_resume_state(str(tmp_path))
