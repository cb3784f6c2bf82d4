"""The MobileNetV1 trunk: "same" padding keeps a 1/32 grid at any side, 1024 channels, and its
activations are ReLU6."""
import keras
import numpy as np
import pytest

from nets.mobilenet import mobilenet_features


def trunk(side):
    inputs = keras.Input((side, side, 3))
    return keras.Model(inputs, mobilenet_features(inputs))


@pytest.mark.parametrize("side,grid", [(160, 5), (96, 3), (100, 4), (32, 1)])
def test_the_grid_is_the_side_over_32_rounded_up(side, grid):
    model = trunk(side)
    assert tuple(model.output.shape[1:]) == (grid, grid, 1024)
    assert model.output.name == model.get_layer("conv_pw_13_relu").output.name


def test_activations_stay_within_relu6():
    out = np.asarray(trunk(32)(np.full((1, 32, 32, 3), 1e3, np.float32)))
    assert out.min() >= 0 and out.max() <= 6 and out.max() > 0
