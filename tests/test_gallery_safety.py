"""A gallery never gives an answer a user would wrongly believe: no silent threshold without an
impostor table, one person per name, no writing into another program's database, read-only
files still searched, one Gallery shared by threads."""
import os
import sqlite3
import threading
import unicodedata

import numpy as np
import pytest

from facenet.gallery import Gallery, GalleryError

IDENTITY = {"model": "m", "weights_sha256": "abc", "embedding_size": 8,
            "input_shape": [32, 32, 3], "align": True}
TABLE = {"0.01": 1.0, "0.0001": 0.8}


def rows(n, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, 8)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# -- item 1: no silent fall-back to the verification threshold ---------------------------------
def test_without_an_impostor_table_identification_needs_a_threshold(tmp_path):
    g = Gallery(tmp_path / "g.db", IDENTITY, threshold=1.9)
    g.add("ann", rows(1), ["a"])
    near = rows(1, seed=1)  # a stranger within the verification threshold
    with pytest.raises(GalleryError, match="no impostor table.*--threshold"):
        g.identify_embeddings(near)
    assert g.identify_embeddings(near, threshold=0.1)[0].name is None  # a given one is used


def test_a_gallery_takes_the_table_its_models_card_gained(tmp_path):
    Gallery(tmp_path / "g.db", IDENTITY, threshold=1.1).add("ann", rows(1), ["a"])
    g = Gallery(tmp_path / "g.db", IDENTITY, threshold=1.1, far_table=TABLE)
    assert g.far_table == TABLE and Gallery.load(tmp_path / "g.db").far_table == TABLE
    assert g.default_threshold() < 1.1


def test_every_shipped_model_has_an_impostor_table():
    from facenet.weights import MODELS

    for name, info in MODELS.items():
        table = info.aligned.get("identification", {}).get("impostor_far")
        assert table and all(0 < v < 2 for v in table.values()), name


# -- item 5: names ----------------------------------------------------------------------------
def test_names_that_look_the_same_are_one_person_or_refused(tmp_path):
    g = Gallery(tmp_path / "g.db", IDENTITY, threshold=1.1, far_table=TABLE)
    composed, decomposed = "Jos\u00e9", unicodedata.normalize("NFD", "Jos\u00e9")
    assert composed != decomposed
    g.add(composed, rows(1, 1), ["a"])
    g.add(decomposed, rows(1, 2), ["b"])
    g.add("  Bush ", rows(1, 3), ["c"])
    g.add("Bush", rows(1, 4), ["d"])
    assert g.people() == {"Jos\u00e9": 2, "Bush": 2}
    with pytest.raises(GalleryError, match="'bush' differs from 'Bush'.*only by case"):
        g.add("bush", rows(1, 5), ["e"])
    assert g.remove(decomposed + " ") == 2
    from facenet.gallery import clean_name

    for bad in ("", "   ", "Ann\nBob", "tab\there", "nul\x00"):
        with pytest.raises(GalleryError, match="empty|control character"):
            clean_name(bad)
    assert Gallery.load(tmp_path / "g.db").people() == {"Bush": 2}


def test_folders_that_name_one_person_are_refused_before_anyone_is_enrolled(tmp_path):
    from facenet import enrollment

    for folder in ("Bush", "bush", "Ann"):
        (tmp_path / "people" / folder).mkdir(parents=True)
        (tmp_path / "people" / folder / "x.jpg").write_bytes(b"never read")
    g = Gallery(tmp_path / "g.db", IDENTITY)
    with pytest.raises(GalleryError, match="'Bush' and 'bush'.*same person"):
        enrollment.enroll_folder(g, None, str(tmp_path / "people"), progress=False)
    assert g.people() == {}


def test_list_prints_one_line_per_person(tmp_path, capsys):
    from facenet import gallery

    g = Gallery(tmp_path / "g.db", IDENTITY, threshold=1.1, far_table=TABLE)
    g.add("Jos\u00e9", rows(1, 1), ["a"])
    g.add(unicodedata.normalize("NFD", "Jos\u00e9"), rows(1, 2), ["b"])
    gallery.main(["list", str(tmp_path / "g.db")])
    out = capsys.readouterr().out.splitlines()
    assert out[1:] == ["  Jos\u00e9: 2"]


# -- item 6: another program's database -------------------------------------------------------
def test_a_foreign_database_is_named_and_left_alone(tmp_path):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    before = path.read_bytes()
    for open_ in (Gallery.load, Gallery, lambda p: Gallery.create(p, replace=True)):
        with pytest.raises(GalleryError, match="database of something else.*users"):
            open_(path)
    assert path.read_bytes() == before  # no tables added, journal mode unchanged
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


# -- item 7: read-only ------------------------------------------------------------------------
def test_a_read_only_gallery_is_searched_and_refuses_writes(tmp_path, monkeypatch):
    from facenet import gallery_store

    path = tmp_path / "g.db"
    with Gallery(path, IDENTITY, threshold=1.1, far_table=TABLE) as g:
        g.add("ann", rows(2), ["a", "b"])
    before = path.read_bytes()
    # a read-only file system: access(W_OK) fails there even for root (EROFS)
    real_access = os.access
    monkeypatch.setattr(gallery_store.os, "access",
                        lambda p, mode: False if mode & os.W_OK else real_access(p, mode))
    g = Gallery.load(path)
    assert g.read_only and g.people() == {"ann": 2}
    assert g.identify_embeddings(rows(1))[0].name == "ann"
    for write in (lambda: g.remove("ann"), lambda: g.add("bob", rows(1, 9), ["c"])):
        with pytest.raises(GalleryError, match="is read-only.*listed and searched") as e:
            write()
        assert "delete" not in str(e.value)
    with pytest.raises(GalleryError, match="read-only and holds no gallery"):
        (tmp_path / "empty.db").touch()
        Gallery(tmp_path / "empty.db")
    assert path.read_bytes() == before


# -- item 16: threads -------------------------------------------------------------------------
def test_one_gallery_serves_several_threads(tmp_path):
    g = Gallery(tmp_path / "g.db", IDENTITY, threshold=1.1, far_table=TABLE)
    g.add("seed", rows(1), ["s"])
    errors = []

    def work(k):
        try:
            for i in range(10):
                g.add(f"p{k}_{i}", rows(2, seed=100 * k + i), ["a", "b"])
                g.identify_embeddings(rows(3, seed=k), top_k=2)
                len(g)
        except Exception as e:  # noqa: BLE001 - any failure in a thread fails the test
            errors.append(repr(e))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(Gallery.load(tmp_path / "g.db").people()) == 41
