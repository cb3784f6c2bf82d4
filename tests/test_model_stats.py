"""Parameter counts and FLOPs (2 x multiply-adds of convolutions and dense layers) of a small
model, worked out by hand."""
import keras

from utils.model_stats import model_stats


def test_counts_of_a_small_model():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)  # 3*3*3*4 = 108
    x = keras.layers.BatchNormalization()(x)  # 4 x (gamma, beta) trainable, 4 x 2 not
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False)(x)  # 36
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5)(x)  # 4*5 + 5 = 25
    stats = model_stats(keras.Model(inputs, outputs))
    assert stats == {"params": 108 + 16 + 36 + 25, "trainable_params": 108 + 8 + 36 + 25,
                     "non_trainable_params": 8,
                     # conv: 2*8*8*3*3*3*4; depthwise at 4x4: 2*4*4*3*3*4; dense: 2*4*5
                     "flops": 13824 + 1152 + 40}
