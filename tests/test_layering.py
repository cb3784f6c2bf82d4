"""Imports run one way, utils <- nets <- facenet: a lower layer never imports a higher one, at
the top of a module or inside a function (a deferred import is still a dependency)."""
import ast
import glob
import os

import pytest

from conftest import ROOT

ABOVE = {"utils": ("nets", "facenet"), "nets": ("facenet",)}


def upward_imports(path, above):
    """'file:line: module' for each import in `path` of a package named in `above`."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            if name.split(".")[0] in above:
                yield f"{os.path.relpath(path, ROOT)}:{node.lineno}: {name}"


@pytest.mark.parametrize("package", sorted(ABOVE))
def test_lower_layers_never_import_the_layers_above(package):
    found = [hit for path in sorted(glob.glob(os.path.join(ROOT, package, "**", "*.py"),
                                              recursive=True))
             for hit in upward_imports(path, ABOVE[package])]
    assert found == [], f"{package}/ imports {ABOVE[package]}: move what it needs down"


def test_the_check_sees_imports_inside_functions(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("import os\nfrom utils.fileio import atomic_path\n\n\ndef f():\n"
                    "    from facenet.weights import read_card\n    import nets.facenet\n")
    assert [hit.split(":", 1)[1] for hit in upward_imports(str(path), ("nets", "facenet"))] \
        == ["6: facenet.weights", "7: nets.facenet"]
