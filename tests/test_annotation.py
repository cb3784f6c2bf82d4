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
    assert "'adam' has 1 image" in r.stdout and "'empty' has 0 image" in r.stdout
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
