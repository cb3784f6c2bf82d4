"""LFW's people.txt: folds of (name, image count), and a fold's training lines with class ids
in name order."""
import os

from utils.lfw_people import fold_entries, read_people_folds

PEOPLE = "2\n2\nBob\t3\nAnn\t1\n1\nCid\t2\n"


def test_folds_are_read_in_order(tmp_path):
    path = tmp_path / "people.txt"
    path.write_text(PEOPLE)
    assert read_people_folds(str(path)) == [[("Bob", 3), ("Ann", 1)], [("Cid", 2)]]


def test_fold_entries_number_people_by_name_and_list_their_files(tmp_path):
    for name, n in (("Bob", 3), ("Ann", 1)):
        os.makedirs(tmp_path / name)
        for i in range(n, 0, -1):
            (tmp_path / name / f"{name}_{i:04d}.jpg").write_bytes(b"")
    people = [("Bob", 3), ("Ann", 1)]
    entries = fold_entries(people, str(tmp_path))
    assert [(c, os.path.basename(p)) for c, p in entries] == [
        (0, "Ann_0001.jpg"), (1, "Bob_0001.jpg"), (1, "Bob_0002.jpg"), (1, "Bob_0003.jpg")]
    assert [c for c, _ in fold_entries(people, str(tmp_path), min_images=2)] == [0, 0, 0]
