"""The registered layers that replace the original's Lambdas: their maths, and a config that
rebuilds them by name (what lets whole models load in safe mode)."""
import keras
import numpy as np
import pytest

from nets.layers import L2Normalize, ScaledResidual


def test_l2_normalize_gives_unit_rows_and_leaves_zero_finite():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [1e-8, 0.0]], np.float32)
    out = np.asarray(L2Normalize()(x))
    np.testing.assert_allclose(out[0], [0.6, 0.8], rtol=1e-6)
    assert (out[1] == 0).all()  # x / sqrt(epsilon): no NaN for a zero vector
    np.testing.assert_allclose(out[2], [1e-8 / np.sqrt(1e-12), 0.0], rtol=1e-5)


def test_l2_normalize_along_another_axis():
    x = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32)
    out = np.asarray(L2Normalize(axis=1)(x))
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)


def test_scaled_residual_adds_the_scaled_branch():
    a = np.ones((2, 3), np.float32)
    b = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(np.asarray(ScaledResidual(0.17)([a, b])), a + 0.17 * b, rtol=1e-6)


@pytest.mark.parametrize("layer", [L2Normalize(axis=1, epsilon=1e-6), ScaledResidual(0.2)])
def test_each_layer_rebuilds_from_its_config_by_registered_name(layer):
    config = keras.layers.serialize(layer)
    assert config["registered_name"].startswith("facenet>")
    again = keras.layers.deserialize(config)
    assert type(again) is type(layer) and again.get_config() == layer.get_config()
