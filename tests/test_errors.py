"""Every error class of the library is a FacenetError, the one type the scripts catch to print
a line instead of a traceback."""
import ast
import glob
import importlib
import os

from conftest import ROOT
from utils import errors


def error_classes():
    """(module, class name) of every class named *Error in facenet/, nets/ and utils/."""
    for package in ("facenet", "nets", "utils"):
        for path in sorted(glob.glob(os.path.join(ROOT, package, "*.py"))):
            tree = ast.parse(open(path, encoding="utf-8").read(), path)
            module = f"{package}.{os.path.basename(path)[:-3]}"
            yield from ((module, node.name) for node in tree.body
                        if isinstance(node, ast.ClassDef) and node.name.endswith("Error"))


def test_every_error_class_is_a_facenet_error():
    found = list(error_classes())
    assert ("utils.annotation", "AnnotationError") in found and len(found) >= 9
    stray = [f"{m}.{name}" for m, name in found
             if not issubclass(getattr(importlib.import_module(m), name), errors.FacenetError)]
    assert stray == []
