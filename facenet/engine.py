"""Which engine runs the embedding network (Keras or ONNX Runtime) and in what precision, and
the ONNX Runtime side of it: the model made once from the float weights, cached beside them.

Keras stays the engine of training and of anything that needs gradients; inference may run on
ONNX Runtime, in float32 or int8 (facenet/quantize.py). "auto" picks by a rule measured on real
CPUs (figures and commands: docs/speed.md): int8 where the CPU has integer dot-product
instructions (VNNI or AMX) or AVX2's 8-bit multiply-adds, and the backbone keeps its accuracy
in int8; Keras (float32, or bfloat16 on AMX by utils/precision.py) elsewhere: on CPUs without
them (not measured), on a GPU, or where onnxruntime is not installed.
"""
import functools
import hashlib
import importlib.util
import json
import logging
import os

from utils.choices import ENGINES, PRECISIONS
from utils.errors import FacenetError, SettingError

logger = logging.getLogger(__name__)

INSTALL = "python -m pip install onnxruntime onnx"
# /proc/cpuinfo's names of the instructions that make int8 pay: integer dot products (VNNI,
# AMX), and AVX2, whose 8-bit multiply-add (vpmaddubsw) ONNX Runtime uses without them
# (measured 2.3x Keras float32 on an AVX2-only CPU, docs/speed.md).
INT8_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8", "avx2"})
# Backbones whose int8 model keeps LFW accuracy (measured: docs/speed.md).
INT8_KEEPS_ACCURACY = frozenset({"inception_resnetv1", "mobilenet"})


def onnxruntime_available():
    """True when ONNX Runtime (to run) and onnx (to build the model once) are importable."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))


def has_gpu():
    """Whether an NVIDIA GPU is visible, without importing TensorFlow (its device nodes)."""
    return os.path.exists("/dev/nvidia0") or os.path.exists("/dev/nvidiactl")


def choose_engine(flags, onnxruntime_installed, backbone, gpu_capability=None):
    """(engine, precision) for a machine: its CPU flags, whether onnxruntime is installed, the
    backbone, and the GPU's compute capability (None: no GPU). A pure function, so the rule
    can be tested for any machine."""
    from utils.precision import choose_precision

    if gpu_capability is not None or not onnxruntime_installed:
        return "keras", choose_precision(flags, gpu_capability, backbone)
    if INT8_FLAGS & set(flags) and backbone in INT8_KEEPS_ACCURACY:
        return "onnx", "int8"
    # No CPU without these was measured: Keras keeps the work there (bfloat16 on AMX).
    return "keras", choose_precision(flags, None, backbone)


@functools.lru_cache(maxsize=None)
def _say_keras_fallback():
    logger.info(f"onnxruntime is not installed: embedding runs on Keras, several times slower "
                f"than int8 ONNX Runtime on most CPUs; to install it: {INSTALL}")


def resolve_engine(engine, precision, backbone):
    """(engine, precision) actually used for the asked ones: "auto" engine or precision is
    decided for this machine; a combination that cannot run is a SettingError."""
    from utils.precision import cpu_flags, gpu_capability

    if engine not in ENGINES:
        raise SettingError(f"engine must be one of {ENGINES}, got {engine!r}")
    if precision not in PRECISIONS:
        raise SettingError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    installed = onnxruntime_available()
    if engine == "onnx" and not installed:
        raise SettingError(f"engine 'onnx' needs onnxruntime and onnx: {INSTALL}")
    if engine == "keras" and precision == "int8":
        raise SettingError("precision int8 runs on the ONNX Runtime engine: use --engine onnx "
                           "or auto")
    if engine == "onnx" and precision == "bfloat16":
        raise SettingError("precision bfloat16 runs on the Keras engine: use --engine keras "
                           "or auto")
    if engine == "auto" and precision == "auto":
        gpu = gpu_capability() if has_gpu() else None
        chosen = choose_engine(cpu_flags(), installed, backbone, gpu)
        if not installed and gpu is None:
            _say_keras_fallback()
        return chosen
    if engine == "auto":  # a precision was asked: the engine that runs it
        if precision == "int8" and not installed:
            raise SettingError(f"precision int8 needs onnxruntime and onnx: {INSTALL}")
        return ("onnx" if precision == "int8" else "keras"), precision
    if engine == "onnx" and precision == "auto":
        chosen = choose_engine(cpu_flags(), True, backbone)
        return "onnx", "int8" if chosen == ("onnx", "int8") else "float32"
    return engine, precision  # keras with auto resolves in utils.precision


# -- the cached ONNX model ---------------------------------------------------------------------
def model_key(weights_sha256, input_shape, preprocessing, precision, table_sha256=None):
    """What the cached model depends on, hashed: change any of it and the model is rebuilt."""
    from facenet.onnx_build import GRAPH_VERSION, OPSET

    parts = {"weights": weights_sha256, "graph": GRAPH_VERSION, "opset": OPSET,
             "input": list(input_shape), "preprocessing": preprocessing,
             "precision": precision}
    if precision == "int8":
        import onnxruntime

        parts.update(table=table_sha256, quantizer=onnxruntime.__version__)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def cache_folder(weights_path):
    """Beside the weights when that folder is writable, else the user's cache."""
    folder = os.path.dirname(os.path.abspath(weights_path))
    if os.access(folder, os.W_OK):
        return folder
    from facenet.weights import cache_dir

    return os.path.join(cache_dir(), "onnx")


