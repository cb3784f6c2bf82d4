"""eval_lfw.py: bad inputs and outputs end in one line before the model loads; figures the
pairs cannot define are printed as undefined."""
import numpy as np
import pytest

from conftest import run_script
from eval_lfw import card_to_update, format_report
from utils.errors import FacenetError
from utils.metrics import summarize


def eval_lfw(*args):
    """Runs with a file that is not a model: an error about it means the model was about to
    load, so the checked problem was missed."""
    r = run_script(["eval_lfw.py", "--no-progress", "--model-path", "requirements.txt", *args])
    assert r.returncode != 0 and "requirements.txt" not in r.stderr, r.stderr[-2000:]
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    return r.stderr


def test_a_folder_as_pairs_or_report_fails_first(tmp_path):
    assert "is a folder" in eval_lfw("--pairs", str(tmp_path))
    # --report is checked even before the pairs (missing here): not after the evaluation
    message = eval_lfw("--pairs", str(tmp_path / "none.txt"), "--report", str(tmp_path))
    assert "--report" in message and "is a folder" in message
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    assert "--roc" in eval_lfw("--pairs", str(tmp_path / "none.txt"),
                               "--roc", str(blocker / "roc.png"))


def test_a_pairs_file_that_is_not_utf8_names_its_line(tmp_path):
    (tmp_path / "pairs.txt").write_bytes(b"Ann 1 2\n\xe9t\xe9 1 2\n")
    assert "pairs.txt:2: byte 0xe9 is not UTF-8" in eval_lfw("--pairs", str(tmp_path / "pairs.txt"))


@pytest.mark.parametrize("text, problem", [("1 2\nAnn 1 2\nAnn 1 Bob 1\nAnn 2 2\nBob 1 Ann 2\n",
                                            "one fold"),
                                           ("2 1\nAnn 1 2\nAnn 2 2\nBob 1 1\nBob 1 2\n",
                                            "all 'same' pairs")])
def test_update_card_with_pairs_that_cannot_give_a_threshold(tmp_path, text, problem):
    for name in ("Ann", "Bob"):
        (tmp_path / name).mkdir()
        for i in (1, 2):
            (tmp_path / name / f"{name}_{i:04d}.jpg").write_bytes(b"x")
    (tmp_path / "pairs.txt").write_text(text)
    message = eval_lfw("--lfw-dir", str(tmp_path), "--pairs", str(tmp_path / "pairs.txt"),
                       "--update-card")
    assert "--update-card" in message and problem in message


def test_a_model_without_a_card_is_refused_before_the_evaluation(tmp_path):
    class Predictor:
        model_path = str(tmp_path / "mine.weights.h5")

    with pytest.raises(FacenetError, match="no card to update"):
        card_to_update(Predictor())


def test_undefined_figures_are_printed_as_undefined():
    r = summarize(np.array([0.2, 0.4, 0.3, 0.6]), np.ones(4, bool), np.array([0, 0, 1, 1]))
    r.update(pairs=4, images=8, missing_images=0, flip=False, wall_seconds=1.0)
    text = format_report(r)
    assert "AUC, EER: undefined (all 4 pairs are 'same' pairs; both kinds are needed)" in text
    assert "VAL, FAR: undefined (fold 0 has only 'same' pairs" in text
    assert "AUC: 0" not in text and "VAL: 0" not in text


def test_a_figure_format_matplotlib_cannot_write_fails_first(tmp_path):
    message = eval_lfw("--pairs", str(tmp_path / "none.txt"), "--roc", str(tmp_path / "roc.txt"))
    assert "--roc" in message and "cannot be saved as .txt" in message and ".png" in message
    r = run_script(["predict.py", "a.jpg", "b.jpg", "--model-path", "requirements.txt",
                    "--out", str(tmp_path / "pair.txt")])
    assert r.returncode != 0 and "--out" in r.stderr and ".txt" in r.stderr, r.stderr[-2000:]


def test_the_report_is_written_before_the_optional_figure(tmp_path, monkeypatch):
    """A figure that fails after the evaluation (a full disk) no longer loses the report."""
    import json
    from types import SimpleNamespace

    import eval_lfw as script
    import facenet
    import utils.plots

    for name in ("Ann", "Bob"):
        (tmp_path / name).mkdir()
        for i in (1, 2):
            (tmp_path / name / f"{name}_{i:04d}.jpg").write_bytes(b"x")
    (tmp_path / "pairs.txt").write_text("2 1\nAnn 1 2\nAnn 1 Bob 1\nBob 1 2\nBob 2 Ann 2\n")

    class Embedder:  # the predictor's part evaluate_pairs uses: one unit vector per image
        model = SimpleNamespace(output=SimpleNamespace(shape=(None, 4)))
        model_path, precision, align = "fake.weights.h5", "float32", "off"
        embedding_size, engine = 4, "keras"

        def __init__(self, **settings):
            pass

        def iter_embeddings(self, paths, batch_size=None, flip=False):
            x = np.random.default_rng(0).normal(size=(len(paths), 4))
            yield x / np.linalg.norm(x, axis=1, keepdims=True)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(facenet, "Facenet", Embedder)
    monkeypatch.setattr(utils.plots, "plot_roc", disk_full)
    report = tmp_path / "report.json"
    args = script.parse_args(["--lfw-dir", str(tmp_path), "--pairs", str(tmp_path / "pairs.txt"),
                              "--report", str(report), "--roc", str(tmp_path / "roc.png"),
                              "--no-progress"])
    with pytest.raises(FacenetError, match="--roc .*not saved.*No space left"):
        script.run(args, [])
    assert json.loads(report.read_text())["pairs"] == 4
def test_folds_are_chosen_before_the_model(tmp_path):
    (tmp_path / "pairs.txt").write_text("2 1\nAnn 1 2\nAnn 1 Bob 1\nCid 1 3\nBob 2 Cid 2\n")
    pairs = str(tmp_path / "pairs.txt")
    assert "has folds 1-2, not fold 3" in eval_lfw("--lfw-dir", str(tmp_path), "--pairs", pairs,
                                                   "--folds", "3")
    r = run_script(["eval_lfw.py", "--pairs", pairs, "--folds", "0"])
    assert r.returncode == 2 and "argument --folds: folds are counted from 1, got '0'" in r.stderr
