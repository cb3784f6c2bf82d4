"""Small registered layers that replace the original's Lambda layers.

Lambdas cannot be serialised safely (the original's held Python 3.6 bytecode), so each
operation the original did in a Lambda is a named, registered layer here: whole models save to
`.keras` and load back in a fresh process without `safe_mode=False`.
"""
import keras
from keras import ops


@keras.saving.register_keras_serializable(package="facenet")
class L2Normalize(keras.layers.Layer):
    """x / sqrt(max(sum(x**2), epsilon)) along `axis`, as `K.l2_normalize` did."""

    def __init__(self, axis=-1, epsilon=1e-12, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis
        self.epsilon = epsilon

    def call(self, x):
        square_sum = ops.sum(ops.square(x), axis=self.axis, keepdims=True)
        return x * ops.rsqrt(ops.maximum(square_sum, ops.cast(self.epsilon, x.dtype)))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="facenet")
class ScaledResidual(keras.layers.Layer):
    """inputs[0] + scale * inputs[1]: the residual sum of an Inception-ResNet block."""

    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, inputs):
        shortcut, residual = inputs
        return shortcut + ops.cast(self.scale, residual.dtype) * residual

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}
