"""The FaceNet model: a backbone, the 128-d bottleneck head, and the train/predict outputs."""
import keras
from keras import layers

from nets import inception_resnetv1, mobilenet
from nets.layers import L2Normalize
from utils.choices import MODES
from utils.errors import SettingError

# backbone -> (convolutional trunk, name of the head's BatchNorm in the original's weight files);
# its names are utils.choices.BACKBONES, which the scripts offer
BACKBONES = {
    "mobilenet": (mobilenet.mobilenet_features, mobilenet.HEAD_BATCHNORM_NAME),
    "inception_resnetv1": (inception_resnetv1.inception_resnetv1_features,
                           inception_resnetv1.HEAD_BATCHNORM_NAME),
}
# Smallest input side each backbone takes (valid convolutions shrink Inception-ResNet-V1).
MIN_INPUT_SIDE = {"mobilenet": 32, "inception_resnetv1": 75}


def bottleneck_head(features, batchnorm_name, embedding_size=128, dropout_keep_prob=0.5):
    """Pool, dropout and the bias-free 128-d bottleneck with its BatchNorm: the pre-embedding."""
    x = layers.GlobalAveragePooling2D(name="AvgPool")(features)
    x = layers.Dropout(1.0 - dropout_keep_prob, name="Dropout")(x)
    x = layers.Dense(embedding_size, use_bias=False, name="Bottleneck")(x)
    return layers.BatchNormalization(momentum=0.995, epsilon=0.001, scale=False,
                                     name=batchnorm_name)(x)


def check_input_shape(input_shape, backbone):
    """Reject shapes the backbone cannot take, with the rule, before any layer is built."""
    if len(input_shape) != 3 or input_shape[2] != 3:
        raise SettingError(f"input_shape must be (height, width, 3), got {tuple(input_shape)}")
    low = MIN_INPUT_SIDE[backbone]
    if min(input_shape[:2]) < low:
        raise SettingError(f"backbone {backbone!r} needs an input side of at least {low}, "
                           f"got {tuple(input_shape)}")


def facenet(input_shape=(160, 160, 3), num_classes=None, backbone="mobilenet", mode="train",
            embedding_size=128, dropout_keep_prob=0.5):
    """Build FaceNet.

    mode "predict": one output, the L2-normalised embedding named "Embedding".
    mode "train": `[Softmax, Embedding]`, the class probabilities over `num_classes` computed
    from the pre-normalisation embedding, and the same normalised embedding.
    """
    if backbone not in BACKBONES:
        raise SettingError(f"unknown backbone {backbone!r}; choose one of {sorted(BACKBONES)}")
    if mode not in MODES:
        raise SettingError(f"unknown mode {mode!r}; choose one of {list(MODES)}")
    if mode == "train" and (num_classes is None or int(num_classes) < 2):
        raise SettingError(f"train mode needs num_classes >= 2, got {num_classes!r}")
    input_shape = tuple(int(s) for s in input_shape)
    check_input_shape(input_shape, backbone)

    features_fn, batchnorm_name = BACKBONES[backbone]
    inputs = keras.Input(shape=input_shape, name="input_image")
    pre_embedding = bottleneck_head(features_fn(inputs), batchnorm_name, embedding_size,
                                    dropout_keep_prob)
    embedding = L2Normalize(axis=-1, name="Embedding", dtype="float32")(pre_embedding)
    if mode == "predict":
        return keras.Model(inputs, embedding, name=f"facenet_{backbone}")
    logits = layers.Dense(int(num_classes), name="Logits")(pre_embedding)
    softmax = layers.Activation("softmax", name="Softmax", dtype="float32")(logits)
    return keras.Model(inputs, [softmax, embedding], name=f"facenet_{backbone}")


def embedding_model(model):
    """The predict-mode view of a train-mode model (shares its layers and weights)."""
    return keras.Model(model.input, model.get_layer("Embedding").output, name=model.name)
