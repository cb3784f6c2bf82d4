"""The fetched default model: card, LFW fold 1 accuracy, embed/verify API, bad-card errors."""
import json
import os
import shutil

import numpy as np
import pytest

from facenet import weights
from facenet.evaluation import evaluate_pairs
from utils.errors import WeightFileError
from utils.lfw import read_pairs


def test_card_describes_the_weights(pretrained_path):
    card = weights.read_card(pretrained_path)
    info = weights.MODELS[weights.DEFAULT_MODEL]
    assert card["backbone"] == "inception_resnetv1" and card["preprocessing"] == "standardize"
    assert card["input_shape"] == [160, 160, 3] and card["embedding_size"] == 128
    assert card["source"]["file_sha256"] == info.file_sha256
    assert card["lfw"]["command"].startswith("python eval_lfw.py")
    assert 0.5 < card["threshold"] < 1.5


@pytest.mark.slow
def test_lfw_fold_1_accuracy_at_least_97(pretrained_lfw, lfw):
    lfw_dir, pairs_path = lfw
    pairs = [p for p in read_pairs(pairs_path, lfw_dir) if p.fold == 0]
    assert len(pairs) == 600
    report = evaluate_pairs(pretrained_lfw, pairs, progress=False)
    print(f"fold 1: {100 * report['best_threshold_accuracy']:.2f}% at {report['best_threshold']}")
    assert report["best_threshold_accuracy"] >= 0.97
    assert report["images"] < 2 * len(pairs)  # each distinct image embedded once


def test_embed_and_verify(pretrained_lfw, lfw):
    lfw_dir, _ = lfw
    from PIL import Image

    a = os.path.join(lfw_dir, "Aaron_Peirsol", "Aaron_Peirsol_0001.jpg")
    b = os.path.join(lfw_dir, "Aaron_Peirsol", "Aaron_Peirsol_0002.jpg")
    c = os.path.join(lfw_dir, "Abdullah_Gul", "Abdullah_Gul_0001.jpg")
    lfw_model = pretrained_lfw
    emb = lfw_model.embed([a, Image.open(b), np.asarray(Image.open(c))], batch_size=2)
    assert emb.shape == (3, 128)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert lfw_model.verify(a, b).same and not lfw_model.verify(a, c).same
    assert lfw_model.verify(a, c, threshold=1.99).same  # the caller's threshold wins
    assert lfw_model.embed(a).shape == (1, 128)
    flipped = lfw_model.embed([a], flip=True)
    assert np.linalg.norm(flipped) == pytest.approx(1, abs=1e-5)


def test_card_that_does_not_match_its_weights(pretrained_path, tmp_path):
    from facenet import Facenet

    copy = tmp_path / "m.weights.h5"
    shutil.copy(pretrained_path, copy)
    card = weights.read_card(pretrained_path)
    card["weights_sha256"] = "0" * 64
    (tmp_path / "m.json").write_text(json.dumps(card))
    with pytest.raises(WeightFileError, match="does not match its model card"):
        Facenet(model_path=str(copy))
    card["weights_sha256"] = weights.read_card(pretrained_path)["weights_sha256"]
    (tmp_path / "m.json").write_text(json.dumps(card))
    with pytest.raises(WeightFileError, match="backbone"):
        Facenet(model_path=str(copy), backbone="mobilenet")
