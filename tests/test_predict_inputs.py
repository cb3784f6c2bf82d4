"""predict.py: what can fail without the model fails before it loads, in one line; the verdict
is printed before the figure is saved; the interactive loop takes pasted (quoted) paths and
says at once that a path is wrong."""
import io
import os
import subprocess
import sys
import types

import numpy as np
import pytest
from PIL import Image

import predict
from conftest import ROOT
from utils.errors import FacenetError, ImageLoadError

# not a model: an error about it means the model was about to load
NO_MODEL = os.path.join(ROOT, "requirements.txt")


def predict_py(*args, close_stdin=False):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    r = subprocess.run([sys.executable, "predict.py", "--model-path", NO_MODEL, *args], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=600,
                       stdin=None if close_stdin else subprocess.DEVNULL,
                       preexec_fn=(lambda: os.close(0)) if close_stdin else None)
    assert r.returncode != 0 and "requirements.txt" not in r.stderr, r.stderr[-2000:]
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    return r.stderr


@pytest.fixture()
def photos(tmp_path):
    paths = [tmp_path / "my photo.jpg", tmp_path / "other one.jpg"]
    for p in paths:
        Image.new("RGB", (8, 8)).save(p)
    return [str(p) for p in paths]


def test_closed_stdin_without_images_fails_at_once():
    assert "stdin is closed" in predict_py(close_stdin=True)


def test_out_naming_a_folder_or_under_a_file_fails_before_the_model(tmp_path, photos):
    assert "--out" in predict_py(*photos, "--out", str(tmp_path))
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    message = predict_py(*photos, "--out", str(blocker / "figures" / "p.png"))
    assert "--out" in message and "is a file, not a folder" in message


def test_a_missing_or_corrupt_photo_fails_before_the_model(tmp_path, photos):
    assert f"image not found: {tmp_path / 'gone.jpg'}" in predict_py(photos[0],
                                                                      str(tmp_path / "gone.jpg"))
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8 not a jpeg")
    assert f"cannot read image {corrupt}" in predict_py(str(corrupt), photos[1])


def test_a_mistyped_model_path_is_refused_with_the_options(photos):
    r = subprocess.run([sys.executable, "predict.py", "--model-path", "no/such.weights.h5",
                        *photos], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "argument --model-path: no such file: no/such.weights.h5" in r.stderr
    assert "card" not in r.stderr


class FakeModel:
    """Compares files without a network: what predict.py does around the model."""
    align = "off"

    def __init__(self):
        self.compared = []

    def compare(self, a, b, **drawing):
        for p in (a, b):
            if not os.path.exists(p):
                raise ImageLoadError(f"image not found: {p}")
        self.compared.append((a, b))
        return types.SimpleNamespace(distance=0.5, threshold=1.1, verdict="same", faces=(),
                                     crops=np.zeros((2, 8, 8, 3), np.uint8))


def test_the_verdict_is_printed_before_a_figure_that_cannot_be_saved(tmp_path, photos,
                                                                      capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(FacenetError, match="cannot save the figure to .*p.png"):
        predict.compare(FakeModel(), *photos, str(blocker / "p.png"), False)
    assert "distance 0.5000, threshold 1.1000: same" in capsys.readouterr().out


def test_a_figure_that_replaces_an_earlier_one_says_so(tmp_path, photos, capsys):
    out = str(tmp_path / "predict.png")
    predict.compare(FakeModel(), *photos, out, False)
    assert capsys.readouterr().out.splitlines()[-1] == f"  figure: {out}"
    predict.compare(FakeModel(), *photos, out, False)
    assert capsys.readouterr().out.splitlines()[-1] == (f"  figure: {out} (replaced the "
                                                        f"previous one)")


def test_interactive_takes_quoted_paths_and_flags_a_bad_one_at_once(photos, monkeypatch,
                                                                     capsys):
    a, b = photos
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"no/such.jpg\n'{a}'\n\"{b}\"\n"))
    model = FakeModel()
    predict.interactive(model, "", False)
    out = capsys.readouterr().out
    assert out.index("no/such.jpg: not found") < out.index("Input image_2")
    assert model.compared == [(a, b)]
