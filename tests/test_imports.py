"""Importing the library does no work: TensorFlow loads only when a model is built."""
import subprocess
import sys

from conftest import ROOT

MODULES = ["facenet", "facenet.align", "facenet.align_cache", "facenet.align_dataset",
           "facenet.commands",
           "facenet.batching", "facenet.cli", "facenet.enrollment", "facenet.evaluation",
           "facenet.export", "facenet.gallery", "facenet.predictor", "facenet.preparation",
           "facenet.training", "facenet.training.checkpoints", "facenet.training.config",
           "facenet.training.distillation", "facenet.training.distribute", "facenet.weights",
           "utils.image", "utils.metrics", "utils.precision", "utils.lfw", "utils.annotation",
           "utils.choices"]


def test_library_imports_without_tensorflow():
    code = ("import sys\n" + "".join(f"import {m}\n" for m in MODULES) +
            "heavy = [m for m in ('tensorflow', 'keras', 'mtcnn') if m in sys.modules]\n"
            "print(heavy)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "[]"
