"""The model's input preprocessing as TensorFlow ops, identical to utils.image's NumPy versions.

Used inside graphs: the training pipeline (one image at a time), the predictor's compiled
forward pass and the exports (batches of uint8 images), so preprocessing runs on TensorFlow's
threads instead of Python's."""
from utils.errors import SettingError


def preprocess_tf(x, preprocessing):
    """uint8 or float (H, W, 3) or (N, H, W, 3) -> float32 model input; "standardize" is per
    image: (x - mean) / max(std, 1/sqrt(pixels x channels))."""
    import tensorflow as tf

    x = tf.cast(x, tf.float32)
    if preprocessing == "scale01":
        return x / 255.0
    if preprocessing == "standardize":
        axes = [-3, -2, -1]  # one image's pixels and channels
        mean = tf.reduce_mean(x, axis=axes, keepdims=True)
        std = tf.math.reduce_std(x, axis=axes, keepdims=True)
        size = tf.cast(tf.reduce_prod(tf.shape(x)[-3:]), tf.float32)
        return (x - mean) / tf.maximum(std, 1.0 / tf.sqrt(size))
    raise SettingError(f"unknown preprocessing {preprocessing!r}; choose scale01 or standardize")
