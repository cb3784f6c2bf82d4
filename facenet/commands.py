"""Console scripts (pyproject.toml's [project.scripts]) for the repository's top-level scripts.

predict.py, eval_lfw.py, train.py and txt_annotation.py stay scripts in the repository root, as
in the original; `facenet-predict` and the others run them as `python predict.py` would, from
the checkout that the editable install points at.
"""
import os
import runpy

from utils.errors import FacenetError, cli_errors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_script(name):
    """Run ROOT/<name>.py as __main__ (its logger is then the command's own: facenet/cli.py)."""
    path = os.path.join(ROOT, f"{name}.py")
    if not os.path.isfile(path):
        with cli_errors():
            raise FacenetError(f"{path} is missing: facenet-keras runs from its checkout; install "
                               f"it with `python -m pip install -e .` in the repository")
    runpy.run_path(path, run_name="__main__")


def predict():
    run_script("predict")


def eval_lfw():
    run_script("eval_lfw")


def train():
    run_script("train")


def txt_annotation():
    run_script("txt_annotation")
