"""Export: SavedModel and TFLite take uint8 images and give the Keras model's embeddings."""
import json
import os

import numpy as np
import pytest

from conftest import run_script


@pytest.fixture(scope="module")
def faces(lfw, pretrained_lfw):
    lfw_dir, _ = lfw
    names = ["Aaron_Peirsol", "Abdullah_Gul", "Colin_Powell"]
    paths = [os.path.join(lfw_dir, n, f"{n}_000{i}.jpg") for n in names for i in (1, 2)]
    return np.stack([pretrained_lfw.prepare(p) for p in paths])


@pytest.fixture(scope="module")
def savedmodel(pretrained_lfw, tmp_path_factory):
    from facenet.export import export

    out = str(tmp_path_factory.mktemp("export") / "savedmodel")
    return export(pretrained_lfw, "savedmodel", out, log=lambda *a: None)


def test_savedmodel_serves_uint8_images(savedmodel, pretrained_lfw, faces):
    import tensorflow as tf

    serve = tf.saved_model.load(savedmodel).signatures["serving_default"]
    spec = serve.structured_input_signature[1]["images"]
    assert spec.dtype == tf.uint8 and spec.shape.as_list() == [None, 160, 160, 3]
    got = serve(images=tf.constant(faces))["embeddings"].numpy()
    want = pretrained_lfw.embed_arrays(faces)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert (got * want).sum(1).min() >= 0.9999
    card = json.load(open(os.path.join(savedmodel, "card.json")))
    assert card["export"]["format"] == "savedmodel" and card["preprocessing"] == "standardize"


@pytest.mark.parametrize("quantize,least", [("float32", 0.9999), ("int8", 0.99)])
def test_tflite_parity(savedmodel, pretrained_lfw, faces, tmp_path, quantize, least):
    import tensorflow as tf

    from facenet.export import export_tflite

    path = export_tflite(savedmodel, str(tmp_path / f"m_{quantize}.tflite"), quantize)
    run = tf.lite.Interpreter(path).get_signature_runner("serving_default")
    got = np.concatenate([run(images=faces[i:i + 1])["embeddings"] for i in range(len(faces))])
    want = pretrained_lfw.embed_arrays(faces)
    assert (got * want).sum(1).min() >= least
    # same-person pairs stay closer than different-person pairs
    d = np.linalg.norm(got[:, None] - got[None], axis=-1)
    assert max(d[0, 1], d[2, 3], d[4, 5]) < min(d[0, 2], d[0, 4], d[2, 4])


def test_export_command_and_missing_onnx_converter(pretrained_path, tmp_path):
    import importlib.util

    if importlib.util.find_spec("tf2onnx") is not None:
        pytest.skip("tf2onnx is installed here; the missing-converter message cannot show")
    r = run_script(["-m", "facenet.export", "--format", "onnx", "--out",
                    str(tmp_path / "m.onnx")])
    assert r.returncode != 0 and "pip install tf2onnx" in r.stderr
