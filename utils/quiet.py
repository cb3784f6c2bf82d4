"""Keep TensorFlow's start-up chatter off a user's terminal.

Before doing anything, TensorFlow prints a dozen lines: oneDNN and CUDA notices, the CPU
instructions it was not built for, a failed cuInit where there is no GPU. Some come from C++
code that writes to file descriptor 2 before it reads TF_CPP_MIN_LOG_LEVEL, so that variable
alone cannot hide them. `quiet_tensorflow()`, called by each command before anything imports
TensorFlow (which stays lazy: a command that needs no model does not pay for it):

- sets TF_CPP_MIN_LOG_LEVEL=2 unless the user set it: no C++ INFO or WARNING lines later, such
  as MTCNN's "Local rendezvous is aborting" when a photo has no face;
- runs the first import of TensorFlow, and the GPU probe that logs cuInit, with file descriptor
  2 piped through a filter that drops the known chatter (CHATTER) and passes on every other
  line;
- hides Keras's and TensorFlow's Python warnings and their loggers below ERROR.

A command's `--verbose` (facenet/cli.py) or FACENET_VERBOSE=1 leaves TensorFlow's output as
it is. oneDNN stays on: TF_ENABLE_ONEDNN_OPTS changes speed and numerics.
"""
import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import warnings

VERBOSE_ENV = "FACENET_VERBOSE"
# Set by quiet_tensorflow: the processes a quieted command starts (align_dataset's workers)
# quiet themselves alike (quiet_like_parent).
QUIETED_ENV = "FACENET_QUIETED"
# Lines TensorFlow (2.16-2.21) writes at start-up on CPU and GPU machines; anything else passes.
CHATTER = re.compile("|".join([
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called",
    r"oneDNN custom operations are on",
    r"Could not find cuda drivers on your machine",
    r"cpu_feature_guard\.cc",
    r"^To enable the following instructions: ",
    r"failed call to cuInit",
    r"Unable to register cu(DNN|FFT|BLAS) factory",
    r"computation placer already registered",
    r"TF-TRT Warning: Could not find TensorRT",
    r"Local rendezvous is aborting",
]))
# Run in a separate process, so that lines written just before a crash inside the import (a
# C++ abort) still reach the terminal: a thread would die with the process.
_FILTER = ("import re, sys\n"
           "chatter = re.compile(sys.argv[1].encode())\n"
           "for line in sys.stdin.buffer:\n"
           "    if not chatter.search(line):\n"
           "        sys.stdout.buffer.write(line)\n"
           "        sys.stdout.buffer.flush()\n")


def verbose_requested(environ=os.environ):
    """True when FACENET_VERBOSE asks for TensorFlow's own output."""
    return environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def quiet_tensorflow(verbose=None):
    """Quiet TensorFlow for this process unless `verbose` is true (None: unless FACENET_VERBOSE
    asks for its output). Returns True when it did."""
    if verbose is None:
        verbose = verbose_requested()
    if verbose:
        os.environ.pop(QUIETED_ENV, None)
        return False
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ[QUIETED_ENV] = "1"
    warnings.filterwarnings("ignore", module=r"(keras|tensorflow|absl)(\.|$)")
    if "tensorflow" in sys.modules:
        _quiet_python_loggers()
    elif not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())
    return True


def quiet_like_parent():
    """In a process a command started (a worker): quiet TensorFlow if the command did."""
    if os.environ.get(QUIETED_ENV) == "1":
        quiet_tensorflow(verbose=False)


@contextlib.contextmanager
def filtered_stderr(pattern=CHATTER):
    """Inside the block, lines written to file descriptor 2 (by Python or by C++) that match
    `pattern` are dropped; the others reach the real stderr, in order, before the block ends.
    Without a way to filter (no fd 2, no interpreter to run the filter) the block runs as is."""
    import subprocess

    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    read, write = os.pipe()
    try:
        child = subprocess.Popen([sys.executable, "-I", "-S", "-c", _FILTER, pattern.pattern],
                                 stdin=read, stdout=saved, stderr=saved)
    except (OSError, ValueError):
        for fd in (read, write, saved):
            os.close(fd)
        yield
        return
    os.close(read)
    os.dup2(write, 2)
    os.close(write)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last write end closes: the filter drains it and ends
        os.close(saved)
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:  # something started inside still holds the pipe
            pass


def _quiet_python_loggers():
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging
    except ImportError:
        return
    absl_logging.set_verbosity(absl_logging.ERROR)


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` on its first import and hands it a loader that runs it filtered."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__spec__.loader = module.__loader__ = self.loader  # the module keeps the real one
        with filtered_stderr():
            self.loader.exec_module(module)
            # the first look for a GPU logs a failed cuInit where there is none: look now
            with contextlib.suppress(Exception):
                module.config.list_physical_devices("GPU")
        _quiet_python_loggers()
