"""Tiny training runs: a failed start leaves no run folder behind; a run whose held-out images
do not fill one batch says that its best epoch is chosen by training loss; per-epoch
checkpoints hold the weights only, and --keep-checkpoints keeps the newest."""
import json
import logging
import os

import numpy as np
import pytest

from facenet.training import TrainConfig, train
from facenet.training.data import validation_plan
from test_crashes import make_dataset
from utils.errors import FacenetError

TINY = dict(input_shape=(32, 32, 3), batch_size=6, lfw_eval=False, precise_bn_batches=1,
            verbose=0)


@pytest.fixture(scope="module")
def annotation(tmp_path_factory):
    """10 people with 6 images each: 60 lines."""
    return make_dataset(tmp_path_factory.mktemp("tiny") / "data")


def lines_with_a_missing_image(annotation, tmp_path):
    path = tmp_path / "missing.txt"
    path.write_text(open(annotation).read() + f"1;{tmp_path / 'gone.png'}\n")
    return str(path)


@pytest.mark.parametrize("problem", ["missing image", "batch above the data", "bad weights"])
def test_a_failed_start_leaves_no_run_folder(annotation, tmp_path, problem):
    save_dir = tmp_path / "logs"
    settings = {"missing image": dict(annotation_path=lines_with_a_missing_image(annotation,
                                                                                 tmp_path)),
                "batch above the data": dict(annotation_path=annotation, batch_size=96),
                # fails once the model is built, after the run folder was made: it goes again
                "bad weights": dict(annotation_path=annotation,
                                    model_path=str(tmp_path / "none.weights.h5"))}[problem]
    cfg = TrainConfig(**{**TINY, **settings, "save_dir": str(save_dir)})
    with pytest.raises(FacenetError):
        train(cfg)
    assert not save_dir.exists() or os.listdir(save_dir) == []


def test_validation_needs_one_full_batch():
    assert validation_plan(200, 96) == (2, "val_loss", None)
    steps, best_by, note = validation_plan(1, 96)
    assert (steps, best_by) == (0, "loss")
    assert "1 held-out images are fewer than one batch of 96" in note
    assert validation_plan(0, 96)[2].startswith("no validation (--val-split is 0)")


@pytest.mark.slow
def test_a_tiny_run_picks_its_best_epoch_by_training_loss(annotation, tmp_path, caplog):
    cfg = TrainConfig(**{**TINY, "annotation_path": annotation, "batch_size": 12, "epochs": 1,
                         "val_split": 0.1, "save_dir": str(tmp_path / "logs")})
    run_dir, history, _ = train(cfg)  # 6 held-out images, batch of 12
    assert any("best_epoch_weights is the epoch of the lowest training loss" in r.getMessage()
               for r in caplog.records if r.levelno == logging.WARNING)
    with open(os.path.join(run_dir, "best_epoch_weights.json")) as f:
        assert json.load(f)["best_by"] == "loss"
    with open(os.path.join(run_dir, "resume", "epoch_001", "state.json")) as f:
        state = json.load(f)
    assert state["best_by"] == "loss" and state["best_loss"] == pytest.approx(history["loss"][0])


@pytest.mark.slow
def test_a_resume_takes_a_new_keep_checkpoints_and_keeps_it(annotation, tmp_path, caplog):
    """Without --keep-checkpoints a resumed run keeps its own limit; one given on resume
    replaces it, for this resume and the next. Extending a finished run says at which
    learning rate the added epoch trains."""
    cfg = TrainConfig(**{**TINY, "annotation_path": annotation, "epochs": 2,
                         "save_dir": str(tmp_path / "logs")})
    run_dir, _, _ = train(cfg)  # keeps all

    def epoch_files():
        return sorted(n[:5] for n in os.listdir(run_dir)
                      if n.startswith("ep") and n.endswith(".weights.h5"))

    assert epoch_files() == ["ep001", "ep002"]
    train(TrainConfig(resume=run_dir, epochs=3, keep_checkpoints=1, verbose=0))
    assert epoch_files() == ["ep003"]
    notes = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
             and r.getMessage().startswith("the run had finished its 2 epochs: epoch 3 trains")]
    assert len(notes) == 1 and "schedule stretched to 3 epochs" in notes[0]
    train(TrainConfig(resume=run_dir, epochs=4, verbose=0))
    assert epoch_files() == ["ep004"]


