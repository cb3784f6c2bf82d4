"""Every script offers the library's names as its choices (the same tuples, so a name added to
the library reaches every script), and the shared options parse the same everywhere."""
import argparse

import pytest

import eval_lfw
import predict
import summary
import train
from facenet import align, align_dataset, export, gallery
from facenet.cli import add_input_size
from facenet.training.distillation import LOSSES
from utils.choices import (BACKBONES, LR_DECAY_TYPES, MODES, OPTIMIZERS, PRECISIONS,
                           PREPROCESSINGS, STRATEGIES)


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


MODEL = {"--backbone": BACKBONES, "--preprocessing": PREPROCESSINGS, "--precision": PRECISIONS}
SCRIPTS = {  # script: (what builds and parses its arguments, {option: the library's names})
    "train.py": (lambda: train.parse_args([]), {
        "--backbone": BACKBONES, "--preprocessing": PREPROCESSINGS, "--optimizer": OPTIMIZERS,
        "--lr-decay-type": LR_DECAY_TYPES, "--strategy": STRATEGIES, "--distill-loss": LOSSES}),
    "predict.py": (lambda: predict.parse_args([]), MODEL),
    "eval_lfw.py": (lambda: eval_lfw.parse_args([]), MODEL),
    "summary.py": (lambda: summary.main([]), {"--backbone": BACKBONES, "--mode": MODES}),
    "facenet/export.py": (lambda: export.main([]), {
        "--backbone": BACKBONES, "--format": export.FORMATS, "--quantize": export.QUANTIZATIONS}),
    "facenet/gallery.py": (lambda: gallery.build_parser().parse_args([]),
                           {"--match": gallery.MATCHES, "--backbone": BACKBONES}),
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
def test_scripts_list_input_size_only(script):
    found = options(parser_of(SCRIPTS[script][0]))
    assert found["--input-size"].dest == found["--input-shape"].dest == "input_shape"
    assert found["--input-shape"].help == argparse.SUPPRESS
