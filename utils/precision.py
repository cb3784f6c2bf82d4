"""Numeric precision of inference: float32, bfloat16 (mixed: float32 weights, bfloat16 maths),
or "auto": whichever is faster on the machine at hand, by a rule measured on real hardware.

The rule looks for AMX, not AVX512-BF16: a CPU with AVX512-BF16 alone ran the LFW evaluation
1.7x slower in bfloat16 than in float32 (its bfloat16 matmuls are not faster and every layer adds
casts), while AMX ran it 2.5x faster.
"""
import contextlib
import functools

from utils.choices import PRECISIONS
from utils.errors import SettingError

DEFAULT_PRECISION = "auto"
# The backbones whose CPU embedding gets faster in bfloat16. MobileNet's separate BatchNorms are
# element-wise passes that bfloat16 slows, so it only gains once they are folded into its
# convolutions (the predictor's default). Figures: docs/speed.md.
BF16_PAYS_ON_CPU = {"inception_resnetv1"}
BF16_PAYS_ON_CPU_FOLDED = BF16_PAYS_ON_CPU | {"mobilenet"}
CPU_BF16_FLAG = "amx_bf16"  # /proc/cpuinfo's name for AMX with bfloat16 tiles
GPU_BF16_CAPABILITY = (8, 0)  # Ampere and later: bfloat16 tensor cores


@functools.lru_cache(maxsize=1)
def cpu_flags():
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none: then float32)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def gpu_capability():
    """The highest compute capability (major, minor) of the visible GPUs, or None without one."""
    import tensorflow as tf

    found = [tuple(cc) for gpu in tf.config.list_physical_devices("GPU")
             if (cc := tf.config.experimental.get_device_details(gpu).get("compute_capability"))]
    return max(found, default=None)


def choose_precision(flags, capability, backbone, folded_batchnorm=True):
    """The faster precision for a machine, given its CPU flags and its GPU's compute capability
    (None: no GPU; then the CPU runs the model). A pure function, so it can be tested for any
    machine."""
    if capability is not None:
        return "bfloat16" if tuple(capability) >= GPU_BF16_CAPABILITY else "float32"
    pays = BF16_PAYS_ON_CPU_FOLDED if folded_batchnorm else BF16_PAYS_ON_CPU
    return "bfloat16" if CPU_BF16_FLAG in flags and backbone in pays else "float32"


def resolve_precision(precision, backbone, folded_batchnorm=True):
    """"float32" or "bfloat16" for `precision` in PRECISIONS ("auto": `choose_precision` on
    this machine)."""
    if precision not in PRECISIONS:
        raise SettingError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "int8":
        raise SettingError("precision int8 runs on the ONNX Runtime engine, not Keras: use "
                           "engine 'onnx' or 'auto' (facenet/engine.py)")
    if precision != "auto":
        return precision
    return choose_precision(cpu_flags(), gpu_capability(), backbone, folded_batchnorm)


@contextlib.contextmanager
def dtype_policy(precision):
    """Build models inside this block in `precision` (the global Keras policy is restored)."""
    import keras

    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(old)
