"""LFW scoring over any predictor: each distinct image is embedded once, distances are taken per
pair, and pairs without their images are refused or left out before any model loads."""
import numpy as np
import pytest

from facenet.evaluation import check_images, embed_distinct, evaluate_pairs, load_lfw_pairs
from utils.errors import PairsFileError
from utils.lfw import Pair


class StubPredictor:
    """Embeds path k of its table as unit vector table[k]; counts what it is asked to embed."""

    align = "off"

    def __init__(self, table):
        self.table, self.asked = table, []
        self.embedding_size = 2

    def iter_embeddings(self, paths, batch_size=None, flip=False):
        self.asked += paths
        for start in range(0, len(paths), 2):
            yield np.array([self.table[p] for p in paths[start:start + 2]], np.float32)


def unit(degrees):
    return [np.cos(np.radians(degrees)), np.sin(np.radians(degrees))]


def test_each_distinct_image_is_embedded_once():
    stub = StubPredictor({"a": unit(0), "b": unit(90)})
    table = embed_distinct(stub, ["a", "b", "a", "b", "a"], progress=False)
    assert stub.asked == ["a", "b"] and set(table) == {"a", "b"}
    assert embed_distinct(stub, [], progress=False) == {}


def test_pairs_are_scored_by_the_distance_of_their_embeddings():
    angles = {"s1": 0, "s2": 10, "d1": 0, "d2": 120, "s3": 50, "s4": 60, "d3": 50, "d4": 170}
    stub = StubPredictor({p: unit(a) for p, a in angles.items()})
    pairs = [Pair("s1", "s2", True, 0, 1), Pair("d1", "d2", False, 0, 2),
             Pair("s3", "s4", True, 1, 3), Pair("d3", "d4", False, 1, 4)]
    report = evaluate_pairs(stub, pairs, progress=False)
    d_same, d_diff = 2 * np.sin(np.radians(5)), 2 * np.sin(np.radians(60))
    np.testing.assert_allclose(report["distances"], [d_same, d_diff, d_same, d_diff], rtol=1e-5)
    assert report["pairs"] == 4 and report["images"] == 8
    assert report["best_threshold_accuracy"] == 1.0


def test_missing_images_are_refused_or_left_out_before_the_model(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    here, gone = str(tmp_path / "a.jpg"), str(tmp_path / "gone.jpg")
    pairs = [Pair(here, here, True, 0, 1), Pair(here, gone, False, 0, 2)]
    with pytest.raises(PairsFileError, match="(?s)1 pair images are missing.*gone.jpg"):
        check_images(pairs)
    assert check_images(pairs, skip_missing=True) == ([pairs[0]], 1)
    pairs_file = tmp_path / "pairs.txt"
    pairs_file.write_text("Ann 1 2\n")
    with pytest.raises(PairsFileError, match="no pair of .*pairs.txt has both images under"):
        load_lfw_pairs(str(pairs_file), str(tmp_path), skip_missing=True)


def test_a_mistyped_lfw_folder_is_named_not_counted_as_missing_images(tmp_path):
    pairs_file = tmp_path / "pairs.txt"
    pairs_file.write_text("Ann 1 2\nAnn 1 Bob 1\n")
    with pytest.raises(PairsFileError, match=f"LFW image folder not found: {tmp_path / 'lwf'} "):
        load_lfw_pairs(str(pairs_file), str(tmp_path / "lwf"))


def test_one_fold_has_one_meaning_in_eval_lfw_and_in_training():
    """Both report the accuracy at the fold's own best threshold, named as not
    cross-validated (training's check gave it unnamed, eval_lfw.py called it undefined)."""
    from eval_lfw import format_report
    from facenet.evaluation import headline_accuracy
    from utils.metrics import summarize

    distances, same = np.array([0.2, 1.5, 0.4, 1.2, 1.3, 0.9]), np.array([1, 0, 1, 0, 1, 0], bool)
    one = summarize(distances, same, np.zeros(6, int))
    accuracy, what = headline_accuracy(one)
    assert accuracy == one["best_threshold_accuracy"] and accuracy == pytest.approx(5 / 6)
    assert what.startswith("one fold: at its own best threshold") and "not cross" in what
    one.update(pairs=6, images=12, missing_images=0, flip=False, wall_seconds=1.0)
    assert f"Accuracy: 83.33% ({what}); threshold: undefined" in format_report(one)
    two = summarize(distances, same, np.array([0, 0, 0, 1, 1, 1]))
    assert headline_accuracy(two) == (two["accuracy_mean"], "mean over 2 folds")
