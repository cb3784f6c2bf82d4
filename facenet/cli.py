"""Command-line options several scripts share, with the library's names (utils/choices.py) as
their choices: a script cannot offer a backbone the library lacks, nor miss one it gains.
Imports no TensorFlow, so `--help` stays fast."""
import argparse

from utils.choices import BACKBONES, PRECISIONS, PREPROCESSINGS

MODEL_PATH_HELP = ("weights (.weights.h5, .keras or legacy .h5); default: the pretrained model "
                   "of --backbone (Inception-ResNet-V1, fetched on first use; MobileNet, "
                   "shipped)")
BACKBONE_HELP = ("network: with --model-path, the file's (default: from its card); without "
                 "it, which pretrained model (default: inception_resnetv1)")
PRECISION_HELP = ("float32, bfloat16 (mixed: float32 weights), or auto: bfloat16 where it is "
                  "faster (a CPU with AMX, a GPU of compute capability 8+), else float32 "
                  "(default: %(default)s)")


def add_model_options(p, precision=None, preprocessing=True):
    """--model-path, --backbone and --preprocessing (unless preprocessing=False), each None by
    default so the model's card decides; --precision when given its default."""
    p.add_argument("--model-path", default=None, help=MODEL_PATH_HELP)
    p.add_argument("--backbone", default=None, choices=BACKBONES, help=BACKBONE_HELP)
    if preprocessing:
        p.add_argument("--preprocessing", default=None, choices=PREPROCESSINGS,
                       help="pixel transform (default: from the model card, else scale01)")
    if precision:
        p.add_argument("--precision", default=precision, choices=PRECISIONS, help=PRECISION_HELP)


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
    --input-shape H W C still works, unlisted, so that old commands run unchanged."""
    h, w = default[:2]
    shown = h if h == w else f"{h} {w}"
    p.add_argument("--input-size", dest="input_shape", nargs="+", type=int, action=_InputSize,
                   default=tuple(default), metavar="SIDE",
                   help=f"input side in pixels, or H W (default: {shown})")
    p.add_argument("--input-shape", dest="input_shape", nargs=3, type=int, action=_InputSize,
                   default=argparse.SUPPRESS, help=argparse.SUPPRESS)
