"""int8 from the shipped calibration tables: close to float32, reproducible, checked."""
import os

import numpy as np
import pytest

from facenet import engine
from test_engine import BACKBONES, embeddings, predictor
from utils.errors import WeightFileError

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.mark.parametrize("backbone", BACKBONES)
def test_int8_stays_close_to_float32_on_real_faces(backbone):
    int8 = predictor(backbone, "onnx", "int8")
    assert int8.precision == "int8" and "int8" in os.path.basename(int8.onnx_path)
    cosine = (embeddings(backbone, "onnx", "int8") * embeddings(backbone, "onnx", "float32"))
    assert cosine.sum(1).min() >= 0.99, cosine.sum(1)


def test_the_int8_model_rebuilt_twice_is_byte_identical():
    from facenet import weights as registry
    from facenet.quantize import read_table, table_path
    from utils.fileio import sha256_of

    p = predictor("mobilenet", "onnx", "int8")
    table = read_table(table_path(p.card["name"]),
                       registry.MODELS[p.card["name"]].int8_table_sha256,
                       sha256_of(p.model_path))
    first = engine.build_onnx(p.inference_model, p.preprocessing, "int8", table)
    second = engine.build_onnx(p.inference_model, p.preprocessing, "int8", table)
    assert first == second
    with open(p.onnx_path, "rb") as f:  # and the cached model is that same model
        assert f.read() == first


def test_a_damaged_or_foreign_calibration_table_is_refused(tmp_path):
    import json

    from facenet import weights as registry
    from facenet.quantize import read_table, table_path

    name = "facenet_mobilenet"
    path = table_path(name)
    expected = registry.MODELS[name].int8_table_sha256
    assert read_table(path, expected)["ranges"]
    edited = tmp_path / "t.json"
    table = json.load(open(path))
    table["ranges"][next(iter(table["ranges"]))][1] *= 2
    edited.write_text(json.dumps(table))
    with pytest.raises(WeightFileError, match="checksum"):
        read_table(str(edited), expected)
    with pytest.raises(WeightFileError, match="other weights"):
        read_table(path, expected, weights_sha256="0" * 64)


def test_the_int8_model_is_made_from_the_folded_network_whatever_keras_is_told(
        pretrained_path, tmp_path, monkeypatch):
    """predict.py runs Keras unfolded (faster for two photos); the ONNX model it makes must
    come from the folded network all the same: a float convolution before a separate BatchNorm
    made ONNX Runtime's quantizer fail with a KeyError on a fresh machine."""
    from facenet import engine
    from facenet.predictor import Facenet

    monkeypatch.setattr(engine, "model_path",
                        lambda weights, key, precision: str(tmp_path / f"{precision}.{key}.onnx"))
    crops = np.random.default_rng(0).integers(0, 255, (4, 160, 160, 3), np.uint8)
    unfolded = Facenet(pretrained_path, engine="onnx", precision="int8", align="off",
                       fold_batchnorm=False)
    folded = Facenet(pretrained_path, engine="onnx", precision="int8", align="off")
    assert unfolded.onnx_path == folded.onnx_path and os.path.exists(folded.onnx_path)
    assert np.allclose(unfolded.embed_arrays(crops), folded.embed_arrays(crops))


def test_a_percentile_range_leaves_out_the_rare_outliers_that_min_max_keeps():
    """A few outlying activations stretch a min-max range: the percentile cuts them."""
    import onnx
    from onnx import TensorProto, helper

    from facenet.quantize import calibrate

    nodes = [helper.make_node("Cast", ["images"], ["x"], to=TensorProto.FLOAT, name="cast"),
             helper.make_node("Conv", ["x", "w"], ["y"], name="conv"),
             helper.make_node("Relu", ["y"], ["z"], name="relu")]
    w = helper.make_tensor("w", TensorProto.FLOAT, [2, 3, 1, 1], [1.0] * 6)
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "images", TensorProto.UINT8, [None, 3, 8, 8])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [None, 2, 8, 8])], [w])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(proto)
    images = np.random.default_rng(0).integers(0, 20, (50, 3, 8, 8)).astype(np.uint8)
    images[7, :, 3, 3] = 255  # one outlying pixel of 3,200
    minmax = calibrate(proto, [images[i:i + 10] for i in range(0, 50, 10)])
    cut = calibrate(proto, [images[i:i + 10] for i in range(0, 50, 10)], "percentile", 99.9)
    assert minmax["z"][1] == 3 * 255.0
    assert 0 <= cut["z"][0] and cut["z"][1] < 3 * 30
    with pytest.raises(ValueError, match="unknown calibration method 'entropy'"):
        calibrate(proto, [images], "entropy")


def _one_conv(weights, bias):
    """A float graph of one 3x3 convolution (NCHW, no padding)."""
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", kernel_shape=[3, 3])],
        "one_conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(weights, "w"), numpy_helper.from_array(bias, "b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_bias_correction_cancels_the_int8_weights_mean_error():
    """On an input at its mean, the int8-rounded weights with the corrected bias give what the
    float weights give; a table naming what the graph lacks is refused."""
    import onnxruntime as ort
    from onnx import numpy_helper

    from facenet.quantize import correct_biases

    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.1, (6, 4, 3, 3)).astype(np.float32)
    b = rng.normal(0, 0.1, 6).astype(np.float32)
    means = rng.uniform(0.5, 2.0, 4)
    x = np.broadcast_to(means.astype(np.float32)[None, :, None, None], (1, 4, 5, 5)).copy()

    def run(model):
        session = ort.InferenceSession(model.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        return session.run(None, {"x": x})[0]

    corrected = correct_biases(_one_conv(w, b), {"conv": means.tolist()})
    scale = np.abs(w).reshape(6, -1).max(1)[:, None, None, None] / 127
    rounded = (np.clip(np.round(w / scale), -127, 127) * scale).astype(np.float32)
    new_bias = numpy_helper.to_array(corrected.graph.initializer[1])
    before = np.abs(run(_one_conv(rounded, b)) - run(_one_conv(w, b))).max()
    after = np.abs(run(_one_conv(rounded, new_bias)) - run(_one_conv(w, b))).max()
    assert after < 1e-5 < before
    with pytest.raises(WeightFileError, match="bias_correction names 'nope'"):
        correct_biases(_one_conv(w, b), {"nope": means.tolist()})
    with pytest.raises(WeightFileError, match=r"bias_correction\['conv'\] must be 4 finite"):
        correct_biases(_one_conv(w, b), {"conv": [1.0, float("nan"), 1.0, 1.0]})
