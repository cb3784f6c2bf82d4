"""A user's commands print none of TensorFlow's start-up chatter; --verbose brings it back."""
import os
import re
import subprocess
import sys

import pytest
from PIL import Image

from conftest import ROOT

GLOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d", re.M)  # TensorFlow's C++ log lines
IMPORT_TF = """
import sys
from utils.quiet import quiet_tensorflow
print("quieted", quiet_tensorflow(verbose=True if "--verbose" in sys.argv else None))
import tensorflow as tf
print(float(tf.reduce_sum(tf.ones(3))))
"""


def run(args, **env):
    """A fresh Python as a user starts it: no TF_CPP_MIN_LOG_LEVEL, no FACENET_VERBOSE."""
    clean = {k: v for k, v in os.environ.items()
             if k not in ("TF_CPP_MIN_LOG_LEVEL", "FACENET_VERBOSE")}
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**clean, **env})


def test_filter_drops_chatter_and_passes_everything_else():
    code = ("import os, sys\n"  # run from the repository root: it is on the path
            "from utils.quiet import filtered_stderr\n"
            "with filtered_stderr():\n"
            "    os.write(2, b'before\\n')\n"
            "    os.write(2, b'I0000 00:00:17.1 1 port.cc:153] oneDNN custom operations are on.\\n')\n"
            "    os.write(2, b'To enable the following instructions: AVX2 FMA, in other ...\\n')\n"
            "    print('from python', file=sys.stderr)\n"
            "print('after', file=sys.stderr)\n")
    r = run(["-c", code])
    assert r.returncode == 0 and r.stderr.splitlines() == ["before", "from python", "after"]


@pytest.mark.slow
def test_tensorflow_import_is_quiet_unless_asked():
    loud = run(["-c", IMPORT_TF, "x", "--verbose"])
    assert loud.returncode == 0, loud.stderr[-2000:]
    assert "quieted False" in loud.stdout
    if not GLOG_LINE.search(loud.stderr):
        pytest.skip("this TensorFlow prints no start-up lines here: nothing to hide")
    quiet = run(["-c", IMPORT_TF, "x"])
    assert quiet.returncode == 0 and "3.0" in quiet.stdout and "quieted True" in quiet.stdout
    assert quiet.stderr == "", quiet.stderr
    by_env = run(["-c", IMPORT_TF], FACENET_VERBOSE="1")
    assert GLOG_LINE.search(by_env.stderr), by_env.stderr


@pytest.mark.slow
def test_benchmarks_import_tensorflow_quietly():
    loud = run(["-c", "import tensorflow"])
    if not GLOG_LINE.search(loud.stderr):
        pytest.skip("this TensorFlow prints no start-up lines here: nothing to hide")
    quiet = run(["-c", "import benchmarks, tensorflow"])
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr


@pytest.mark.slow
def test_predict_quiet_prints_only_its_answer(pretrained_path, lfw, tmp_path):
    """None of TensorFlow's lines, including MTCNN's "Local rendezvous is aborting" on a photo
    without a face, and with --quiet none of the command's own info lines either."""
    blank = str(tmp_path / "blank.png")
    Image.new("RGB", (300, 300), (40, 120, 200)).save(blank)
    face = os.path.join(lfw[0], "Colin_Powell", "Colin_Powell_0001.jpg")
    r = run(["predict.py", face, blank, "--out", "", "--quiet"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stderr == "", r.stderr
    assert not GLOG_LINE.search(r.stdout) and "distance" in r.stdout
    assert "no face found: compared the whole image" in r.stdout  # the answer says it
