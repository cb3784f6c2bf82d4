"""A setting given on resume that differs from the run's own is an error naming it: a resumed
run never trains otherwise than asked without saying so (only how long and how loud change)."""
import dataclasses
import json
import os

import pytest

from utils.errors import SettingError


def fake_run(folder, config, epoch=1):
    """A run folder as far as a resume reads it before building anything."""
    state_dir = folder / "resume" / f"epoch_{epoch:03d}"
    state_dir.mkdir(parents=True)
    (state_dir / "state.json").write_text(json.dumps({"epoch": epoch, "config": config}))
    (folder / "resume.json").write_text(json.dumps({"state": f"resume/epoch_{epoch:03d}"}))
    import h5py

    h5py.File(state_dir / "model.weights.h5", "w").close()  # whole, as far as is read first
    return str(folder)


def train_run(tmp_path, **settings):
    from facenet.training import TrainConfig

    return fake_run(tmp_path / "run", dataclasses.asdict(TrainConfig(epochs=5, **settings)))


@pytest.mark.parametrize("argv,differ", [
    (["--backbone", "inception_resnetv1"], "backbone 'inception_resnetv1' (the run's: "
                                           "'mobilenet')"),
    (["--input-size", "96"], "input_shape (96, 96, 3)"),
    (["--batch-size", "96"], "batch_size 96 (the run's: 12)"),  # the default, given: named
])
def test_the_command_refuses_a_setting_other_than_the_runs(tmp_path, capsys, argv, differ):
    import train

    run = train_run(tmp_path, batch_size=12)
    with pytest.raises(SystemExit) as e:
        train.main(["--resume", run, *argv])
    assert e.value.code != 0 and differ in str(e.value)
    assert "keeps its own settings" in str(e.value)


def test_the_library_refuses_it_too(tmp_path):
    from facenet.training import TrainConfig, train

    run = train_run(tmp_path)
    with pytest.raises(SettingError, match="backbone 'inception_resnetv1'"):
        train(TrainConfig(resume=run, backbone="inception_resnetv1"))


def test_a_distillation_resume_refuses_it(tmp_path):
    import train
    from facenet.training.distillation import DistillConfig

    run = fake_run(tmp_path / "run", dataclasses.asdict(DistillConfig(views=8, epochs=5)))
    for argv, differ in ((["--views", "4"], "views 4"),
                         (["--aug-flip", "0.1"], "augmentation"),
                         (["--annotation-path", "other/"], "images 'other/'")):
        with pytest.raises(SystemExit) as e:
            train.main(["--resume", run, *argv])
        assert differ in str(e.value)


def test_the_same_settings_and_how_long_may_be_given(tmp_path):
    """Given equal to the run's, or among those a resume may change: no refusal (the resume
    then goes on to read the annotation file, which this fake run lacks)."""
    from facenet.training.checkpoints import find_resume_state, resume_settings
    from facenet.training import TrainConfig

    run = train_run(tmp_path, batch_size=12)
    _, _, state = find_resume_state(run)
    cfg = TrainConfig(resume=run, batch_size=12, epochs=9, verbose=0)
    assert resume_settings(cfg, state, run, ("resume", "epochs", "verbose"),
                           given={"batch_size", "epochs", "verbose"}) == 9
    assert os.path.isdir(run)


def test_save_dir_on_resume_is_no_setting_of_the_run(tmp_path):
    """--resume names the run folder; --save-dir beside it (each worker of a cluster passes its
    own) is not refused as a changed setting: the refusal made a multiworker resume hang."""
    import train

    run = train_run(tmp_path, batch_size=12)
    with pytest.raises(SystemExit) as e:  # it goes on to the annotation file this run lacks
        train.main(["--resume", run, "--save-dir", str(tmp_path / "elsewhere")])
    assert "keeps its own settings" not in str(e.value) and "cls_train.txt" in str(e.value)
