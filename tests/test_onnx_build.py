"""The ONNX graph written from the Keras layers computes what Keras does, on real faces."""
import pytest

from test_engine import BACKBONES, embeddings, predictor

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.mark.parametrize("backbone", BACKBONES)
def test_onnx_float32_matches_keras_on_real_faces(backbone):
    keras_emb = embeddings(backbone, "keras", "float32")
    onnx_emb = embeddings(backbone, "onnx", "float32")
    assert predictor(backbone, "onnx", "float32").engine == "onnx"
    cosine = (keras_emb * onnx_emb).sum(1)
    assert cosine.min() >= 0.9999, cosine


def test_a_layer_without_a_writer_is_a_clear_error():
    import keras

    from facenet.onnx_build import keras_to_onnx
    from utils.errors import SettingError

    x = keras.Input((8, 8, 3))
    model = keras.Model(x, keras.layers.UpSampling2D(name="Up")(x))
    with pytest.raises(SettingError, match="layer Up .UpSampling2D. has no ONNX writer"):
        keras_to_onnx(model, "scale01")
