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


def test_residual_scales_are_folded_into_the_convolution_exactly():
    """x + s * conv(y) is written as x + conv'(y): the product's node is gone, the convolution
    carries its output name (the calibration table's key) and computes s * conv(y)."""
    import keras
    import numpy as np
    import onnxruntime as ort

    from facenet.onnx_build import keras_to_onnx
    from nets.layers import ScaledResidual

    x = keras.Input((8, 8, 4))
    up = keras.layers.Conv2D(4, 1, name="Up")(x)
    summed = ScaledResidual(0.17, name="Block")([x, up])
    model = keras.Model(x, keras.layers.GlobalAveragePooling2D(name="Pool")(summed))
    proto = keras_to_onnx(model, "scale01")
    ops = {n.name: n for n in proto.graph.node}
    assert not any(n.op_type == "Mul" and n.output[0] == "Block/scaled" for n in ops.values())
    assert ops["Up"].op_type == "Conv" and ops["Up"].output[0] == "Block/scaled"
    images = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 4), dtype=np.uint8)
    got = ort.InferenceSession(proto.SerializeToString()).run(None, {"images": images})[0]
    want = model.predict(images.astype("float32") / 255.0, verbose=0)
    np.testing.assert_allclose(got, want, atol=1e-5)
