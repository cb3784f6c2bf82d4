"""predict.py --all-faces: faces are named A1, A2, ... B1, ... alike in the printout and in
the figure, which shows the photos with the named boxes and the pairs' verdicts."""
import types

import numpy as np
import pytest
from PIL import Image

import predict
from facenet.predictor import Verification
from utils.errors import FacenetError

BOXES = {"A": [(10, 10, 40, 50), (60, 12, 90, 52)], "B": [(20, 20, 70, 80)]}


class TwoPhotoModel:
    """Stands in for Facenet.compare_all: two faces in the first photo, one in the second."""
    threshold = 1.0

    def compare_all(self, a, b=None):
        def faces(letter):
            return [types.SimpleNamespace(face=types.SimpleNamespace(box=box, confidence=0.99))
                    for box in BOXES[letter]]

        return faces("A"), faces("B"), [(0, 0, Verification(0.62, 1.0)),
                                        (1, 0, Verification(1.31, 1.0))]


def photos(tmp_path):
    paths = []
    for name in ("group.jpg", "single.jpg"):
        paths.append(str(tmp_path / name))
        Image.fromarray(np.full((100, 120, 3), 90, np.uint8)).save(paths[-1])
    return paths


def test_faces_are_named_alike_in_the_printout_and_the_figure(tmp_path, capsys, monkeypatch):
    import utils.plots

    figures = []
    real = utils.plots.faces_figure
    monkeypatch.setattr(utils.plots, "faces_figure",
                        lambda *a, **k: figures.append(real(*a, **k)) or figures[-1])
    out = tmp_path / "figures" / "faces.png"
    predict.compare_all_faces(TwoPhotoModel(), *photos(tmp_path), out=str(out))
    printed = capsys.readouterr().out
    for line in ("  A1: box (10, 10, 40, 50)", "  A2: box (60, 12, 90, 52)",
                 "  B1: box (20, 20, 70, 80)", "  A1 vs B1: distance 0.6200: same",
                 "  A2 vs B1: distance 1.3100: different", f"  figure: {out}"):
        assert line in printed
    assert Image.open(out).size[0] > 0  # saved where --out says
    (figure,) = figures
    photo_a, photo_b = figure.axes
    assert [t.get_text() for t in photo_a.texts] == ["A1", "A2"]
    assert [t.get_text() for t in photo_b.texts] == ["B1"]
    assert [p.get_xy() for p in photo_a.patches] == [(10, 10), (60, 12)]
    verdicts = " ".join(t.get_text() for t in figure.texts)
    assert "A1 vs B1: distance 0.620, same" in verdicts and "A2 vs B1" in verdicts


def test_all_faces_checks_out_before_the_model_loads(tmp_path):
    args = predict.parse_args(["--all-faces", "a.jpg", "--out", str(tmp_path)])
    with pytest.raises(FacenetError, match="--out .* is a folder"):
        predict.check_before_loading(args)
