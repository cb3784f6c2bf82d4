"""Inception-ResNet-V1, the FaceNet paper's network, with the original's layer names.

Every convolution without bias is followed by `<name>_BatchNorm` (momentum 0.995, epsilon
0.001, no scale) and `<name>_Activation`; branch layers are `<Block>_<i>_Branch_<b>_<conv>`.
These names are the weight-file format: the pretrained `facenet_keras.h5` loads by them.
"""
from keras import layers

from nets.layers import ScaledResidual

BLOCK_BRANCHES = {
    # block type: branches, each a list of (conv name, filters, kernel)
    "Block35": [
        [("Conv2d_1x1", 32, 1)],
        [("Conv2d_0a_1x1", 32, 1), ("Conv2d_0b_3x3", 32, 3)],
        [("Conv2d_0a_1x1", 32, 1), ("Conv2d_0b_3x3", 32, 3), ("Conv2d_0c_3x3", 32, 3)],
    ],
    "Block17": [
        [("Conv2d_1x1", 128, 1)],
        [("Conv2d_0a_1x1", 128, 1), ("Conv2d_0b_1x7", 128, (1, 7)), ("Conv2d_0c_7x1", 128, (7, 1))],
    ],
    "Block8": [
        [("Conv2d_1x1", 192, 1)],
        [("Conv2d_0a_1x1", 192, 1), ("Conv2d_0b_1x3", 192, (1, 3)), ("Conv2d_0c_3x1", 192, (3, 1))],
    ],
}


def conv2d_bn(x, filters, kernel_size, name, strides=1, padding="same", activation="relu"):
    """Conv (no bias) -> BatchNorm -> activation, named NAME, NAME_BatchNorm, NAME_Activation."""
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False,
                      name=name)(x)
    x = layers.BatchNormalization(momentum=0.995, epsilon=0.001, scale=False,
                                  name=f"{name}_BatchNorm")(x)
    if activation is not None:
        x = layers.Activation(activation, name=f"{name}_Activation")(x)
    return x


def inception_resnet_block(x, block_type, block_idx, scale, activation="relu"):
    """One residual Inception block: branches -> concat -> 1x1 up-projection -> scaled sum."""
    prefix = f"{block_type}_{block_idx}"
    branches = []
    for b, convs in enumerate(BLOCK_BRANCHES[block_type]):
        y = x
        for conv_name, filters, kernel in convs:
            y = conv2d_bn(y, filters, kernel, name=f"{prefix}_Branch_{b}_{conv_name}")
        branches.append(y)
    mixed = layers.Concatenate(axis=-1, name=f"{prefix}_Concatenate")(branches)
    up = layers.Conv2D(x.shape[-1], 1, use_bias=True, name=f"{prefix}_Conv2d_1x1")(mixed)
    x = ScaledResidual(scale, name=f"{prefix}_ScaledResidual")([x, up])
    if activation is not None:
        x = layers.Activation(activation, name=f"{prefix}_Activation")(x)
    return x


def _mixed_6a(x):
    b0 = conv2d_bn(x, 384, 3, strides=2, padding="valid", name="Mixed_6a_Branch_0_Conv2d_1a_3x3")
    b1 = conv2d_bn(x, 192, 1, name="Mixed_6a_Branch_1_Conv2d_0a_1x1")
    b1 = conv2d_bn(b1, 192, 3, name="Mixed_6a_Branch_1_Conv2d_0b_3x3")
    b1 = conv2d_bn(b1, 256, 3, strides=2, padding="valid", name="Mixed_6a_Branch_1_Conv2d_1a_3x3")
    b2 = layers.MaxPooling2D(3, strides=2, padding="valid", name="Mixed_6a_Branch_2_MaxPool_1a_3x3")(x)
    return layers.Concatenate(axis=-1, name="Mixed_6a")([b0, b1, b2])


def _mixed_7a(x):
    b0 = conv2d_bn(x, 256, 1, name="Mixed_7a_Branch_0_Conv2d_0a_1x1")
    b0 = conv2d_bn(b0, 384, 3, strides=2, padding="valid", name="Mixed_7a_Branch_0_Conv2d_1a_3x3")
    b1 = conv2d_bn(x, 256, 1, name="Mixed_7a_Branch_1_Conv2d_0a_1x1")
    b1 = conv2d_bn(b1, 256, 3, strides=2, padding="valid", name="Mixed_7a_Branch_1_Conv2d_1a_3x3")
    b2 = conv2d_bn(x, 256, 1, name="Mixed_7a_Branch_2_Conv2d_0a_1x1")
    b2 = conv2d_bn(b2, 256, 3, name="Mixed_7a_Branch_2_Conv2d_0b_3x3")
    b2 = conv2d_bn(b2, 256, 3, strides=2, padding="valid", name="Mixed_7a_Branch_2_Conv2d_1a_3x3")
    b3 = layers.MaxPooling2D(3, strides=2, padding="valid", name="Mixed_7a_Branch_3_MaxPool_1a_3x3")(x)
    return layers.Concatenate(axis=-1, name="Mixed_7a")([b0, b1, b2, b3])


def inception_resnetv1_features(inputs):
    """The convolutional trunk: 160x160x3 -> 3x3x1792."""
    x = conv2d_bn(inputs, 32, 3, strides=2, padding="valid", name="Conv2d_1a_3x3")
    x = conv2d_bn(x, 32, 3, padding="valid", name="Conv2d_2a_3x3")
    x = conv2d_bn(x, 64, 3, name="Conv2d_2b_3x3")
    x = layers.MaxPooling2D(3, strides=2, name="MaxPool_3a_3x3")(x)
    x = conv2d_bn(x, 80, 1, padding="valid", name="Conv2d_3b_1x1")
    x = conv2d_bn(x, 192, 3, padding="valid", name="Conv2d_4a_3x3")
    x = conv2d_bn(x, 256, 3, strides=2, padding="valid", name="Conv2d_4b_3x3")
    for i in range(1, 6):
        x = inception_resnet_block(x, "Block35", i, scale=0.17)
    x = _mixed_6a(x)
    for i in range(1, 11):
        x = inception_resnet_block(x, "Block17", i, scale=0.10)
    x = _mixed_7a(x)
    for i in range(1, 6):
        x = inception_resnet_block(x, "Block8", i, scale=0.20)
    return inception_resnet_block(x, "Block8", 6, scale=1.0, activation=None)


# The head (pool, dropout, 128-d bottleneck) is nets.facenet.bottleneck_head; the original named
# its BatchNorm here:
HEAD_BATCHNORM_NAME = "Bottleneck_BatchNorm"
