"""Shared bits of the benchmark scripts: machine description and JSON results."""
import os
import platform
import sys

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def lfw_jpegs(lfw_dir):
    """Every .jpg under `lfw_dir`, sorted; exits naming --lfw-dir when there is none."""
    files = sorted(os.path.join(root, f) for root, _, names in os.walk(lfw_dir)
                   for f in names if f.lower().endswith(".jpg"))
    if not files:
        sys.exit(f"no .jpg files under --lfw-dir {lfw_dir}; point it at LFW's image folder")
    return files


def cpu_model():
    """The CPU's model name and its bfloat16 features (speed depends on them)."""
    from utils.precision import cpu_flags

    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            name = next((line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name")), name)
    except OSError:
        pass
    return {"model": name, "bf16_features": sorted({"amx_bf16", "avx512_bf16"} & cpu_flags())}


def machine():
    """Versions and hardware, whichever Keras backend runs."""
    import keras
    import numpy as np

    info = {"python": sys.version.split()[0], "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cpu": cpu_model(),
            "cpus": os.cpu_count(),
            "keras": keras.__version__, "keras_backend": keras.backend.backend(),
            "numpy": np.__version__}
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        info.update(tensorflow=tf.__version__,
                    gpus=[d.name for d in tf.config.list_physical_devices("GPU")])
    elif keras.backend.backend() == "jax":
        import jax

        info.update(jax=jax.__version__, devices=[str(d) for d in jax.devices()])
    return info


def images_per_second(fn, images, repeats, warmup=True):
    """Median and spread of images/s over `repeats` timed calls of `fn` (which handles
    `images` images), after one untimed call unless warmup=False."""
    import statistics
    import time

    if warmup:
        fn()
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        rates.append(images / (time.perf_counter() - t))
    return {"median": round(statistics.median(rates), 1), "min": round(min(rates), 1),
            "max": round(max(rates), 1), "repeats": repeats}


def plot_accuracy(accuracies, reference, out, title, label, reference_label):
    """Accuracy per epoch (fractions) against a horizontal reference line, saved as a PNG and
    printed."""
    print("Fold 1 per epoch: " + ", ".join(f"{100 * a:.1f}" for a in accuracies))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    acc = [100 * a for a in accuracies]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(range(1, len(acc) + 1), acc, "o-", label=label)
    ax.axhline(100 * reference, color="grey", ls="--", label=reference_label)
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Accuracy (%) at best threshold")
    ax.set_title(title)
    ax.grid(True)
    ax.legend(loc="lower right")
    fig.savefig(out, dpi=100)
    plt.close(fig)


def write_result(name, data, folder=RESULTS):
    from utils.fileio import write_json_atomic

    path = os.path.join(folder, f"{name}.json")
    write_json_atomic(path, data)
    print(f"Result: {path}")
    return path
