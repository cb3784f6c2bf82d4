"""The names the library accepts, in one module that imports nothing: the scripts offer them as
argparse choices without loading TensorFlow, and the code that acts on a name checks it against
the same tuple (tests/test_choices.py holds each such place to it)."""

BACKBONES = ("mobilenet", "inception_resnetv1")  # built by nets/facenet.py
MODES = ("train", "predict")  # the outputs of nets.facenet.facenet
PREPROCESSINGS = ("scale01", "standardize")  # utils/image.py (NumPy), utils/tf_preprocessing.py
PRECISIONS = ("float32", "bfloat16", "int8", "auto")  # utils/precision.py; int8: facenet/engine.py
TRAINING_PRECISIONS = ("auto", "float32", "bfloat16")  # distillation.py: a student
TEACHER_PRECISIONS = ("auto", "int8")  # distillation.py: the teacher's targets (int8: ONNX)
MIX_MODES = ("mixup", "cutmix")  # mixed distillation views: facenet/training/augment.py
ENGINES = ("auto", "keras", "onnx")  # facenet/engine.py
STRATEGIES = ("auto", "single", "mirrored", "multiworker")  # facenet/training/distribute.py
OPTIMIZERS = ("adam", "sgd")  # facenet/training/config.py; learning-rate ranges: nets/schedules.py
LR_DECAY_TYPES = ("cos", "step")  # nets/schedules.py