def model_path(weights_path, key, precision):
    stem = os.path.basename(os.fspath(weights_path)).split(".")[0]
    return os.path.join(cache_folder(weights_path), f"{stem}.{precision}.{key}.onnx")


# Cached models of other keys (older weights, graph versions or tables) are removed when a new
# one is made, except the most recent few and any used within the grace period: another
# process may be about to load one.
KEEP_CACHED, GRACE_S = 2, 3600


def prune_cached(path, keep=KEEP_CACHED, grace_s=GRACE_S, now=None):
    """Remove the cached models beside `path` of the same weights and precision but another
    key, oldest use first, keeping `keep` in all (`path` among them) and any used within
    `grace_s` seconds. Returns the removed paths."""
    import glob
    import re
    import time

    folder, name = os.path.split(path)
    stem, precision = name.split(".")[:2]
    pattern = re.compile(re.escape(f"{stem}.{precision}.") + r"[0-9a-f]{16}\.onnx$")
    others = [p for p in glob.glob(os.path.join(glob.escape(folder), f"{stem}.{precision}.*.onnx"))
              if pattern.search(os.path.basename(p)) and os.path.abspath(p) != os.path.abspath(path)]
    now = time.time() if now is None else now

    def used(p):
        try:
            return os.path.getmtime(p)
        except OSError:
            return now

    removed = []
    for old in sorted(others, key=used, reverse=True)[max(keep - 1, 0):]:
        if now - used(old) < grace_s:
            continue
        try:
            os.remove(old)
            removed.append(old)
        except OSError:
            pass  # gone already, or not ours to remove: either way not our concern
    if removed:
        logger.info(f"Removed {len(removed)} cached ONNX model(s) of older settings beside "
                    f"{name}")
    return removed


def mark_used(path):
    """Note a cached model's use (its modification time), so pruning keeps the ones in use."""
    try:
        os.utime(path)
    except OSError:
        pass  # a read-only cache is used as it is


def build_onnx(inference_model, preprocessing, precision, table=None):
    """The serialized ONNX model (bytes) of a Keras inference model: float32, or int8 from a
    calibration table (facenet/quantize.py)."""
    from facenet.onnx_build import keras_to_onnx

    proto = keras_to_onnx(inference_model, preprocessing)
    if precision == "int8":
        from facenet.quantize import quantize_with_table

        proto = quantize_with_table(proto, table)
    elif precision != "float32":
        raise SettingError(f"the ONNX engine runs float32 or int8, not {precision!r}")
    return proto.SerializeToString()


def save_model(data, path):
    from utils.fileio import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
    return path


def spin_while_idle(busy, cpus):
    """Whether ONNX Runtime's idle threads should spin (busy-wait for the next piece of work)
    rather than sleep: on a CPU otherwise idle spinning embeds faster, on one busy with other
    work it takes cores from that work (measured: docs/speed.md). `busy`: other threads
    running now, `cpus`: the cores."""
    return busy < 0.5 * cpus


def threads_running_elsewhere(samples=5, interval_s=0.002):
    """Other threads running or ready to run now (this process's busy threads count too): the
    median of a few readings of /proc/loadavg's running count, less the reader. Unlike the
    load average, which lags a minute behind, it sees the CPU as it is. None without /proc."""
    import time

    counts = []
    for _ in range(samples):
        try:
            with open("/proc/loadavg", encoding="ascii") as f:
                counts.append(int(f.read().split()[3].split("/")[0]) - 1)
        except (OSError, ValueError, IndexError):
            return None
        time.sleep(interval_s)
    return sorted(counts)[len(counts) // 2]


def make_session(model, threads=None, spin=None):
    """An ONNX Runtime CPU session of `model` (a path, or the serialized model's bytes);
    `spin`: whether idle threads spin, None to decide by how busy the CPU is now."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if spin is None:
        busy = threads_running_elsewhere()
        # without /proc: ONNX Runtime's own default, spinning
        spin = busy is None or spin_while_idle(busy, os.cpu_count() or 1)
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    if threads:
        options.intra_op_num_threads = int(threads)
    return ort.InferenceSession(model if isinstance(model, bytes) else os.fspath(model),
                                options, providers=["CPUExecutionProvider"])


class OnnxRunner:
    """An ONNX Runtime session: uint8 (N, H, W, 3) crops -> (N, 128) float32 embeddings."""

    def __init__(self, path, threads=None):
        try:
            self.session = make_session(path, threads)
        except Exception as e:  # a damaged cache file: say which, and how to mend it
            raise FacenetError(f"{path}: ONNX Runtime cannot load it ({str(e)[:200]}); delete "
                               f"it and it is rebuilt from the weights") from None
        self.input = self.session.get_inputs()[0].name
        self.embedding_size = int(self.session.get_outputs()[0].shape[-1])

    def __call__(self, x):
        return self.session.run(None, {self.input: x})[0]
