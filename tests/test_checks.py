"""A threshold or a rate given by the user is checked wherever it enters: a NaN, negative or
infinite threshold would decide every pair the same way and exit 0."""
import numpy as np
import pytest

from utils.checks import check_rate, check_threshold
from utils.errors import SettingError

BAD_THRESHOLDS = [float("nan"), -1, 0, float("inf"), 2, 2.5, "x", None, True]
BAD_RATES = [float("nan"), -0.1, 0, 1.5, float("inf"), "x"]


@pytest.mark.parametrize("value", BAD_THRESHOLDS)
def test_bad_thresholds_are_refused(value):
    with pytest.raises(SettingError, match="threshold must be a distance above 0 and below 2"):
        check_threshold(value)


def test_good_values_pass():
    assert check_threshold("1.1") == 1.1 and check_threshold(1e-6) == 1e-6
    assert check_rate("0.01") == 0.01 and check_rate(1) == 1.0


@pytest.mark.parametrize("value", BAD_RATES)
def test_bad_rates_are_refused(value):
    with pytest.raises(SettingError, match="must be a rate above 0 and at most 1"):
        check_rate(value, "far")


@pytest.mark.parametrize("argv", [
    ["predict.py", "a.jpg", "b.jpg", "--threshold", "nan"],
    ["predict.py", "a.jpg", "b.jpg", "--threshold", "-1"],
    ["predict.py", "a.jpg", "b.jpg", "--threshold", "inf"],
    ["eval_lfw.py", "--far", "nan"],
    ["gallery", "identify", "g.db", "x.jpg", "--threshold", "nan"],
    ["gallery", "identify", "g.db", "x.jpg", "--target-far", "2"],
    ["gallery", "enroll", "g.db", "people", "--threshold", "0"],
])
def test_every_command_refuses_them_before_any_work(argv, capsys):
    """argparse refuses the value (exit 2, one line naming it) before a model is loaded."""
    import eval_lfw
    import predict
    from facenet import gallery

    parse = {"predict.py": predict.parse_args, "eval_lfw.py": eval_lfw.parse_args,
             "gallery": gallery.build_parser().parse_args}[argv[0]]
    with pytest.raises(SystemExit) as e:
        parse(argv[1:])
    assert e.value.code == 2
    assert "must be a" in capsys.readouterr().err


def test_the_library_refuses_them(tmp_path):
    """Every Python entry point of a threshold or rate: the predictor's comparisons (checked
    before any image is read), the gallery's identification, the LFW metrics."""
    from facenet.gallery import Gallery
    from facenet.predictor import Facenet
    from utils.metrics import summarize

    predictor = Facenet.__new__(Facenet)  # compare() checks before it touches the model
    predictor.threshold = 1.0
    predictor.prepare_faces = lambda images: pytest.fail("the images were read first")
    for call in (predictor.compare, predictor.verify, predictor.compare_all):
        with pytest.raises(SettingError):
            call("a.jpg", "b.jpg", threshold=float("nan"))
    with pytest.raises(SettingError):
        Facenet.from_keras(None, threshold=-1)
    identity = {"model": "m", "weights_sha256": "a", "embedding_size": 4,
                "input_shape": [1, 1, 3], "align": True}
    g = Gallery(tmp_path / "g.db", identity, threshold=1.0, far_table={"0.01": 0.9})
    g.add("ann", np.eye(4, dtype=np.float32)[:1], ["a"])
    for kwargs in ({"threshold": float("inf")}, {"threshold": -1}, {"target_far": 0}):
        with pytest.raises(SettingError):
            g.identify_embeddings(np.eye(4, dtype=np.float32)[1:2], **kwargs)
    with pytest.raises(SettingError):
        summarize(np.array([0.5, 1.5]), np.array([True, False]), np.array([0, 1]),
                  far_target=float("nan"))
