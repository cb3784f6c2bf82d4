"""python -m facenet.align_dataset refuses what would spoil OUT_DIR before it aligns anything:
other settings on a resume, an OUT_DIR inside RAW_DIR; it removes a killed run's temporaries
and stops on a full disk with one line."""
import errno
import json
import os
import shutil

import pytest
from PIL import Image

from conftest import LFW_DIR
from facenet import align_dataset
from utils.annotation import scan_dataset

SETTINGS_64 = {"size": [64, 64], "margin": 0.0, "method": "similarity", "choice": "largest",
               "min_face_size": 20, "format": "png"}


def run(*argv):
    """align_dataset's main in this process; the message it exits with, or None."""
    try:
        align_dataset.main([*argv, "--workers", "1", "--no-progress"])
    except SystemExit as e:
        return str(e.code)
    return None


@pytest.fixture()
def folders(tmp_path):
    """An empty person folder (nothing to align: a run that is not refused ends at once)."""
    (tmp_path / "raw" / "Ann").mkdir(parents=True)
    (tmp_path / "out").mkdir()
    return tmp_path / "raw", tmp_path / "out"


@pytest.mark.parametrize("record", ["align_settings.json", "align_report.json"])
def test_resume_with_other_settings_is_refused(folders, record):
    raw, out = folders
    data = SETTINGS_64 if record == "align_settings.json" else {"settings": SETTINGS_64}
    (out / record).write_text(json.dumps(data))
    message = run(str(raw), str(out), "--size", "160", "--margin", "0.2")
    assert message and "\n" not in message
    assert "--size 64, --margin 0.0, not --size 160, --margin 0.2" in message
    assert run(str(raw), str(out), "--size", "64") is None  # the same settings resume


def test_a_new_folder_records_its_settings(folders):
    raw, out = folders
    assert run(str(raw), str(out), "--size", "96") is None
    assert json.loads((out / "align_settings.json").read_text())["size"] == [96, 96]


def test_out_dir_inside_raw_dir_is_refused(folders):
    raw, _ = folders
    message = run(str(raw), str(raw / "aligned"))
    assert message and "inside RAW_DIR" in message and "\n" not in message
    assert not (raw / "aligned").exists()


def test_a_killed_runs_temporaries_are_removed_and_never_listed(folders):
    raw, out = folders
    Image.new("RGB", (8, 8)).save(raw / "Ann" / "a.jpg")
    (out / "Ann").mkdir()
    Image.new("RGB", (8, 8)).save(out / "Ann" / "a.png")  # a finished crop
    for name in (".tmp-x1y2.png", "b.png.tmp4242.png"):  # what a kill -9 mid-save leaves
        (out / "Ann" / name).write_bytes(b"half a png")
    settings = align_dataset.crop_settings(160, 0.0, "similarity", "largest", 20, "png")
    jobs, done = align_dataset.plan(str(raw), str(out), settings)
    assert (jobs, done) == ([], 1)
    assert sorted(os.listdir(out / "Ann")) == ["a.png"]
    assert [os.path.basename(p) for _, p in scan_dataset(str(out))[0]] == ["a.png"]


def test_full_disk_stops_with_one_line_and_nothing_half_written(tmp_path, monkeypatch):
    pytest.importorskip("mtcnn", reason="face detection needs the mtcnn package")
    if not os.path.isdir(LFW_DIR):
        pytest.skip("LFW is not in ../shared/data")
    raw, out = tmp_path / "raw", tmp_path / "out"
    (raw / "Aaron_Peirsol").mkdir(parents=True)
    for i in (1, 2):
        shutil.copy(os.path.join(LFW_DIR, "Aaron_Peirsol", f"Aaron_Peirsol_{i:04d}.jpg"),
                    raw / "Aaron_Peirsol")
    saved = Image.Image.save

    def full_disk(image, fp, *args, **kwargs):
        if str(fp).endswith(".png"):  # the crops; the settings record is JSON
            raise OSError(errno.ENOSPC, "No space left on device")
        return saved(image, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", full_disk)
    message = run(str(raw), str(out), "--size", "64")
    assert message and "\n" not in message
    assert "No space left on device" in message and "Aaron_Peirsol_0001.png" in message
    left = sorted(os.path.relpath(os.path.join(r, f), out) for r, _, fs in os.walk(out) for f in fs)
    assert left == ["align_settings.json"]  # no crop, no temporary, no report
