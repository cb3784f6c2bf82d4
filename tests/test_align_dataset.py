"""python -m facenet.align_dataset: raw photos per person -> aligned crops, resumable."""
import json
import os
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import run_script

pytest.importorskip("mtcnn", reason="face detection needs the mtcnn package")


@pytest.fixture()
def raw_dir(lfw, tmp_path):
    """Two people x 3 LFW photos, plus a broken file and a photo without a face."""
    lfw_dir, _ = lfw
    raw = tmp_path / "raw"
    for name in ("Aaron_Peirsol", "Abdullah_Gul"):
        (raw / name).mkdir(parents=True)
        for i in (1, 2, 3):
            shutil.copy(os.path.join(lfw_dir, name, f"{name}_{i:04d}.jpg"), raw / name)
    (raw / "Aaron_Peirsol" / "broken.jpg").write_bytes(b"not a jpeg")
    Image.new("RGB", (120, 90), (30, 160, 30)).save(raw / "Abdullah_Gul" / "lawn.png")
    return raw


def test_align_dataset_reports_skips_and_resumes(raw_dir, tmp_path):
    from facenet.align_dataset import align_dataset

    out = tmp_path / "aligned"
    report = align_dataset(str(raw_dir), str(out), size=112, workers=1, progress=False)
    assert (report["aligned"], report["no_face"], report["unreadable"]) == (6, 1, 1)
    crops = sorted(out.rglob("*.png"))
    assert len(crops) == 6
    assert {p.parent.name for p in crops} == {"Aaron_Peirsol", "Abdullah_Gul"}
    assert np.asarray(Image.open(crops[0])).shape == (112, 112, 3)
    skipped = {os.path.basename(s["file"]): s["why"] for s in report["skipped"]}
    assert "broken.jpg" in skipped and "lawn.png" in skipped
    assert json.load(open(out / "align_report.json"))["aligned"] == 6

    # resumable: a crop already there is not redone; a deleted one is
    os.unlink(crops[0])
    mtime = os.path.getmtime(crops[1])
    again = align_dataset(str(raw_dir), str(out), size=112, workers=1, progress=False)
    assert again["already_done"] == 5 and again["aligned"] == 1
    assert os.path.getmtime(crops[1]) == mtime


@pytest.mark.slow
def test_align_dataset_command_with_two_processes(raw_dir, tmp_path):
    out = tmp_path / "aligned"
    r = run_script(["-m", "facenet.align_dataset", str(raw_dir), str(out), "--workers", "2",
                    "--no-progress"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Aligned 6" in r.stderr and "skipped 1 without a face and 1 unreadable" in r.stderr
    assert "warning: skipped " in r.stderr and "broken.jpg" in r.stderr
    # each worker process quiets TensorFlow as the command does (its cuInit line was shown)
    assert not re.search(r"^[IWEF]\d{4} \d\d:\d\d:\d\d|cuInit|oneDNN", r.stderr, re.M), r.stderr
    assert len(list(out.rglob("*.png"))) == 6
    # the crops are ready for txt_annotation.py
    r = run_script(["txt_annotation.py", "--datasets-path", str(out),
                    "--output", str(tmp_path / "cls.txt")])
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(open(tmp_path / "cls.txt").read().splitlines()) == 6


def test_align_dataset_refuses_to_write_over_its_input(raw_dir):
    r = run_script(["-m", "facenet.align_dataset", str(raw_dir), str(raw_dir)])
    assert r.returncode != 0 and "must differ" in r.stderr


def test_quiet_keeps_the_skipped_photos_and_verbose_adds_the_settings(raw_dir, tmp_path,
                                                                      capsys):
    from facenet.align_dataset import main

    out = tmp_path / "aligned"
    argv = [str(raw_dir), str(out), "--workers", "1", "--no-progress", "--size", "64"]
    main(argv + ["--quiet"])
    err = capsys.readouterr().err.splitlines()
    assert sorted(os.path.basename(line.split(": ")[1]) for line in err) == \
        ["broken.jpg", "lawn.png"]
    assert all(line.startswith("warning: skipped ") for line in err)  # no "Aligned 6 in"
    main(argv + ["--verbose"])  # all done already: nothing detected again
    err = capsys.readouterr().err
    assert "crop settings: {'size': [64, 64]" in err and "Aligned 0 in" in err
