"""The `Facenet` predictor over a small untrained model: settings and their defaults, unit
embeddings of any image kind, and the same/different decision at the threshold."""
import json
import logging

import numpy as np
import pytest
from PIL import Image

from conftest import mobilenet_with_statistics
from facenet.predictor import FALLBACK_THRESHOLD, Facenet, Verification


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """Random weights whose embeddings differ (conftest.mobilenet_with_statistics)."""
    path = tmp_path_factory.mktemp("model") / "m.weights.h5"
    mobilenet_with_statistics(32).save_weights(str(path))
    return path


def load(path, **settings):
    return Facenet(str(path), input_shape=(32, 32, 3), align="off", precision="float32",
                   fold_batchnorm=False, **settings)


@pytest.fixture(scope="module")
def model(weights_file):
    return load(weights_file)


def test_without_a_card_the_defaults_hold_and_the_fallback_threshold_is_said(weights_file,
                                                                            caplog):
    model = load(weights_file)
    assert (model.backbone, model.preprocessing) == ("mobilenet", "scale01")
    assert model.threshold == FALLBACK_THRESHOLD
    said = [r for r in caplog.records if r.name == "facenet.predictor"]
    # caplog sees warnings unconfigured: what was assumed, then the threshold
    assert [r.levelno for r in said] == [logging.WARNING, logging.WARNING]
    assert "has no model card beside it" in said[0].getMessage()
    # the input size was given (load's 32x32), so only the preprocessing is assumed
    assert "reading it with preprocessing scale01;" in said[0].getMessage()
    assert "no model card with a calibrated threshold" in said[1].getMessage()


def test_the_card_fills_what_the_caller_left_unset(weights_file):
    card = {"backbone": "mobilenet", "preprocessing": "standardize", "threshold": 0.9}
    weights_file.with_name("m.json").write_text(json.dumps(card))
    try:
        assert load(weights_file).preprocessing == "standardize"
        assert load(weights_file, threshold=1.2).threshold == 1.2
    finally:
        weights_file.with_name("m.json").unlink()


def test_the_threshold_measured_with_the_engine_and_precision_in_use_wins(weights_file):
    """int8 moves distances a little: its own measured threshold, not float32's, decides."""
    card = {"backbone": "mobilenet", "threshold": 0.9, "aligned": {"threshold": 0.8},
            "engines": {"keras float32": {"threshold": 0.7,
                                          "lfw_centre_crop": {"threshold_mean": 0.95}},
                        "onnx int8": {"threshold": 0.6,
                                      "lfw_centre_crop": {"threshold_mean": 0.5}}}}
    weights_file.with_name("m.json").write_text(json.dumps(card))
    try:
        assert load(weights_file).threshold == 0.95  # centre crop, keras float32's own
        assert load(weights_file, threshold=1.2).threshold == 1.2  # the caller's still wins
        del card["engines"]["keras float32"]
        weights_file.with_name("m.json").write_text(json.dumps(card))
        assert load(weights_file).threshold == 0.9  # none measured for it: the card's
    finally:
        weights_file.with_name("m.json").unlink()


def test_unknown_settings_are_refused_before_any_work():
    with pytest.raises(TypeError, match=r"unknown Facenet settings \['treshold'\]"):
        Facenet("nowhere.weights.h5", treshold=1.0)


def test_every_image_kind_gives_the_same_unit_embedding(model, tmp_path):
    array = np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    Image.fromarray(array).save(tmp_path / "a.png")
    emb = model.embed([str(tmp_path / "a.png"), Image.fromarray(array), array])
    assert emb.shape == (3, 128)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(emb[1:], emb[[0, 0]], atol=1e-6)
    assert model.embed(array).shape == (1, 128) and model.embed([]).shape == (0, 128)


def test_embed_arrays_takes_only_prepared_uint8_crops(model):
    with pytest.raises(TypeError, match="uint8 crops .*use embed"):
        model.embed_arrays(np.zeros((1, 32, 32, 3), np.float32))


def test_the_decision_is_distance_below_threshold(model):
    face = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    other = np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    result = model.compare(face, face)
    assert result.distance < 1e-5 and result.same and result.verdict == "same"
    apart = model.compare(face, other).distance
    assert apart > 1e-3
    assert model.compare(face, other, threshold=apart * 1.01).same
    assert model.compare(face, other, threshold=apart * 0.99).verdict == "different"
    assert not Verification(distance=1.1, threshold=1.1).same  # at the threshold: different


def test_a_missing_weight_file_is_named_before_any_word_about_its_card(caplog):
    from facenet import Facenet
    from utils.errors import WeightFileError

    with pytest.raises(WeightFileError, match="weight file not found: no/such.weights.h5"):
        Facenet("no/such.weights.h5")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
