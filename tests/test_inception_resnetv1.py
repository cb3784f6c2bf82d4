"""The Inception-ResNet-V1 trunk: the paper's feature sizes at 160, a 1x1 grid at its smallest
side, and no activation after the last residual block."""
import keras
import numpy as np
import pytest

from nets.facenet import MIN_INPUT_SIDE
from nets.inception_resnetv1 import inception_resnetv1_features


def trunk(side):
    inputs = keras.Input((side, side, 3))
    return keras.Model(inputs, inception_resnetv1_features(inputs))


def test_feature_shapes_at_160():
    model = trunk(160)
    assert tuple(model.get_layer("Conv2d_4b_3x3_Activation").output.shape[1:]) == (17, 17, 256)
    assert tuple(model.get_layer("Mixed_6a").output.shape[1:]) == (8, 8, 896)
    assert tuple(model.get_layer("Block8_6_ScaledResidual").output.shape[1:]) == (3, 3, 1792)
    assert model.output.name == model.get_layer("Block8_6_ScaledResidual").output.name


@pytest.fixture(scope="module")
def smallest():
    return trunk(MIN_INPUT_SIDE["inception_resnetv1"])


def test_the_smallest_side_leaves_a_1x1_grid(smallest):
    assert tuple(smallest.output.shape[1:]) == (1, 1, 1792)


def test_the_last_block_has_no_activation(smallest):
    x = np.random.default_rng(0).uniform(-1, 1, (2, 75, 75, 3)).astype(np.float32)
    out = np.asarray(smallest(x))
    assert (out < 0).any()  # a ReLU after it would leave none
    before = smallest.get_layer("Block8_5_Activation").output
    assert np.asarray(keras.Model(smallest.input, before)(x)).min() >= 0
