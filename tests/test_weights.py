"""The registry's local side: where weights and cards live, when a model counts as fetched, and
cards that are absent or unreadable (fetching: test_fetch.py; card fields: test_model_card.py)."""
import json

import pytest

from facenet import weights
from utils import fileio
from utils.errors import WeightFileError


def test_card_path_for_is_still_importable_from_the_registry():
    assert weights.card_path_for is fileio.card_path_for


def test_a_model_is_fetched_only_while_its_weights_match_its_card(tmp_path):
    name = weights.DEFAULT_MODEL
    path = weights.weights_path(name, str(tmp_path))
    assert path == str(tmp_path / f"{name}.weights.h5")
    assert not weights.is_fetched(name, str(tmp_path))
    with open(path, "wb") as f:
        f.write(b"stand-in weights")
    assert not weights.is_fetched(name, str(tmp_path))  # no card yet
    fileio.write_json_atomic(weights.card_path_for(path),
                             weights.make_card(weights.MODELS[name], path))
    assert weights.is_fetched(name, str(tmp_path))
    fileio.write_json_atomic(path, "other weights")  # replaced by rename, as every writer does
    assert not weights.is_fetched(name, str(tmp_path))


def test_a_fetched_card_with_older_engine_figures_gets_the_registrys(tmp_path):
    """Each engine decides with its card's threshold: a card written before the registry's
    figures changed would keep deciding with the old ones."""
    name = weights.DEFAULT_MODEL
    path = weights.weights_path(name, str(tmp_path))
    with open(path, "wb") as f:
        f.write(b"stand-in weights")
    card = json.loads(json.dumps(weights.make_card(weights.MODELS[name], path)))
    card["engines"]["onnx int8"]["threshold"] = 1.5
    card["note"] = "the user's own field"
    fileio.write_json_atomic(weights.card_path_for(path), card)
    assert weights.fetch(name, str(tmp_path)) == path
    after = weights.read_card(path)
    assert after["engines"] == json.loads(json.dumps(weights.MODELS[name].engines))
    assert after["note"] == "the user's own field"
    # an entry the user measured (eval_lfw.py --update-card) stays
    after["engines"]["onnx int8"] = {"threshold": 1.2, "measured": "2026-12-03"}
    fileio.write_json_atomic(weights.card_path_for(path), after)
    weights.fetch(name, str(tmp_path))
    assert weights.read_card(path)["engines"]["onnx int8"]["threshold"] == 1.2


def test_no_card_is_none_and_an_unreadable_one_is_named(tmp_path):
    path = tmp_path / "m.weights.h5"
    assert weights.read_card(path) is None
    (tmp_path / "m.json").write_text("{\"threshold\": 1.1,")
    with pytest.raises(WeightFileError, match=r"model card .*m.json is unreadable .*; delete it "
                                              r"or fix it"):
        weights.read_card(path)
    (tmp_path / "m.json").write_text(json.dumps({"threshold": 1.1}))
    assert weights.read_card(path) == {"threshold": 1.1}


def test_the_archive_cache_is_a_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("FACENET_CACHE", str(tmp_path))
    assert weights.cache_dir() == str(tmp_path)
    monkeypatch.delenv("FACENET_CACHE")
    assert weights.cache_dir().endswith(".cache/facenet_keras")
