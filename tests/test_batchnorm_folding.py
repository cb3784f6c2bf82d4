"""Folding BatchNorm into the layer before it changes the speed, never the function."""
import keras
import numpy as np
import pytest

from nets.batchnorm_folding import FoldedBatchNorm, fold_batchnorm, foldable_pairs
from nets.facenet import facenet


def randomize_batchnorms(model, seed=0):
    """Give every BatchNorm non-trivial statistics, so a wrong fold shows in the outputs."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([
                rng.uniform(0.5, 1.5, w.shape).astype(np.float32) if "variance" in w.path
                else rng.normal(0, 0.3, w.shape).astype(np.float32) for w in layer.weights])


@pytest.mark.slow
@pytest.mark.parametrize("backbone,side", [("mobilenet", 64), ("inception_resnetv1", 80)])
def test_folded_network_computes_the_same_embeddings(backbone, side):
    model = facenet((side, side, 3), backbone=backbone, mode="predict")
    randomize_batchnorms(model)
    batchnorms = [layer.name for layer in model.layers
                  if isinstance(layer, keras.layers.BatchNormalization)]
    folded = fold_batchnorm(model)

    assert folded is not model
    # every BatchNorm of these networks follows a bias-free conv or the bottleneck Dense
    assert sorted(foldable_pairs(model)) == sorted(batchnorms)
    assert [layer.name for layer in folded.layers] == [layer.name for layer in model.layers]
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in folded.layers)
    assert sum(isinstance(layer, FoldedBatchNorm) for layer in folded.layers) == len(batchnorms)

    x = np.random.default_rng(1).uniform(0, 1, (4, side, side, 3)).astype(np.float32)
    expected = model(x, training=False).numpy()
    got = folded(x, training=False).numpy()
    assert np.abs(got - expected).max() < 1e-5
    # the original network is untouched
    assert np.array_equal(model(x, training=False).numpy(), expected)


def test_batchnorm_that_cannot_fold_is_kept():
    """A conv with a second consumer, or with its own activation, keeps its BatchNorm."""
    x_in = keras.Input((8, 8, 3))
    shared = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="shared")(x_in)
    a = keras.layers.BatchNormalization(name="shared_bn")(shared)
    activated = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="relu")(x_in)
    b = keras.layers.BatchNormalization(name="relu_bn")(activated)
    plain = keras.layers.Conv2D(4, 1, use_bias=True, name="plain")(x_in)
    c = keras.layers.BatchNormalization(name="plain_bn")(plain)
    out = keras.layers.Concatenate()([a, shared, b, c])
    model = keras.Model(x_in, out)
    randomize_batchnorms(model)

    assert list(foldable_pairs(model)) == ["plain_bn"]  # a conv with bias folds too
    folded = fold_batchnorm(model)
    assert isinstance(folded.get_layer("shared_bn"), keras.layers.BatchNormalization)
    assert isinstance(folded.get_layer("relu_bn"), keras.layers.BatchNormalization)
    assert isinstance(folded.get_layer("plain_bn"), FoldedBatchNorm)
    x = np.random.default_rng(2).normal(size=(2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(folded(x).numpy(), model(x).numpy(), atol=1e-5)


def test_model_without_batchnorm_is_returned_as_is():
    x_in = keras.Input((4,))
    model = keras.Model(x_in, keras.layers.Dense(2)(x_in))
    assert fold_batchnorm(model) is model


@pytest.mark.slow
def test_predictor_folds_by_default_with_the_same_embeddings(pretrained_path, lfw):
    import glob

    from facenet import Facenet

    images = sorted(glob.glob(f"{lfw[0]}/Aaron_Peirsol/*.jpg"))[:3]
    # float32: bfloat16 rounds the two differently
    same = dict(model_path=pretrained_path, crop="lfw", align="off", precision="float32")
    folded = Facenet(**same)
    plain = Facenet(**same, fold_batchnorm=False)
    assert folded.inference_model is not folded.model  # the forward pass runs the folded copy
    assert plain.inference_model is plain.model
    assert np.abs(folded.embed(images) - plain.embed(images)).max() < 1e-5
