"""Each command's --quiet hides what it is doing and keeps its answer; --verbose adds debug
lines. The library on its own sets up no logging: a program that uses it sees its warnings
(Python's default) and nothing else."""
import json
import os
import shutil
import subprocess
import sys

import pytest
from PIL import Image

from conftest import ROOT


def run_command(main, argv, capsys):
    """(stdout, stderr) of a command's main(argv) run in this process."""
    capsys.readouterr()
    main(argv)
    return capsys.readouterr()


@pytest.mark.slow
def test_the_library_configures_no_logging_and_shows_its_warnings(tmp_path):
    """A weight file without a card: the library's warning reaches stderr; its info line
    (the weights loaded) does not; the root logger keeps no handler."""
    from facenet import weights

    shipped = weights.weights_path("facenet_mobilenet", weights.MODEL_DATA)
    no_card = str(tmp_path / "m.weights.h5")
    shutil.copy(shipped, no_card)
    code = ("import logging\n"
            "root = logging.getLogger()\n"
            "before = (list(root.handlers), root.level)\n"
            "from facenet import Facenet\n"
            f"model = Facenet({no_card!r}, backbone='mobilenet', input_shape=(112, 112, 3), "
            "align='off', fold_batchnorm=False)\n"
            "print('unchanged', (list(root.handlers), root.level) == before)\n")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "unchanged True" in r.stdout
    assert f"{no_card} has no model card with a calibrated threshold" in r.stderr
    assert "weighted layers loaded" not in r.stderr + r.stdout


def test_predict_shows_what_it_loaded_on_stderr_and_more_with_verbose(pretrained_path, capsys):
    import predict

    argv = ["--example", "--backbone", "mobilenet", "--no-align", "--out", ""]
    out, err = run_command(predict.main, argv, capsys)
    verdicts = [line for line in out.splitlines() if "distance" in line]
    loaded = "facenet_mobilenet.weights.h5: mobilenet, standardize"  # whichever engine runs
    assert len(verdicts) == 2 and loaded in err
    assert loaded not in out and "decoding thread" not in err
    out, err = run_command(predict.main, argv + ["--verbose"], capsys)
    assert len([line for line in out.splitlines() if "distance" in line]) == 2
    assert "decoding thread(s), BatchNorm folded: False" in err  # a debug line
    out, err = run_command(predict.main, argv + ["--quiet"], capsys)
    assert len([line for line in out.splitlines() if "distance" in line]) == 2 and err == ""


@pytest.fixture()
def npz_gallery(tmp_path):
    from test_gallery_store import write_npz

    return write_npz(tmp_path / "people.npz")


def test_gallery_quiet_and_verbose_before_or_after_the_sub_command(npz_gallery, capsys):
    from facenet import gallery

    out, err = run_command(gallery.main, ["list", str(npz_gallery), "--quiet"], capsys)
    assert "2 people, 4 embeddings" in out and err == ""  # imported, and not said
    db = str(npz_gallery.with_suffix(".db"))
    out, err = run_command(gallery.main, ["--verbose", "list", db], capsys)
    assert "2 people, 4 embeddings" in out
    assert f"{db}: 2 people, 4 embeddings, model " in err  # a debug line
    out, err = run_command(gallery.main, ["list", db], capsys)
    assert "2 people, 4 embeddings" in out and err == ""


def test_gallery_says_an_import_unless_quiet(npz_gallery, capsys):
    from facenet import gallery

    out, err = run_command(gallery.main, ["list", str(npz_gallery)], capsys)
    assert err.startswith(f"imported {npz_gallery} into ") and "imported" not in out


@pytest.fixture()
def tiny_weights(tmp_path):
    from nets.facenet import facenet

    path = tmp_path / "tiny.weights.h5"
    facenet((32, 32, 3), backbone="mobilenet", mode="predict").save_weights(str(path))
    card = {"backbone": "mobilenet", "input_shape": [32, 32, 3], "preprocessing": "scale01",
            "threshold": 1.1}
    (tmp_path / "tiny.json").write_text(json.dumps(card))
    return str(path)


def test_export_quiet_keeps_the_exported_line(tiny_weights, tmp_path, capsys, monkeypatch):
    from facenet import export

    # the SavedModel itself is export's own tests' business: here, an empty folder
    monkeypatch.setattr(export, "export_savedmodel",
                        lambda predictor, out: os.makedirs(out, exist_ok=True) or out)
    out_dir = str(tmp_path / "sm")
    argv = ["--format", "savedmodel", "--model-path", tiny_weights, "--out", out_dir]
    out, err = run_command(export.main, argv + ["--quiet"], capsys)
    assert out == f"Exported savedmodel: {out_dir} (card {out_dir}/card.json)\n" and err == ""
    out, err = run_command(export.main, argv + ["--overwrite", "--verbose"], capsys)
    assert out.startswith("Exported savedmodel: ")
    assert "weighted layers loaded" in err and f"exporting savedmodel to {out_dir}" in err


def test_txt_annotation_quiet_keeps_warnings_and_the_count(tmp_path, capsys):
    import txt_annotation

    for person, n in (("ann", 2), ("bob", 1)):
        (tmp_path / "d" / person).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (8, 8)).save(tmp_path / "d" / person / f"{i}.jpg")
    argv = ["--datasets-path", str(tmp_path / "d"), "--output", str(tmp_path / "cls.txt")]
    out, err = run_command(txt_annotation.main, argv + ["--quiet"], capsys)
    assert out.endswith(f"2 classes, 3 images -> {tmp_path / 'cls.txt'}\n")
    assert err == ("warning: class 'bob' has 1 image(s); it needs 2 to give an anchor and a "
                   "positive\n")
    out, err = run_command(txt_annotation.main, argv + ["--verbose"], capsys)
    assert f"{tmp_path / 'd'}: 2 class folders, 3 images\n" in err  # a debug line


def test_summary_quiet_prints_the_totals_only(capsys):
    import summary

    argv = ["--no-layers", "--input-size", "64"]
    out, err = run_command(summary.main, argv + ["--quiet"], capsys)
    assert out.startswith("mobilenet predict at 64x64: ") and err == ""
    out, err = run_command(summary.main, argv + ["--verbose"], capsys)
    assert "FLOPs counted in 28 of " in err  # a debug line: 27 convolutions and 1 dense


def test_weights_command_prints_the_path_and_says_more_with_verbose(capsys):
    from facenet import weights

    path = weights.weights_path("facenet_mobilenet", weights.MODEL_DATA)
    out, err = run_command(weights.main, ["facenet_mobilenet", "--quiet"], capsys)
    assert (out, err) == (path + "\n", "")
    out, err = run_command(weights.main, ["facenet_mobilenet", "--verbose"], capsys)
    assert out == path + "\n" and f"{path}: shipped weights and card in place" in err
