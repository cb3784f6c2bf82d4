"""Every module of facenet/, nets/ and utils/ has its tests in a file named after it, so that a
module's tests are found by its name: tests/test_<module>.py, and for a module of a subpackage
tests/test_<subpackage>_<module>.py (facenet/training/data.py: tests/test_training_data.py)."""
import glob
import os

from conftest import ROOT

PACKAGES = ("facenet", "nets", "utils")


def modules():
    """'package/[subpackage/]module.py' for each module of the three library packages."""
    found = []
    for package in PACKAGES:
        for path in sorted(glob.glob(os.path.join(ROOT, package, "**", "*.py"), recursive=True)):
            if os.path.basename(path) != "__init__.py":
                found.append(os.path.relpath(path, ROOT).replace(os.sep, "/"))
    return found


def file_for(module):
    """The test file of `module`: its path below the top package, joined by underscores."""
    parts = module[:-len(".py")].split("/")[1:]
    return f"test_{'_'.join(parts)}.py"


def test_every_module_has_a_test_file_named_after_it():
    missing = [f"{m} -> tests/{file_for(m)}" for m in modules()
               if not os.path.isfile(os.path.join(ROOT, "tests", file_for(m)))]
    assert missing == [], "modules without their test file"


def test_subpackage_modules_are_found_and_named_with_their_subpackage():
    assert "facenet/training/data.py" in modules()
    assert file_for("facenet/training/data.py") == "test_training_data.py"
    assert file_for("nets/losses.py") == "test_losses.py"
