"""The FaceNet model: a backbone, the 128-d bottleneck head, and the train/predict outputs."""
import keras
from keras import layers

from nets.inception_resnetv1 import inception_resnetv1_features, inception_resnetv1_head
from nets.layers import L2Normalize
from nets.mobilenet import mobilenet_features, mobilenet_head

BACKBONES = {
    "mobilenet": (mobilenet_features, mobilenet_head),
    "inception_resnetv1": (inception_resnetv1_features, inception_resnetv1_head),
}
MODES = ("train", "predict")
# Smallest input side each backbone takes (valid convolutions shrink Inception-ResNet-V1).
MIN_INPUT_SIDE = {"mobilenet": 32, "inception_resnetv1": 75}


def check_input_shape(input_shape, backbone):
    """Reject shapes the backbone cannot take, with the rule, before any layer is built."""
    if len(input_shape) != 3 or input_shape[2] != 3:
        raise ValueError(f"input_shape must be (height, width, 3), got {tuple(input_shape)}")
    low = MIN_INPUT_SIDE[backbone]
    if min(input_shape[:2]) < low:
        raise ValueError(f"backbone {backbone!r} needs an input side of at least {low}, "
                         f"got {tuple(input_shape)}")


def facenet(input_shape=(160, 160, 3), num_classes=None, backbone="mobilenet", mode="train",
            embedding_size=128, dropout_keep_prob=0.5):
    """Build FaceNet.

    mode "predict": one output, the L2-normalised embedding named "Embedding".
    mode "train": `[Softmax, Embedding]`, the class probabilities over `num_classes` computed
    from the pre-normalisation embedding, and the same normalised embedding.
    """
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {sorted(BACKBONES)}")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {list(MODES)}")
    if mode == "train" and (num_classes is None or int(num_classes) < 2):
        raise ValueError(f"train mode needs num_classes >= 2, got {num_classes!r}")
    input_shape = tuple(int(s) for s in input_shape)
    check_input_shape(input_shape, backbone)

    features_fn, head_fn = BACKBONES[backbone]
    inputs = keras.Input(shape=input_shape, name="input_image")
    pre_embedding = head_fn(features_fn(inputs), embedding_size, dropout_keep_prob)
    embedding = L2Normalize(axis=-1, name="Embedding", dtype="float32")(pre_embedding)
    if mode == "predict":
        return keras.Model(inputs, embedding, name=f"facenet_{backbone}")
    logits = layers.Dense(int(num_classes), name="Logits")(pre_embedding)
    softmax = layers.Activation("softmax", name="Softmax", dtype="float32")(logits)
    return keras.Model(inputs, [softmax, embedding], name=f"facenet_{backbone}")


def embedding_model(model):
    """The predict-mode view of a train-mode model (shares its layers and weights)."""
    return keras.Model(model.input, model.get_layer("Embedding").output, name=model.name)
