"""FaceNet for TensorFlow 2 / Keras 3: compare faces, embed them, evaluate on LFW.

Importing this package is cheap; TensorFlow loads on first use of `Facenet`.
"""
import importlib.util
import os

__all__ = ["Facenet", "Verification"]


def _check_sibling_packages():
    """`nets` and `utils` are top-level packages (the original's layout) with generic names:
    another module of the same name earlier on sys.path would be imported in their place and
    fail later in a puzzling way. Say so now, naming the file (docs/design.md#installing)."""
    root = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    for name in ("nets", "utils"):
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
        if origin is None or os.path.dirname(os.path.dirname(os.path.realpath(origin))) != root:
            raise ImportError(f"facenet needs its own '{name}' package from {root}, but Python "
                              f"finds {origin or 'none'}: rename that module, or run from "
                              f"another folder (see docs/design.md#installing)")


_check_sibling_packages()


def __getattr__(name):
    if name in __all__:
        from facenet import predictor

        return getattr(predictor, name)
    raise AttributeError(name)
