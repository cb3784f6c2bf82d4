"""Shared bits of the benchmark scripts: machine description and JSON results."""
import os
import platform
import sys

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def machine():
    """Versions and hardware, whichever Keras backend runs."""
    import keras
    import numpy as np

    info = {"python": sys.version.split()[0], "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
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


def write_result(name, data, folder=RESULTS):
    from utils.fileio import write_json_atomic

    path = os.path.join(folder, f"{name}.json")
    write_json_atomic(path, data)
    print(f"Result: {path}")
    return path
