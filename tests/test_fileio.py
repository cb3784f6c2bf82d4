"""Atomic writes keep the old file on failure and leave no temporary; text files are read the
same whatever their line ends; output paths are checked before the work; cards sit beside
their weights."""
import os

import pytest

from utils.errors import FacenetError, PairsFileError
from utils.fileio import (atomic_path, card_path_for, check_output_file, read_text_lines,
                          sha256_of, write_json_atomic)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "m.weights.h5"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        assert tmp.endswith(".weights.h5")  # Keras checks the suffix
        with open(tmp, "w") as f:
            f.write("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["m.weights.h5"]


def test_a_finished_write_replaces_the_file_in_a_new_folder(tmp_path):
    path = tmp_path / "new" / "card.json"
    write_json_atomic(path, {"threshold": 1.1})
    assert path.read_text() == '{\n  "threshold": 1.1\n}\n'
    assert os.listdir(tmp_path / "new") == ["card.json"]


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_lines_are_the_same_for_any_line_end(tmp_path, end):
    path = tmp_path / "a.txt"
    path.write_bytes(end.join(["a b", "c", ""]).encode())
    assert read_text_lines(str(path), PairsFileError, "a list") == ["a b", "c", ""]


def test_a_folder_or_non_utf8_file_is_the_callers_error_naming_it(tmp_path):
    with pytest.raises(PairsFileError, match="is a folder; give a list"):
        read_text_lines(str(tmp_path), PairsFileError, "a list")
    path = tmp_path / "a.txt"
    path.write_bytes(b"ok\nok\n\xff\n")
    with pytest.raises(PairsFileError, match=r"a.txt:3: byte 0xff is not UTF-8 text; is this "
                                             r"a list\?"):
        read_text_lines(str(path), PairsFileError, "a list")


def test_output_files_are_checked_before_the_work(tmp_path):
    check_output_file(str(tmp_path / "new" / "deeper" / "r.json"), "--report")  # made later
    with pytest.raises(FacenetError, match="--report .* is a folder; give a file name in it"):
        check_output_file(str(tmp_path), "--report")
    (tmp_path / "f").write_text("")
    with pytest.raises(FacenetError, match="is a file, not a folder; choose another --roc"):
        check_output_file(str(tmp_path / "f" / "roc.png"), "--roc")


@pytest.mark.parametrize("weights,card", [
    ("m/a.weights.h5", "m/a.json"), ("a.keras", "a.json"), ("a.h5", "a.json"),
    ("a.b.weights.h5", "a.b.json"), ("a.bin", "a.bin.json")])
def test_the_card_is_beside_the_weights_with_their_stem(weights, card):
    assert card_path_for(weights) == card


def test_the_checksum_follows_a_rewrite(tmp_path):
    path = tmp_path / "w.bin"
    write_json_atomic(path, [1])
    first = sha256_of(path)
    assert sha256_of(path) == first
    write_json_atomic(path, [2])
    assert sha256_of(path) != first