@pytest.mark.slow
def test_kept_checkpoints_are_the_newest_weights_only_files_and_load(annotation, tmp_path):
    """--keep-checkpoints 2 over 4 epochs, the last 2 after a resume: the newest 2 per-epoch
    files (with their cards), best and last stay; each holds no optimizer, and the predictor
    and --model-path load it. The per-epoch files leave the classifier out."""
    import h5py

    from facenet.predictor import Facenet
    from facenet.training.loop import build_model
    from nets.weights_io import read_weights

    cfg = TrainConfig(**{**TINY, "annotation_path": annotation, "epochs": 2,
                         "keep_checkpoints": 2, "save_dir": str(tmp_path / "logs")})
    run_dir, _, _ = train(cfg)
    run_dir, history, model = train(TrainConfig(resume=run_dir, epochs=4, verbose=0))
    assert len(history["loss"]) == 4
    weights = sorted(n for n in os.listdir(run_dir) if n.endswith(".weights.h5"))
    assert [n[:5] for n in weights] == ["best_", "ep003", "ep004", "last_"]
    for name in weights:
        path = os.path.join(run_dir, name)
        assert os.path.isfile(path[:-len(".weights.h5")] + ".json")
        with h5py.File(path, "r") as f:
            assert "optimizer" not in f and "layers" in f
    last_epoch = os.path.join(run_dir, weights[2])
    predictor = Facenet(model_path=last_epoch, align="off", threshold=1.0)
    embedding = predictor.embed_arrays(np.zeros((2, 32, 32, 3), np.uint8))
    assert embedding.shape == (2, 128) and np.isfinite(embedding).all()
    # a new run from it: every weight but the classifier's (kept by best, last and resume)
    started = build_model(TrainConfig(**{**TINY, "model_path": last_epoch}), 10)
    for layer in model.layers:
        for a, b in zip(started.get_layer(layer.name).get_weights(), layer.get_weights()):
            assert (layer.name == "Logits") != np.array_equal(a, b), layer.name
    assert "Logits" not in read_weights(last_epoch)[0]
    assert "Logits" in read_weights(os.path.join(run_dir, weights[3]))[0]


def test_the_note_on_extending_a_finished_run_gives_the_added_epochs_rates():
    from facenet.training.loop import extension_note
    from nets.schedules import get_lr_scheduler

    schedule = get_lr_scheduler("cos", 1e-3, 1e-5, 5)
    note = extension_note(3, 5, schedule)
    assert note.startswith("the run had finished its 3 epochs: epochs 4-5 train at learning "
                           f"rate {schedule(3):.3g}, {schedule(4):.3g} (its schedule stretched")


def test_too_few_images_names_the_largest_batch_that_fits(annotation, tmp_path):
    from facenet.training.loop import too_few_images

    assert too_few_images(31, 96, 3).endswith("use --batch-size 30 (the largest that fits) "
                                              "or add images")
    assert too_few_images(30, 96, 6).startswith("30 training images are fewer than one batch")
    assert "--batch-size 30 " in too_few_images(30, 96, 6)
    assert too_few_images(2, 96, 3).endswith("add images (a batch is at least 3)")
    cfg = TrainConfig(**{**TINY, "annotation_path": annotation, "batch_size": 96,
                         "save_dir": str(tmp_path / "logs")})
    with pytest.raises(FacenetError, match=r"use --batch-size (\d+) \(the largest") as e:
        train(cfg)
    fits = int(e.value.args[0].split("--batch-size ")[1].split()[0])
    assert fits % 3 == 0 and 54 <= fits <= 60  # 60 lines, 10% held out
