"""The in-graph preprocessing gives the NumPy functions' numbers, for every name the library
offers, and refuses any other name."""
import numpy as np
import pytest

from utils.choices import PREPROCESSINGS
from utils.image import get_preprocessing
from utils.tf_preprocessing import preprocess_tf


@pytest.mark.parametrize("name", PREPROCESSINGS)
def test_tensorflow_preprocessing_matches_numpy(name):
    """The compiled forward pass and the exports preprocess in TensorFlow: same numbers as the
    NumPy functions, per image, for a batch and for one image (the training pipeline)."""
    x = np.random.default_rng(1).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    x[2] = 9  # a constant image: the std floor
    want = get_preprocessing(name)(x)
    np.testing.assert_allclose(preprocess_tf(x, name).numpy(), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(preprocess_tf(x[0], name).numpy(), want[0], rtol=1e-5, atol=1e-5)


def test_an_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match=r"unknown preprocessing 'imagenet'; choose one of "
                                         r"\['scale01', 'standardize'\]"):
        preprocess_tf(np.zeros((8, 8, 3), np.uint8), "imagenet")
