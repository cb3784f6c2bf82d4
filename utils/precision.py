"""Numeric precision of inference: float32, bfloat16 (mixed: float32 weights, bfloat16 maths),
or "auto": bfloat16 only where the hardware does it natively and it pays for that network."""
import contextlib
import functools

PRECISIONS = ("float32", "bfloat16", "auto")
# The backbones whose CPU embedding gets faster in bfloat16. MobileNet's separate BatchNorms are
# element-wise passes that bfloat16 slows, so it only gains once they are folded into its
# convolutions (the predictor's default). Figures: docs/speed.md.
BF16_PAYS_ON_CPU = {"inception_resnetv1"}
BF16_PAYS_ON_CPU_FOLDED = BF16_PAYS_ON_CPU | {"mobilenet"}


@functools.lru_cache(maxsize=1)
def cpu_flags():
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_native_bf16():
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def gpu_has_native_bf16():
    """True when a visible GPU has compute capability 8.0 or more (Ampere and later)."""
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        cc = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if cc and tuple(cc) >= (8, 0):
            return True
    return False


def resolve_precision(precision, backbone, folded_batchnorm=True):
    """"float32" or "bfloat16" for `precision` in PRECISIONS (for "auto", whether the network
    runs with its BatchNorms folded decides for MobileNet)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        return precision
    if gpu_has_native_bf16():
        return "bfloat16"
    pays = BF16_PAYS_ON_CPU_FOLDED if folded_batchnorm else BF16_PAYS_ON_CPU
    if cpu_has_native_bf16() and backbone in pays:
        return "bfloat16"
    return "float32"


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
