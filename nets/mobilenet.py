"""MobileNetV1 (alpha 1, depth multiplier 1) backbone with the original's layer names.

Layer names are the weight-file format: `conv1`, `conv_dw_N`, `conv_pw_N` and their `_bn` /
`_relu` companions, as in the Keras 2 application the original used. Convolutions use "same"
padding, so any input side that is a multiple of 32 keeps the 1/32 output grid.
"""
from keras import layers

# Pointwise filters and stride of the 13 depthwise-separable blocks.
BLOCKS = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)


def _conv_block(x, filters, strides):
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name="conv1")(x)
    x = layers.BatchNormalization(name="conv1_bn")(x)
    return layers.ReLU(6.0, name="conv1_relu")(x)


def _depthwise_block(x, pointwise_filters, strides, block_id):
    name = f"conv_dw_{block_id}"
    x = layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    x = layers.ReLU(6.0, name=f"{name}_relu")(x)
    name = f"conv_pw_{block_id}"
    x = layers.Conv2D(pointwise_filters, 1, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x)


def mobilenet_features(inputs):
    """The convolutional trunk: (H, W, 3) -> (H/32, W/32, 1024)."""
    x = _conv_block(inputs, 32, strides=2)
    for block_id, (filters, strides) in enumerate(BLOCKS, start=1):
        x = _depthwise_block(x, filters, strides, block_id)
    return x


# The head (pool, dropout, 128-d bottleneck) is nets.facenet.bottleneck_head; the original named
# its BatchNorm here:
HEAD_BATCHNORM_NAME = "BatchNorm_Bottleneck"
