"""Pairs files: LF or CRLF, header, folds by position, malformed lines and missing images."""
import pytest

from facenet.evaluation import check_images
from utils.errors import PairsFileError
from utils.lfw import read_pairs


def write(tmp_path, text, name="pairs.txt", newline="\n"):
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode())
    return str(path)


TEXT = "2 1\nAnn 1 2\nAnn 1 Bob 1\nCid 1 3\nBob 2 Cid 2\n"


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_parse_with_either_line_end(tmp_path, newline):
    pairs = read_pairs(write(tmp_path, TEXT, newline=newline), "L")
    assert [p.fold for p in pairs] == [0, 0, 1, 1]
    assert [p.same for p in pairs] == [True, False, True, False]
    assert pairs[1].path_2.endswith("Bob/Bob_0001.jpg") and pairs[2].path_2.endswith("Cid_0003.jpg")


def test_malformed_line_names_its_number(tmp_path):
    path = write(tmp_path, "2 1\nAnn 1 2\nAnn one\nCid 1 3\nBob 2 Cid 2\n")
    with pytest.raises(PairsFileError, match=r"pairs.txt:3:"):
        read_pairs(path, "L")


def test_official_file_has_10_folds_of_600(lfw):
    lfw_dir, pairs_path = lfw
    pairs = read_pairs(pairs_path, lfw_dir)
    assert len(pairs) == 6000
    assert [sum(p.fold == k for p in pairs) for k in range(10)] == [600] * 10
    assert sum(p.same for p in pairs[:600]) == 300 and pairs[0].same and not pairs[300].same
    kept, missing = check_images(pairs)
    assert len(kept) == 6000 and missing == 0


def test_missing_images_error_or_skip(tmp_path):
    (tmp_path / "L" / "Ann").mkdir(parents=True)
    for i in (1, 2):
        (tmp_path / "L" / "Ann" / f"Ann_000{i}.jpg").write_bytes(b"x")
    pairs = read_pairs(write(tmp_path, TEXT), str(tmp_path / "L"))
    with pytest.raises(PairsFileError, match="Bob_0001.jpg"):
        check_images(pairs)
    kept, missing = check_images(pairs, skip_missing=True)
    assert len(kept) == 1 and missing == 5  # distinct missing images
    assert kept[0].fold == 0  # folds stay by position in the file, not shifted


def test_a_folder_or_non_utf8_pairs_file_is_one_clear_error(tmp_path):
    with pytest.raises(PairsFileError, match="is a folder; give LFW's View 2 pairs.txt"):
        read_pairs(str(tmp_path), "L")
    path = tmp_path / "pairs.txt"
    path.write_bytes(b"2 1\nAnn 1 2\n\xff\xd8\xff\xe0 JFIF\n")  # a JPEG given as the pairs file
    with pytest.raises(PairsFileError, match=r"pairs.txt:3: byte 0xff is not UTF-8"):
        read_pairs(str(path), "L")


def test_the_first_whole_folds_of_a_file_are_a_subset_and_a_part_fold_is_refused(tmp_path):
    """`head -3` of a 2-fold file is its fold 1: accepted as such, not a header mismatch."""
    first = read_pairs(write(tmp_path, "\n".join(TEXT.splitlines()[:3]) + "\n"), "L")
    assert [p.fold for p in first] == [0, 0]
    with pytest.raises(PairsFileError, match="3 pairs, not a whole number of folds .*--folds"):
        read_pairs(write(tmp_path, "\n".join(TEXT.splitlines()[:4]) + "\n"), "L")
    with pytest.raises(PairsFileError, match="header says 1 folds of 2 pairs but the file has 4"):
        read_pairs(write(tmp_path, "1 1" + TEXT[3:]), "L")


def test_chosen_folds_are_numbered_from_1(tmp_path):
    from utils.errors import SettingError
    from utils.lfw import parse_folds, select_folds

    assert parse_folds("1") == [1] and parse_folds("3,1") == [1, 3]
    assert parse_folds("2-4,9") == [2, 3, 4, 9]
    for bad in ("0", "one", "", "2-x"):
        with pytest.raises(SettingError):
            parse_folds(bad)
    path = write(tmp_path, TEXT)
    pairs = read_pairs(path, "L")
    assert select_folds(pairs, [2], path) == pairs[2:]
    with pytest.raises(PairsFileError, match="has folds 1-2, not fold 3"):
        select_folds(pairs, [3], path)
