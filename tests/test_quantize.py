"""int8 from the shipped calibration tables: close to float32, reproducible, checked."""
import os

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
