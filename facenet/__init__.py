"""FaceNet for TensorFlow 2 / Keras 3: compare faces, embed them, evaluate on LFW.

Importing this package is cheap; TensorFlow loads on first use of `Facenet`.
"""

__all__ = ["Facenet", "Verification"]


def __getattr__(name):
    if name in __all__:
        from facenet import predictor

        return getattr(predictor, name)
    raise AttributeError(name)
