"""predict.py, eval_lfw.py and summary.py run as a user would run them."""
import json
import os

import pytest

from conftest import run_script


def lfw_image(lfw_dir, name, i):
    return os.path.join(lfw_dir, name, f"{name}_{i:04d}.jpg")


@pytest.mark.slow
def test_predict_same_and_different(lfw, pretrained_path, tmp_path):
    lfw_dir, _ = lfw
    same_out, diff_out = str(tmp_path / "same.png"), str(tmp_path / "diff.png")
    a, b = lfw_image(lfw_dir, "Aaron_Peirsol", 1), lfw_image(lfw_dir, "Aaron_Peirsol", 2)
    c = lfw_image(lfw_dir, "Abdullah_Gul", 1)
    r = run_script(["predict.py", a, b, "--crop", "lfw", "--out", same_out])
    assert r.returncode == 0, r.stderr[-2000:]
    assert ": same" in r.stdout and "threshold" in r.stdout
    assert os.path.getsize(same_out) > 1000
    r = run_script(["predict.py", a, c, "--crop", "lfw", "--out", diff_out])
    assert r.returncode == 0 and ": different" in r.stdout
    assert os.path.getsize(diff_out) > 1000


@pytest.mark.slow
def test_predict_example_runs_out_of_the_box(pretrained_path, tmp_path):
    r = run_script(["predict.py", "--example", "--out", str(tmp_path / "ex.png")])
    assert r.returncode == 0, r.stderr[-2000:]
    verdicts = [line.rsplit(": ", 1)[1] for line in r.stdout.splitlines() if "distance" in line]
    assert verdicts == ["same", "different"]


@pytest.mark.slow
def test_predict_interactive_recovers_and_exits(lfw, pretrained_path, tmp_path):
    lfw_dir, _ = lfw
    a, b = lfw_image(lfw_dir, "Aaron_Peirsol", 1), lfw_image(lfw_dir, "Aaron_Peirsol", 2)
    stdin = f"no/such/file.jpg\n{a}\n{a}\n{b}\n"  # a bad pair, a good pair, then end of input
    r = run_script(["predict.py", "--crop", "lfw", "--out", str(tmp_path / "i.png")], stdin=stdin)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "no/such/file.jpg" in r.stdout and "Try again" in r.stdout
    assert r.stdout.count("distance") == 1 and "Bye." in r.stdout


def test_predict_rejects_wrong_argument_count():
    r = run_script(["predict.py", "only_one.jpg"])
    assert r.returncode == 2 and "exactly two images" in r.stderr


@pytest.mark.slow
def test_eval_lfw_on_two_small_folds(lfw, pretrained_path, tmp_path):
    """Two folds of 30 pairs, CRLF line ends, --flip, and --update-card on a copy of the model."""
    import shutil

    from facenet.weights import card_path_for

    lfw_dir, pairs_path = lfw
    model = str(tmp_path / "copy.weights.h5")
    shutil.copy(pretrained_path, model)
    shutil.copy(card_path_for(pretrained_path), card_path_for(model))
    lines = open(pairs_path).read().splitlines()[1:]
    small = ["2 15"] + lines[0:15] + lines[300:315] + lines[600:615] + lines[900:915]
    small_pairs = tmp_path / "pairs.txt"
    small_pairs.write_text("\r\n".join(small) + "\r\n")
    report, roc = str(tmp_path / "r.json"), str(tmp_path / "roc.png")
    r = run_script(["eval_lfw.py", "--lfw-dir", lfw_dir, "--pairs", str(small_pairs),
                    "--report", report, "--roc", roc, "--no-progress", "--flip",
                    "--model-path", model, "--update-card"])
    assert r.returncode == 0, r.stderr[-2000:]
    data = json.load(open(report))
    assert data["pairs"] == 60 and len(data["folds"]["accuracy"]) == 2 and data["flip"]
    assert data["accuracy_mean"] >= 0.9 and 0 < data["threshold_mean"] < 2
    for key in ("accuracy_std", "accuracy_sem", "threshold_std", "val_mean", "val_std", "auc",
                "eer", "images", "wall_seconds"):
        assert key in data
    assert os.path.getsize(roc) > 1000 and "Accuracy:" in r.stdout
    card = json.load(open(card_path_for(model)))
    assert card["threshold"] == round(data["threshold_mean"], 4)
    assert card["lfw"]["pairs"] == 60 and "--update-card" in card["lfw"]["command"]


def test_eval_lfw_missing_images_and_malformed_pairs(tmp_path):
    pairs = tmp_path / "p.txt"
    pairs.write_text("Ann 1 2\nAnn 1\n")
    r = run_script(["eval_lfw.py", "--lfw-dir", str(tmp_path), "--pairs", str(pairs)])
    assert r.returncode != 0 and "p.txt:2:" in r.stderr
    pairs.write_text("Ann 1 2\n")
    r = run_script(["eval_lfw.py", "--lfw-dir", str(tmp_path), "--pairs", str(pairs)])
    assert r.returncode != 0 and "Ann_0001.jpg" in r.stderr and "--skip-missing" in r.stderr


@pytest.mark.slow
def test_summary_prints_parameters_and_flops():
    r = run_script(["summary.py", "--backbone", "mobilenet", "--no-layers"])
    assert r.returncode == 0 and "3,360,320 parameters" in r.stdout and "0.58 GFLOPs" in r.stdout


@pytest.mark.slow
def test_eval_lfw_align_updates_the_aligned_card_section(lfw, pretrained_path, tmp_path):
    import shutil

    from facenet.weights import card_path_for

    lfw_dir, pairs_path = lfw
    model = str(tmp_path / "copy.weights.h5")
    shutil.copy(pretrained_path, model)
    shutil.copy(card_path_for(pretrained_path), card_path_for(model))
    before = json.load(open(card_path_for(model)))
    lines = open(pairs_path).read().splitlines()[1:]
    small = ["2 10"] + lines[0:10] + lines[300:310] + lines[600:610] + lines[900:910]
    (tmp_path / "pairs.txt").write_text("\n".join(small) + "\n")
    report = str(tmp_path / "r.json")
    r = run_script(["eval_lfw.py", "--lfw-dir", lfw_dir, "--pairs", str(tmp_path / "pairs.txt"),
                    "--report", report, "--roc", "", "--no-progress", "--align",
                    "--align-cache", str(tmp_path / "cache"), "--model-path", model,
                    "--update-card"])
    assert r.returncode == 0, r.stderr[-2000:]
    data = json.load(open(report))
    assert data["alignment"]["aligned"] + data["alignment"]["fallback"] == data["images"]
    assert "Aligned:" in r.stdout
    card = json.load(open(card_path_for(model)))
    assert card["aligned"]["threshold"] == round(data["threshold_mean"], 4)
    assert card["aligned"]["lfw"]["pairs"] == 40 and "--align" in card["aligned"]["lfw"]["command"]
    assert card["aligned"]["identification"] == before["aligned"]["identification"]
    assert card["threshold"] == before["threshold"]  # the fixed-crop threshold is untouched
    # the engine that measured it decides with it from now on, not the registry's figure
    engine = f"{data['engine']} {data['precision']}"
    assert card["engines"][engine]["threshold"] == card["aligned"]["threshold"]
    from facenet import Facenet
    assert Facenet(model, align="auto", engine=data["engine"],
                   precision=data["precision"]).threshold == card["aligned"]["threshold"]
