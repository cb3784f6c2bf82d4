"""Command-line options several scripts share, with the library's names (utils/choices.py) as
their choices: a script cannot offer a backbone the library lacks, nor miss one it gains; and
the one way every command sets up logging (--quiet, --verbose).
Imports no TensorFlow, so `--help` stays fast."""
import argparse
import logging
import os
import sys

from utils.choices import BACKBONES, ENGINES, PRECISIONS, PREPROCESSINGS
from utils.quiet import quiet_tensorflow, verbose_requested

# The loggers whose info and debug lines a command shows: the library's packages, and the
# command itself (a script or `python -m` module runs as __main__). Others show warnings only.
PROJECT_LOGGERS = ("facenet", "nets", "utils", "benchmarks", "__main__")

MODEL_PATH_HELP = ("weights (.weights.h5, .keras or legacy .h5); default: the pretrained model "
                   "of --backbone (Inception-ResNet-V1, fetched on first use; MobileNet, "
                   "shipped)")
BACKBONE_HELP = ("network: with --model-path, the file's (default: from its card); without "
                 "it, which pretrained model (default: inception_resnetv1)")
PRECISION_HELP = ("float32, bfloat16 (Keras; mixed: float32 weights), int8 (ONNX Runtime), or "
                  "auto: chosen with the engine for this machine (default: %(default)s)")
ENGINE_HELP = ("what runs the network: keras, onnx (ONNX Runtime; its model is made from the "
               "weights once and cached beside them), or auto: int8 ONNX Runtime on a CPU with "
               "VNNI or AMX, float32 ONNX Runtime on others, Keras without onnxruntime or on "
               "a GPU (default: %(default)s)")


def existing_file(path):
    """argparse type of an input file: a mistyped path is refused with the options, before any
    model loads (and before a word about its missing card)."""
    if not os.path.isfile(path):
        raise argparse.ArgumentTypeError(f"no such file: {path}" + (
            " (a folder)" if os.path.isdir(path) else ""))
    return path


def existing_file_or_none(path):
    """existing_file, with '' meaning none (train.py's --model-path '' and --teacher)."""
    return existing_file(path) if path else path


def add_model_options(p, precision=None, preprocessing=True, engine=None):
    """--model-path, --backbone and --preprocessing (unless preprocessing=False), each None by
    default so the model's card decides; --precision and --engine when given their default."""
    p.add_argument("--model-path", default=None, type=existing_file, help=MODEL_PATH_HELP)
    p.add_argument("--backbone", default=None, choices=BACKBONES, help=BACKBONE_HELP)
    if preprocessing:
        p.add_argument("--preprocessing", default=None, choices=PREPROCESSINGS,
                       help="pixel transform (default: from the model card, else scale01)")
    if precision:
        p.add_argument("--precision", default=precision, choices=PRECISIONS, help=PRECISION_HELP)
    if engine:
        add_engine_option(p, engine)


def add_engine_option(p, default="auto"):
    p.add_argument("--engine", default=default, choices=ENGINES, help=ENGINE_HELP)


class _InputSize(argparse.Action):
    """SIDE or H W (--input-size), or H W C (--input-shape) -> the tuple (H, W, C)."""

    def __call__(self, parser, namespace, values, option_string=None):
        if option_string == "--input-size":
            if len(values) > 2:
                parser.error(f"--input-size takes SIDE or H W, got {len(values)} numbers: "
                             f"{' '.join(map(str, values))}")
            values = [values[0], values[-1], 3]
        setattr(namespace, self.dest, tuple(values))


def add_input_size(p, default=(160, 160, 3)):
    """--input-size SIDE (or H W), stored as `input_shape` (H, W, 3). train.py's older spelling
    --input-shape H W C still works, so that old commands run unchanged."""
    h, w = default[:2]
    shown = h if h == w else f"{h} {w}"
    p.add_argument("--input-size", dest="input_shape", nargs="+", type=int, action=_InputSize,
                   default=tuple(default), metavar="SIDE",
                   help=f"input side in pixels, or H W (default: {shown})")
    p.add_argument("--input-shape", dest="input_shape", nargs=3, type=int, action=_InputSize,
                   default=argparse.SUPPRESS, metavar=("H", "W", "C"),
                   help="the original's spelling of --input-size: H W C, C being 3")


def add_logging_options(p, sub_command=False):
    """--quiet and --verbose. On a sub-command's parser (sub_command=True) they are left unset
    unless given, so that they may come before or after the sub-command's name."""
    default = argparse.SUPPRESS if sub_command else False
    group = p.add_mutually_exclusive_group()
    group.add_argument("--quiet", action="store_true", default=default,
                       help="show warnings and errors only, not what the command is doing")
    group.add_argument("--verbose", action="store_true", default=default,
                       help="also show debug messages and TensorFlow's own start-up and log "
                            "lines (as does FACENET_VERBOSE=1)")


class PlainFormatter(logging.Formatter):
    """A message as the user reads it: info and debug lines bare, the others prefixed
    "warning: " or "error: " (no logger names, no "INFO:root:")."""

    def format(self, record):
        text = super().format(record)
        if record.levelno >= logging.ERROR:
            return "error: " + text
        if record.levelno >= logging.WARNING:
            return "warning: " + text
        return text


class StderrHandler(logging.StreamHandler):
    """Writes to sys.stderr as it is when a message comes, so that a replaced stderr (a
    redirection inside the program, a test's capture) receives it."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # logging.StreamHandler sets it; the property above decides
        pass


def logging_level(args):
    """DEBUG for --verbose, WARNING for --quiet; else DEBUG where FACENET_VERBOSE=1 asks for
    it, INFO otherwise (the command line wins over the environment)."""
    if getattr(args, "verbose", False):
        return logging.DEBUG
    if getattr(args, "quiet", False):
        return logging.WARNING
    return logging.DEBUG if verbose_requested() else logging.INFO


def configure_logging(args):
    """Set up logging for a command from its parsed --quiet / --verbose, before anything loads
    TensorFlow: messages on stderr through one PlainFormatter handler on the root logger (a
    second call replaces it), the project's loggers at the chosen level, every other logger's
    warnings and errors only; without --verbose, TensorFlow's start-up chatter off the
    terminal (utils/quiet.py). Returns the level."""
    level = logging_level(args)
    quiet_tensorflow(verbose=level == logging.DEBUG)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(handler)
    handler = StderrHandler()
    handler.setFormatter(PlainFormatter())
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for name in PROJECT_LOGGERS:
        logging.getLogger(name).setLevel(level)
    return level
