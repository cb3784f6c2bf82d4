"""Fold each inference BatchNormalization into the convolution or dense layer before it.

At inference a BatchNorm is a fixed per-channel affine map, y = s * (z - mean) + beta with
s = gamma / sqrt(var + eps); when z = conv(x) that map can live in the convolution's kernel
(times s) and bias ((bias - mean) * s + beta). The network then runs one fused
convolution + bias + activation per block instead of a convolution and four element-wise passes
over its output: less memory traffic, which is what bfloat16 inference is short of (figures
and the commands that measure them: docs/speed.md).

The folded model computes the same function (float32 embeddings agree to about 1e-6), keeps
every layer name, and is for inference only: its BatchNorms are pass-throughs, so it cannot
be trained or saved as the original network.
"""
import keras
import numpy as np

from nets.keras_shims import inbound_nodes, outbound_nodes, parent_operations

FOLDABLE = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)


class FoldedBatchNorm(keras.layers.Layer):
    """Stands where a BatchNormalization was folded into the layer before it: passes x on."""

    def call(self, inputs, training=None, mask=None):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


def foldable_pairs(model):
    """{BatchNorm name: the layer it can fold into}: a conv/depthwise/dense layer with a linear
    activation whose only consumer is that BatchNorm, normalising the last axis."""
    pairs = {}
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        calls = inbound_nodes(layer)
        parents = parent_operations(calls[0]) if len(calls) == 1 else []
        if len(parents) != 1:
            continue
        producer = parents[0]
        axis = layer.axis if isinstance(layer.axis, int) else None
        rank = len(layer.input.shape)
        if (isinstance(producer, FOLDABLE) and len(outbound_nodes(producer)) == 1
                and len(inbound_nodes(producer)) == 1
                and producer.get_config().get("activation") == "linear"
                and axis is not None and axis % rank == rank - 1):
            pairs[layer.name] = producer
    return pairs


def _folded_weights(layer, bn):
    """(kernel, bias) of `layer` with `bn` (inference statistics) folded in, as float32."""
    variance = np.asarray(bn.moving_variance.numpy(), np.float64)
    scale = (bn.gamma.numpy() if bn.scale else 1.0) / np.sqrt(variance + bn.epsilon)
    shift = (bn.beta.numpy() if bn.center else 0.0) - bn.moving_mean.numpy() * scale
    kernel = np.asarray(layer.kernel.numpy(), np.float64)
    bias = layer.bias.numpy() if layer.use_bias else 0.0
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        # output channel i * multiplier + m comes from kernel[..., i, m]
        kernel = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])
    else:
        kernel = kernel * scale
    return [kernel.astype(np.float32), (bias * scale + shift).astype(np.float32)]


def fold_batchnorm(model):
    """An inference copy of the functional `model` with every foldable BatchNorm folded.

    Returns `model` itself when nothing can be folded. The copy shares no weights with
    `model`: it is a snapshot, so fold again after the weights change."""
    pairs = foldable_pairs(model)
    if not pairs:
        return model
    producers = {layer.name: model.get_layer(bn_name) for bn_name, layer in pairs.items()}

    def clone(layer):
        if layer.name in pairs:
            return FoldedBatchNorm(name=layer.name, dtype=layer.dtype_policy)
        config = layer.get_config()
        if layer.name in producers:
            config["use_bias"] = True
        return layer.__class__.from_config(config)

    folded = keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        if layer.name in pairs or not layer.weights:
            continue
        target = folded.get_layer(layer.name)
        if layer.name in producers:
            target.set_weights(_folded_weights(layer, producers[layer.name]))
        else:
            target.set_weights(layer.get_weights())
    return folded
