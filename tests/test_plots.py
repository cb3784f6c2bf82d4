"""Figures are written headless, into folders made for them, as PNG files."""
from types import SimpleNamespace

import numpy as np
from PIL import Image

from utils.plots import draw_pair, plot_roc


def test_the_side_by_side_figure_is_a_png(tmp_path):
    out = tmp_path / "new" / "pair.png"
    face = np.zeros((16, 16, 3), np.uint8)
    draw_pair(face, face + 200, SimpleNamespace(distance=0.5, threshold=1.1, verdict="same"),
              out=str(out))
    assert Image.open(out).format == "PNG"


def test_the_roc_curve_is_a_png(tmp_path):
    out = tmp_path / "new" / "roc.png"
    plot_roc(np.array([0.0, 0.1, 1.0]), np.array([0.0, 0.9, 1.0]), 0.95, str(out))
    assert Image.open(out).size == (500, 500)  # 5 x 5 inches at 100 dpi
