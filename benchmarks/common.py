"""Shared bits of the benchmark scripts: machine description and JSON results."""
import json
import os
import platform
import sys

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def machine():
    import numpy as np
    import tensorflow as tf

    import keras

    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__,
            "gpus": [d.name for d in tf.config.list_physical_devices("GPU")]}


def write_result(name, data, folder=RESULTS):
    from utils.fileio import write_json_atomic

    path = os.path.join(folder, f"{name}.json")
    write_json_atomic(path, data)
    print(f"Result: {path}")
    return path
