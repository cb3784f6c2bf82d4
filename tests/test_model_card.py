"""Model cards are checked field by field on load: a bad field is one error naming the card."""
import json
import warnings

import pytest

from facenet import weights
from utils.errors import WeightFileError


def registry_card(tmp_path):
    """The card `fetch` writes for the default model (over a stand-in weight file)."""
    stand_in = tmp_path / "stand_in.weights.h5"
    stand_in.write_bytes(b"weights")
    card = weights.make_card(weights.MODELS[weights.DEFAULT_MODEL], str(stand_in))
    return json.loads(json.dumps(card))  # a copy: the card shares dicts with the registry


def write_card(tmp_path, card):
    path = tmp_path / "m.weights.h5"
    (tmp_path / "m.json").write_text(json.dumps(card))
    return path


def test_the_registry_card_passes(tmp_path):
    card = registry_card(tmp_path)
    assert weights.read_card(write_card(tmp_path, card)) == card


BAD = [  # (keys down to the field, value)
    (("threshold",), float("nan")), (("threshold",), -0.5), (("threshold",), "abc"),
    (("threshold",), 0), (("threshold",), True), (("aligned", "threshold"), float("nan")),
    (("aligned", "threshold"), "1.0"), (("aligned",), [1.07]), (("aligned",), "on"),
    (("aligned", "margin"), 0.6), (("aligned", "method"), "warp"), (("input_shape",), "160"),
    (("input_shape",), [160, 160]), (("input_shape",), [160.5, 160, 3]),
    (("backbone",), "resnet50"), (("backbone",), ["mobilenet"]),
    (("preprocessing",), ["scale01"]), (("embedding_size",), -1), (("weights_sha256",), "abc"),
    (("lfw",), 0.98), (("aligned", "identification", "impostor_far"), [1.1]),
    (("aligned", "identification", "impostor_far", "0.01"), float("inf")),
]


@pytest.mark.parametrize("keys,value", BAD, ids=[f"{'.'.join(k)}={v!r}" for k, v in BAD])
def test_a_bad_field_is_named_with_its_card(tmp_path, keys, value):
    card = registry_card(tmp_path)
    section = card
    for key in keys[:-1]:
        section = section[key]
    section[keys[-1]] = value
    with pytest.raises(WeightFileError) as err:
        weights.read_card(write_card(tmp_path, card))
    text = str(err.value)
    assert str(tmp_path / "m.json") in text and f" {'.'.join(keys)} is " in text
    assert "\n" not in text


def test_a_card_that_is_not_an_object(tmp_path):
    with pytest.raises(WeightFileError, match="holds list, not a JSON object"):
        weights.read_card(write_card(tmp_path, [1.1]))


def test_the_predictor_refuses_a_nan_threshold_before_building(tmp_path):
    """Before: the predictor loaded and called every pair "different" (threshold nan)."""
    from facenet import Facenet
    from nets.facenet import facenet

    path = tmp_path / "m.weights.h5"
    facenet((64, 64, 3), backbone="mobilenet", mode="predict").save_weights(str(path))
    card = {"backbone": "mobilenet", "input_shape": [64, 64, 3], "preprocessing": "scale01",
            "threshold": float("nan")}
    (tmp_path / "m.json").write_text(json.dumps(card))
    with warnings.catch_warnings(), pytest.raises(WeightFileError, match="threshold is nan"):
        Facenet(model_path=str(path), align="off")


@pytest.mark.parametrize("engines, field", [
    ({"onnx int8": {"threshold": -1}}, "engines.onnx int8.threshold is -1"),
    ({"onnx int8": [1.0]}, "engines.onnx int8 is \\[1.0\\]"),
    ({"onnx int8": {"lfw_centre_crop": {"threshold_mean": "x"}}},
     "engines.onnx int8.lfw_centre_crop.threshold_mean is 'x'")])
def test_an_engine_threshold_that_would_mislead_is_named(tmp_path, engines, field):
    with pytest.raises(WeightFileError, match=field):
        weights.read_card(write_card(tmp_path, {"threshold": 1.0, "engines": engines}))


def test_a_card_nested_too_deeply_is_unreadable_not_a_recursion_error(tmp_path):
    (tmp_path / "m.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(WeightFileError, match="m.json is unreadable.*RecursionError"):
        weights.read_card(tmp_path / "m.weights.h5")


def test_a_card_beside_a_missing_weight_file(tmp_path):
    from facenet import Facenet

    path = write_card(tmp_path, {"backbone": "mobilenet", "weights_sha256": "0" * 64})
    with pytest.raises(WeightFileError, match=r"weight file not found: .*m.weights.h5 \(its "
                                              r"card .*m.json is there\)"):
        Facenet(model_path=str(path), align="off")


def test_every_json_the_library_reads_refuses_deep_nesting(tmp_path, monkeypatch):
    """The same gap wherever the library reads JSON that a user's file holds."""
    from facenet import gallery_store
    from facenet.training import distribute
    from facenet.training.checkpoints import find_resume_state
    from utils.errors import FacenetError

    deep = "[" * 200_000 + "]" * 200_000
    with pytest.raises(gallery_store.GalleryError, match="field 'identity' is not JSON"):
        gallery_store._json("g.db", "identity", deep)
    (tmp_path / "resume.json").write_text(deep)
    with pytest.raises(FacenetError, match="resume pointer .* is unreadable"):
        find_resume_state(str(tmp_path))
    monkeypatch.setenv("TF_CONFIG", deep)
    with pytest.raises(FacenetError, match="TF_CONFIG is not valid JSON"):
        distribute.tf_config()
