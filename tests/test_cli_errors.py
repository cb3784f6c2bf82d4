"""Commands catch only the library's own errors: a FacenetError is one line (exit 1), Ctrl-C
one line (exit 130), and anything else, such as a ValueError from deep in NumPy, is a bug that
keeps its traceback. The library's checks of settings raise its own SettingError."""
import importlib

import pytest

from utils.errors import FacenetError, SettingError

# command module, its argv, and the library call it makes (module, name) that is replaced
COMMANDS = [
    ("train", ["--annotation-path", "cls.txt"], ("facenet.training", "train")),
    ("predict", ["a.jpg", "b.jpg", "--out", ""], ("facenet", "Facenet")),
    ("eval_lfw", [], ("eval_lfw", "run")),
    ("facenet.gallery", ["list", "g.db"], ("facenet.gallery", "run")),
    ("facenet.export", ["--format", "savedmodel"], ("facenet", "Facenet")),
    ("facenet.align_dataset", ["raw", "out"], ("facenet.align_dataset", "align_dataset")),
    ("txt_annotation", [], ("txt_annotation", "annotate")),
    ("summary", [], ("nets.facenet", "facenet")),
]


def run_raising(monkeypatch, command, error):
    name, argv, (module, attribute) = command

    def fails(*args, **kwargs):
        raise error

    monkeypatch.setattr(importlib.import_module(module), attribute, fails)
    if name == "predict":  # its photos are opened before the model: a.jpg and b.jpg "are"
        monkeypatch.setattr("utils.image.load_image", lambda path: None)
    return importlib.import_module(name).main(argv)


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_a_bug_keeps_its_traceback(monkeypatch, command):
    with pytest.raises(ValueError, match="operands could not be broadcast"):
        run_raising(monkeypatch, command, ValueError("operands could not be broadcast"))


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_a_library_error_is_one_line(monkeypatch, capsys, command):
    with pytest.raises(SystemExit) as exit_:
        run_raising(monkeypatch, command, FacenetError("cls.txt:3: expected '<class_id>;<path>'"))
    if command[0] == "summary":  # argparse's own error: usage, then the message
        assert exit_.value.code == 2 and "cls.txt:3: expected" in capsys.readouterr().err
    else:
        assert exit_.value.code == "error: cls.txt:3: expected '<class_id>;<path>'"


@pytest.mark.parametrize("command", [c for c in COMMANDS if c[0] != "summary"],
                         ids=[c[0] for c in COMMANDS if c[0] != "summary"])
def test_ctrl_c_is_one_line_and_status_130(monkeypatch, capsys, command):
    try:
        run_raising(monkeypatch, command, KeyboardInterrupt())
    except KeyboardInterrupt:  # caught here, or it would stop the whole pytest run
        pytest.fail("Ctrl-C went through the command as a traceback")
    except SystemExit as exit_:
        assert exit_.code == 130
    assert capsys.readouterr().err.strip().splitlines() == ["interrupted"]


def bad_settings():
    from facenet.preparation import align_mode
    from facenet.training.config import TrainConfig, check_config
    from facenet.training.data import check_batch_size
    from facenet.training.distribute import pick_strategy
    from nets.facenet import check_input_shape
    from nets.schedules import get_lr_scheduler
    from utils.image import parse_crop
    from utils.precision import resolve_precision

    return [
        (lambda: check_config(TrainConfig(init_lr=-1)), "positive"),
        (lambda: check_batch_size(4), "multiple of 3"),
        (lambda: check_input_shape((64, 64, 3), "inception_resnetv1"), "at least 75"),
        (lambda: get_lr_scheduler("linear", 1e-3, 1e-5, 10), "linear"),
        (lambda: parse_crop("0.1,0.2"), "crop"),
        (lambda: align_mode("sometimes"), "align"),
        (lambda: pick_strategy("everywhere"), "strategy"),
        (lambda: resolve_precision("float8", "mobilenet"), "precision"),
    ]


def test_bad_settings_raise_the_librarys_own_error():
    for call, message in bad_settings():
        with pytest.raises(SettingError, match=message) as error:
            call()
        assert isinstance(error.value, FacenetError) and isinstance(error.value, ValueError)


@pytest.mark.parametrize("argv", [["train.py", "--model-path", "no/such.weights.h5"],
                                  ["train.py", "--teacher", "no/such.weights.h5"],
                                  ["-m", "facenet.gallery", "identify", "g.db", "x.jpg", "--model-path",
                                   "no/such.weights.h5"]])
def test_a_mistyped_weight_file_is_refused_with_the_options(argv):
    from conftest import run_script

    r = run_script(argv, timeout=120)
    assert r.returncode == 2 and "no such file: no/such.weights.h5" in r.stderr, r.stderr[-2000:]
