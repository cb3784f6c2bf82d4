"""Every script offers the library's names as its choices (the same tuples, so a name added to
the library reaches every script), the shared options parse the same everywhere, and
--quiet / --verbose set up logging the same way for every command."""
import argparse
import logging

import pytest

import eval_lfw
import predict
import summary
import train
from facenet import align, align_dataset, export, gallery
from facenet import cli
from facenet.cli import add_input_size, add_logging_options, configure_logging
from facenet.training.distillation import LOSSES
from utils.choices import (BACKBONES, ENGINES, LR_DECAY_TYPES, MIX_MODES, MODES, OPTIMIZERS,
                           PRECISIONS, PREPROCESSINGS, STRATEGIES, TEACHER_PRECISIONS,
                           TRAINING_PRECISIONS)


class _Parsed(Exception):
    """Raised instead of parsing: carries the parser a script built."""


def parser_of(build):
    """The parser that `build()` makes and then parses with (nothing is parsed or run)."""
    def capture(parser, *args, **kwargs):
        raise _Parsed(parser)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(argparse.ArgumentParser, "parse_args", capture)
        with pytest.raises(_Parsed) as caught:
            build()
    return caught.value.args[0]


def options(parser):
    """{option string: action} of a parser and of its sub-commands."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found.update(options(sub))
        found.update(dict.fromkeys(action.option_strings, action))
    return found


MODEL = {"--backbone": BACKBONES, "--preprocessing": PREPROCESSINGS, "--precision": PRECISIONS,
         "--engine": ENGINES}
SCRIPTS = {  # script: (what builds and parses its arguments, {option: the library's names})
    "train.py": (lambda: train.parse_args([]), {
        "--backbone": BACKBONES, "--preprocessing": PREPROCESSINGS, "--optimizer": OPTIMIZERS,
        "--lr-decay-type": LR_DECAY_TYPES, "--strategy": STRATEGIES, "--distill-loss": LOSSES,
        "--precision": TRAINING_PRECISIONS, "--aug-mix-mode": MIX_MODES,
        "--teacher-precision": TEACHER_PRECISIONS}),
    "predict.py": (lambda: predict.parse_args([]), MODEL),
    "eval_lfw.py": (lambda: eval_lfw.parse_args([]), MODEL),
    "summary.py": (lambda: summary.main([]), {"--backbone": BACKBONES, "--mode": MODES}),
    "facenet/export.py": (lambda: export.main([]), {
        "--backbone": BACKBONES, "--format": export.FORMATS, "--quantize": export.QUANTIZATIONS}),
    "facenet/gallery.py": (lambda: gallery.build_parser().parse_args([]),
                           {"--match": gallery.MATCHES, "--backbone": BACKBONES,
                            "--engine": ENGINES, "--precision": PRECISIONS}),
    "facenet/align_dataset.py": (lambda: align_dataset.main([]), {
        "--method": align.METHODS, "--choice": align.CHOICES,
        "--format": align_dataset.CROP_FORMATS}),
}


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_choice_is_the_librarys_own_tuple(script):
    build, expected = SCRIPTS[script]
    found = {o: a for o, a in options(parser_of(build)).items() if a.choices is not None}
    assert sorted(found) == sorted(expected)  # no option left with a list of its own
    for option, names in expected.items():
        assert found[option].choices is names, f"{script} {option}"
        assert found[option].default in (None, *names), f"{script} {option}"


def parse_size(*argv):
    p = argparse.ArgumentParser()
    add_input_size(p)
    return p.parse_args(list(argv)).input_shape


def test_input_size_takes_a_side_or_two_and_the_old_input_shape_still_works():
    assert parse_size() == (160, 160, 3)
    assert parse_size("--input-size", "96") == (96, 96, 3)
    assert parse_size("--input-size", "96", "112") == (96, 112, 3)
    assert parse_size("--input-shape", "64", "48", "3") == (64, 48, 3)


def test_input_size_with_three_numbers_is_one_clear_error(capsys):
    with pytest.raises(SystemExit):
        parse_size("--input-size", "64", "64", "3")
    assert "--input-size takes SIDE or H W, got 3 numbers: 64 64 3" in capsys.readouterr().err


@pytest.mark.parametrize("script", ["train.py", "summary.py"])
def test_scripts_list_input_size_and_its_old_spelling(script):
    parser = parser_of(SCRIPTS[script][0])
    found = options(parser)
    assert found["--input-size"].dest == found["--input-shape"].dest == "input_shape"
    assert "--input-shape H W C" in parser.format_help()  # it works: --help says so


def logging_args(*argv):
    p = argparse.ArgumentParser()
    add_logging_options(p)
    return p.parse_args(list(argv))


@pytest.fixture()
def tensorflow_calls(monkeypatch):
    """What configure_logging asks of utils.quiet, recorded instead of done."""
    calls = []
    monkeypatch.setattr(cli, "quiet_tensorflow", lambda verbose: calls.append(verbose))
    monkeypatch.delenv("FACENET_VERBOSE", raising=False)
    return calls


def say_everything():
    for name in ("facenet.predictor", "utils.image", "__main__", "PIL.PngImagePlugin"):
        log = logging.getLogger(name)
        log.debug(f"{name} debug")
        log.info(f"{name} info")
        log.warning(f"{name} warning")
    logging.getLogger("nets.facenet").error("nets.facenet error")


def test_default_shows_the_projects_info_lines_plainly_on_stderr(tensorflow_calls, capsys):
    assert configure_logging(logging_args()) == logging.INFO
    say_everything()
    out, err = capsys.readouterr()
    assert out == "" and err.splitlines() == [
        "facenet.predictor info", "warning: facenet.predictor warning",
        "utils.image info", "warning: utils.image warning",
        "__main__ info", "warning: __main__ warning",
        "warning: PIL.PngImagePlugin warning",  # another library's: its warnings only
        "error: nets.facenet error"]
    assert tensorflow_calls == [False]  # TensorFlow's chatter off the terminal


def test_quiet_keeps_warnings_and_errors_only(tensorflow_calls, capsys):
    assert configure_logging(logging_args("--quiet")) == logging.WARNING
    say_everything()
    err = capsys.readouterr().err.splitlines()
    assert err == ["warning: facenet.predictor warning", "warning: utils.image warning",
                   "warning: __main__ warning", "warning: PIL.PngImagePlugin warning",
                   "error: nets.facenet error"]
    assert tensorflow_calls == [False]


def test_verbose_adds_debug_lines_and_leaves_tensorflow_loud(tensorflow_calls, capsys):
    assert configure_logging(logging_args("--verbose")) == logging.DEBUG
    say_everything()
    err = capsys.readouterr().err.splitlines()
    assert err[:3] == ["facenet.predictor debug", "facenet.predictor info",
                       "warning: facenet.predictor warning"]
    assert "__main__ debug" in err and "utils.image debug" in err
    assert not any(line.startswith("PIL.PngImagePlugin") for line in err)  # no other debug
    assert tensorflow_calls == [True]


def test_the_environment_asks_for_verbose_and_the_command_line_wins(tensorflow_calls,
                                                                     monkeypatch):
    monkeypatch.setenv("FACENET_VERBOSE", "1")
    assert configure_logging(logging_args()) == logging.DEBUG
    assert configure_logging(logging_args("--quiet")) == logging.WARNING
    assert tensorflow_calls == [True, False]


def test_a_second_configuration_replaces_the_first(tensorflow_calls, capsys):
    configure_logging(logging_args())
    configure_logging(logging_args("--quiet"))
    ours = [h for h in logging.getLogger().handlers if isinstance(h, cli.StderrHandler)]
    assert len(ours) == 1
    logging.getLogger("facenet.x").warning("once")
    assert capsys.readouterr().err == "warning: once\n"


def test_quiet_and_verbose_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        logging_args("--quiet", "--verbose")
    assert "not allowed with argument" in capsys.readouterr().err


COMMANDS = {  # every command line of the project: what builds and parses its arguments
    **{script: build for script, (build, _) in SCRIPTS.items()},
    "txt_annotation.py": lambda: __import__("txt_annotation").main([]),
    "facenet/weights.py": lambda: __import__("facenet.weights").weights.main([]),
}


@pytest.mark.parametrize("script", COMMANDS)
def test_every_command_takes_quiet_and_verbose(script):
    found = options(parser_of(COMMANDS[script]))
    assert {"--quiet", "--verbose"} <= set(found)
    assert found["--quiet"].dest == "quiet" and found["--verbose"].dest == "verbose"


def test_a_sub_command_takes_them_before_or_after_its_name():
    parser = gallery.build_parser()
    for argv in (["--quiet", "list", "g.db"], ["list", "g.db", "--quiet"]):
        args = parser.parse_args(argv)
        assert (args.quiet, args.verbose) == (True, False)
    args = parser.parse_args(["remove", "g.db", "ann", "--verbose"])
    assert (args.quiet, args.verbose) == (False, True)
