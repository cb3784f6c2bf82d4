"""Every module of facenet/, nets/ and utils/ has its tests in tests/test_<module>.py, so that
a module's tests are found by its name."""
import glob
import os

from conftest import ROOT

# Modules whose tests sit in another file, and that file.
ELSEWHERE = {
    # the augmented views exist for distillation, and are tested through it
    "facenet/augment.py": "test_distillation.py",
}


def modules():
    """'package/module.py' for each module of the three library packages."""
    return [os.path.relpath(path, ROOT) for package in ("facenet", "nets", "utils")
            for path in sorted(glob.glob(os.path.join(ROOT, package, "*.py")))
            if os.path.basename(path) != "__init__.py"]


def file_for(module):
    return ELSEWHERE.get(module, f"test_{os.path.basename(module)}")


def test_every_module_has_a_test_file_named_after_it():
    missing = [f"{m} -> tests/{file_for(m)}" for m in modules()
               if not os.path.isfile(os.path.join(ROOT, "tests", file_for(m)))]
    assert missing == [], "modules without their test file"


def test_every_exception_names_a_module_that_exists():
    assert set(ELSEWHERE) <= set(modules())
