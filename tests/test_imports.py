"""Importing the library does no work: TensorFlow loads only when a model is built."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT, run_script

MODULES = ["facenet", "facenet.align", "facenet.align_cache", "facenet.align_dataset",
           "facenet.commands",
           "facenet.batching", "facenet.cli", "facenet.enrollment", "facenet.evaluation",
           "facenet.export", "facenet.gallery", "facenet.mtcnn_build", "facenet.mtcnn_onnx",
           "facenet.predictor", "facenet.preparation",
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


@pytest.mark.slow
def test_comparing_two_photos_on_onnx_loads_no_tensorflow(lfw, pretrained_path, tmp_path):
    """predict.py A B on the ONNX engine, its models cached, finds and embeds the faces on ONNX
    Runtime: neither TensorFlow, Keras nor the mtcnn package is imported (seconds of start)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("mtcnn", reason="the detector's weights come with the mtcnn package")
    lfw_dir, _ = lfw
    photos = [os.path.join(lfw_dir, "Colin_Powell", f"Colin_Powell_000{i}.jpg") for i in (1, 2)]
    argv = ["predict.py", *photos, "--engine", "onnx", "--model-path", pretrained_path,
            "--out", str(tmp_path / "pair.png")]
    first = run_script(argv)  # makes the ONNX models, where missing
    assert first.returncode == 0, first.stderr[-2000:]
    code = ("import runpy, sys\n"
            f"sys.argv = {argv!r}\n"
            "runpy.run_path('predict.py', run_name='__main__')\n"
            "print('heavy:', [m for m in ('tensorflow', 'keras', 'mtcnn') if m in sys.modules])")
    r = run_script(["-c", code])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "distance" in r.stdout and "aligned the face" in r.stdout, r.stdout
    assert r.stdout.strip().splitlines()[-1] == "heavy: []", r.stdout
