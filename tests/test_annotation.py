"""txt_annotation.py and the cls_train.txt reader: ranks, odd file names, relative or absolute."""
import os

import pytest
from PIL import Image

from conftest import run_script
from utils.annotation import AnnotationError, read_annotation, scan_dataset, write_annotation


@pytest.fixture()
def dataset(tmp_path):
    root = tmp_path / "data set"
    for person, names in {"Zoë Ünal": ["a;b c.jpg", "2.PNG"], "adam": ["x.jpg"],
                          "Bob": ["1.jpg", "nested/2.jpeg"], "empty": []}.items():
        (root / person).mkdir(parents=True)
        for name in names:
            (root / person / name).parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8)).save(root / person / name,
                                          format="PNG" if name.endswith("PNG") else "JPEG")
    (root / "Bob" / "notes.txt").write_text("not an image")
    (root / "Bob" / ".hidden.jpg").write_bytes(b"")
    return root


def test_scan_ranks_sorted_folders_and_lists_only_images(dataset):
    entries, classes = scan_dataset(str(dataset))
    assert classes == ["Bob", "Zoë Ünal", "adam", "empty"]  # sorted by name, as the original
    names = [(c, os.path.relpath(p, dataset)) for c, p in entries]
    assert names == [(0, "Bob/1.jpg"), (0, "Bob/nested/2.jpeg"), (1, "Zoë Ünal/2.PNG"),
                     (1, "Zoë Ünal/a;b c.jpg"), (2, "adam/x.jpg")]


@pytest.mark.parametrize("absolute", [False, True])
def test_round_trip_with_odd_names(dataset, tmp_path, monkeypatch, absolute):
    monkeypatch.chdir(tmp_path)
    entries, _ = scan_dataset(str(dataset))
    write_annotation(entries, "cls_train.txt", absolute=absolute)
    back = read_annotation("cls_train.txt")
    assert [c for c, _ in back] == [c for c, _ in entries]
    assert all(os.path.isabs(p) == absolute and os.path.exists(p) for _, p in back)


def test_cli_warns_about_small_classes(dataset, tmp_path):
    out = tmp_path / "cls.txt"
    r = run_script(["txt_annotation.py", "--datasets-path", str(dataset), "--output", str(out)])
    assert r.returncode == 0, r.stderr
    assert "warning: class 'adam' has 1 image" in r.stderr and "'empty' has 0 image" in r.stderr
    assert "4 classes, 5 images" in r.stdout and len(out.read_text().splitlines()) == 5


def test_reader_errors(tmp_path):
    path = tmp_path / "cls.txt"
    path.write_text("0;a.jpg\n1 b.jpg\n")
    with pytest.raises(AnnotationError, match="cls.txt:2:"):
        read_annotation(str(path))
    with pytest.raises(AnnotationError, match="not found"):
        read_annotation(str(tmp_path / "none.txt"))
    r = run_script(["txt_annotation.py", "--datasets-path", str(tmp_path / "nowhere")])
    assert r.returncode != 0 and "nowhere" in r.stderr


def test_names_the_file_cannot_hold_are_left_out_with_a_warning(tmp_path):
    """A line break in a name would split its line; a name that is not UTF-8 cannot be written
    to the UTF-8 file. Both are named and left out; the file written reads back."""
    for person in ("a", "b"):
        (tmp_path / "d" / person).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "d" / person / "1.jpg")
    folder = os.fsencode(tmp_path / "d" / "a")
    try:
        for name in (b"two\nlines.jpg", b"caf\xe9.jpg"):
            Image.new("RGB", (8, 8)).save(os.fsdecode(os.path.join(folder, name)), format="JPEG")
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses such names")
    out = tmp_path / "cls.txt"
    r = run_script(["txt_annotation.py", "--datasets-path", str(tmp_path / "d"), "--output",
                    str(out)])
    assert r.returncode == 0, r.stderr
    assert "two\\nlines.jpg': its name holds a line break" in r.stderr
    assert "caf\\udce9.jpg': its name is not valid UTF-8" in r.stderr
    assert "2 classes, 2 images" in r.stdout
    assert len(read_annotation(str(out))) == 2


def test_an_output_folder_is_refused_before_the_scan(tmp_path):
    r = run_script(["txt_annotation.py", "--datasets-path", str(tmp_path / "nowhere"),
                    "--output", str(tmp_path)])
    assert r.returncode != 0 and "--output" in r.stderr and "is a folder" in r.stderr


def test_a_class_id_far_beyond_the_class_count_names_its_line(tmp_path):
    """0 and 99999999 would build a 100-million-class classifier: an error naming line 3.
    Ids left unused by a few empty class folders are fine."""
    path = tmp_path / "cls.txt"
    path.write_text("0;a.jpg\n0;b.jpg\n99999999;c.jpg\n99999999;d.jpg\n")
    with pytest.raises(AnnotationError, match=r"cls.txt:3: class id 99999999 .* 2 classes"):
        read_annotation(str(path))
    path.write_text("0;a.jpg\n3;b.jpg\n")  # folders 1 and 2 were empty
    assert [c for c, _ in read_annotation(str(path))] == [0, 3]


def test_an_annotation_file_that_is_not_utf8_names_its_line(tmp_path):
    path = tmp_path / "cls.txt"
    path.write_bytes(b"0;a.jpg\n1;caf\xe9.jpg\n")
    with pytest.raises(AnnotationError, match=r"cls.txt:2: byte 0xe9 is not UTF-8"):
        read_annotation(str(path))
