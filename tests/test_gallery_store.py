"""The gallery's file as a store: opening keeps what is there, concurrent writers all get in, a
kill -9 or a full disk loses nothing committed, old .npz galleries import once, and a damaged
file is one error naming the file and the field. No model: embeddings are made up."""
import json
import os
import signal
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, run_script
from facenet.gallery import Gallery, GalleryError, main
from gallery_writer import photo_keys, rows

IDENTITY = {"model": "m", "weights_sha256": "abc", "embedding_size": 128,
            "input_shape": [160, 160, 3], "align": True}


def narrow(x):
    """The same rows cut to 64-d unit vectors (a gallery of another model's size)."""
    x = x[:, :64]
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def writer(*args):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "tests.gallery_writer", *map(str, args)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def assert_holds(g, names, photos):
    """g has each of `names` with exactly their `photos` made-up rows."""
    people = g.people()
    for name in names:
        assert people.get(name) == photos, (name, people.get(name))
        mine = g.labels == g.names.index(name)
        keys = list(g.keys[mine])
        assert sorted(keys) == sorted(photo_keys(name, photos))
        order = [keys.index(k) for k in photo_keys(name, photos)]
        np.testing.assert_array_equal(g.embeddings[mine][order], rows(name, photos))


def test_opening_keeps_what_is_there_and_starting_over_is_explicit(tmp_path):
    path = tmp_path / "people.db"
    with Gallery(path, IDENTITY, threshold=1.1) as g:
        g.add("ann", rows("ann", 2), ["a1", "a2"], ["k1", "k2"])
    with Gallery(path) as g:  # the way one adds more people: the file is opened, not replaced
        assert g.identity == IDENTITY and g.threshold == 1.1
        assert g.add("bob", rows("bob", 1), ["b1"], ["k3"]) == 1
        assert g.add("ann", rows("ann", 2), ["a1", "a2"], ["k1", "k2"]) == 0  # already in
    with Gallery.load(path) as g:
        assert g.people() == {"ann": 2, "bob": 1}
    with pytest.raises(GalleryError, match="already holds 2 people.*replace=True"):
        Gallery.create(path)
    with Gallery.create(path, replace=True) as g:
        assert g.people() == {} and g.identity is None
    with pytest.raises(GalleryError, match="no gallery at"):
        Gallery.load(tmp_path / "absent.db")
    assert not (tmp_path / "absent.db").exists()


def test_two_galleries_on_one_file_see_each_others_changes(tmp_path):
    a, b = Gallery(tmp_path / "g.db", IDENTITY, threshold=1.0,
                   far_table={"0.01": 1.0}), Gallery(tmp_path / "g.db")
    a.add("ann", rows("ann", 2), ["a1", "a2"], ["k1", "k2"])
    assert b.people() == {"ann": 2} and b.identify_embeddings(rows("ann", 1))[0].name == "ann"
    b.remove("ann")
    assert a.people() == {} and not a.has_photo("ann", "k1")


def test_four_writers_started_together_all_get_in(tmp_path):
    path, start = tmp_path / "g.db", tmp_path / "go"
    people = [[f"w{w}_p{i}" for i in range(3)] for w in range(4)]
    procs = [writer(path, *names, "--start-file", start, "--photos", 4) for names in people]
    for p in procs:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
    start.touch()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    with Gallery.load(path) as g:
        assert len(g.people()) == 12 and len(g) == 48
        assert_holds(g, [n for names in people for n in names], 4)


def _open_new(path):
    from facenet.gallery_store import connect

    try:
        db, _ = connect(path, create=True)
        db.close()
        return None
    except GalleryError as e:
        return str(e)


def test_processes_opening_a_new_gallery_together_all_get_in(tmp_path):
    """Eight processes create one new gallery file at once, twenty times over. Their switches
    to WAL mode collide, and SQLite answers "database is locked" at once there (about 1 open
    in 20 failed so); each must wait its turn instead."""
    import multiprocessing

    paths = [str(tmp_path / f"g{trial}.db") for trial in range(20)]
    with multiprocessing.get_context("fork").Pool(8) as pool:
        errors = [e for path in paths for e in pool.map(_open_new, [path] * 8) if e]
    assert errors == []


def test_kill_9_while_enrolling_keeps_every_finished_person(tmp_path):
    path = tmp_path / "g.db"
    finished = []
    for round_ in range(3):  # three kills at three different moments
        p = writer(path, "--forever", "--photos", 40)
        assert p.stdout.readline().strip() == "ready"
        names = [p.stdout.readline().strip() for _ in range(5 + 3 * round_)]
        p.send_signal(signal.SIGKILL)
        p.wait()
        finished = names  # each round starts again at person_0: already there, added anew
        with Gallery.load(path) as g:
            people = g.people()
            assert_holds(g, finished, 40)
            # the person being written when killed is all in or all out
            assert set(people.values()) == {40}
            assert len(people) in (len(finished), len(finished) + 1)


def test_full_disk_during_remove_changes_nothing_and_says_so_once(tmp_path):
    path = tmp_path / "g.db"
    with Gallery(path, IDENTITY) as g:
        for name in ("ann", "bob"):
            g.add(name, rows(name, 200), [f"{k}.jpg" for k in photo_keys(name, 200)],
                  photo_keys(name, 200))
    # A writer that may not grow any file past 1 KiB: its writes fail as on a full disk. One
    # connection stays open so that the journal files exist before the limit is set.
    code = (f"import resource, sqlite3\n"
            f"keep = sqlite3.connect({str(path)!r}); keep.execute('SELECT 1 FROM photos')\n"
            f"resource.setrlimit(resource.RLIMIT_FSIZE, (1024, "
            f"resource.getrlimit(resource.RLIMIT_FSIZE)[1]))\n"
            f"from facenet.gallery import main\n"
            f"main(['remove', {str(path)!r}, 'ann', 'bob'])\n")
    r = run_script(["-c", code])
    assert r.returncode != 0
    assert "removed" not in r.stdout, r.stdout
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: could not write"), r.stderr
    assert "nothing was changed" in r.stderr
    with Gallery.load(path) as g:
        assert g.people() == {"ann": 200, "bob": 200}
    r = run_script(["-m", "facenet.gallery", "remove", str(path), "ann", "bob"])
    assert r.returncode == 0 and r.stdout.count("removed") == 2, r.stderr
    with Gallery.load(path) as g:
        assert g.people() == {}


def test_remove_of_several_is_all_or_nothing(tmp_path):
    with Gallery(tmp_path / "g.db", IDENTITY) as g:
        g.add("ann", rows("ann", 1), ["a1"])
        with pytest.raises(GalleryError, match="'zed' is not in"):
            g.remove_people(["ann", "zed"])
        assert Gallery.load(g.path).people() == {"ann": 1}


def write_npz(path, **change):
    """A gallery in the earlier one-file format, with fields replaced by `change`."""
    emb = rows("old", 4)
    fields = {"meta": {"version": 1, "identity": IDENTITY, "threshold": 1.07,
                       "far_table": {"0.001": 1.0}},
              "names": ["ann", "bob"], "embeddings": emb, "labels": [0, 0, 1, 1],
              "sources": ["a1", "a2", "b1", "b2"], "keys": ["k1", "k2", "k3", "k4"]}
    fields.update(change)
    fields["meta"] = np.array(json.dumps(fields["meta"]))
    np.savez(path, **{k: np.asarray(v) for k, v in fields.items()})
    return path


def test_an_npz_gallery_is_imported_once_into_a_db_beside_it(tmp_path):
    npz = write_npz(tmp_path / "people.npz")
    before = npz.read_bytes()
    g = Gallery.load(npz)
    assert g.path == str(tmp_path / "people.db") and g.imported_from == str(npz)
    assert g.people() == {"ann": 2, "bob": 2} and g.identity == IDENTITY
    assert g.threshold == 1.07 and g.far_table == {"0.001": 1.0}
    np.testing.assert_array_equal(g.embeddings, rows("old", 4))
    assert list(g.keys) == ["k1", "k2", "k3", "k4"]
    g.remove("bob")
    again = Gallery.load(npz)  # the .db now: the .npz is not read again
    assert again.imported_from is None and again.people() == {"ann": 2}
    assert npz.read_bytes() == before
    other = write_npz(tmp_path / "other.npz")
    r = run_script(["-m", "facenet.gallery", "list", str(other)])
    assert f"imported {other} into {tmp_path / 'other.db'}" in r.stderr, r.stderr
    assert "2 people, 4 embeddings" in r.stdout


DAMAGE = {  # kind: (fields of the .npz changed, field named in the error)
    "NaN row": ({"embeddings": np.vstack([rows("x", 3), np.full((1, 128), np.nan)])},
                "embeddings"),
    "labels shorter": ({"labels": [0, 0, 1]}, "labels"),
    "label -1": ({"labels": [0, 0, 1, -1]}, "labels"),
    "duplicate names": ({"names": ["ann", "ann"]}, "names"),
    "non-unit rows": ({"embeddings": 2 * rows("old", 4)}, "embeddings"),
    "NaN threshold": ({"meta": {"version": 1, "identity": IDENTITY, "threshold": float("nan")}},
                      "threshold"),
    "64-d for a 128-d model": ({"embeddings": narrow(rows("old", 4))},
                               "embeddings"),
}


@pytest.mark.parametrize("kind", DAMAGE)
def test_a_damaged_npz_is_one_line_naming_the_file_and_field(kind, tmp_path, capsys):
    change, field = DAMAGE[kind]
    npz = write_npz(tmp_path / "g.npz", **change)
    with pytest.raises(SystemExit) as e:
        main(["list", str(npz)])
    message = str(e.value.code)
    assert message.startswith(f"error: {npz}: field '{field}'") and "\n" not in message
    assert "Traceback" not in capsys.readouterr().err


DB_DAMAGE = {  # kind: (SQL that damages a good gallery, field named in the error)
    "NaN row": ("UPDATE photos SET embedding = ? WHERE id = 2",
                np.full(128, np.nan, "<f4").tobytes(), "embeddings"),
    "short row": ("UPDATE photos SET embedding = ? WHERE id = 2",
                  rows("x", 1)[0, :64].tobytes(), "embeddings"),
    "photo of nobody": ("UPDATE photos SET person = ? WHERE id = 2", 99, "labels"),
    "NaN threshold": ("UPDATE meta SET value = ? WHERE key = 'threshold'", "NaN",
                      "threshold"),
}


@pytest.mark.parametrize("kind", DB_DAMAGE)
def test_a_damaged_db_is_an_error_naming_the_field(kind, tmp_path):
    sql, value, field = DB_DAMAGE[kind]
    path = tmp_path / "g.db"
    with Gallery(path, IDENTITY, threshold=1.07) as g:
        g.add("ann", rows("ann", 3), ["a1", "a2", "a3"])
    with sqlite3.connect(path) as db:
        db.execute(sql, (value,))
    db.close()
    with pytest.raises(GalleryError, match=f"{path}: field '{field}'"):
        Gallery.load(path)


def test_the_command_line_says_one_line_for_a_damaged_file_and_top_k_0(tmp_path):
    npz = write_npz(tmp_path / "g.npz", labels=[0, 0, 1, -1])
    r = run_script(["-m", "facenet.gallery", "list", str(npz)])
    assert r.returncode != 0 and r.stderr.count("\n") == 1, r.stderr
    assert f"{npz}: field 'labels' row 3 is -1" in r.stderr
    r = run_script(["-m", "facenet.gallery", "identify", str(npz), "x.jpg", "--top-k", "0"])
    assert r.returncode != 0 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("error: top-k must be") and "got 0" in r.stderr


def test_bad_rows_and_queries_are_refused_before_anything_is_written(tmp_path):
    with Gallery(tmp_path / "g.db", IDENTITY) as g:
        nan = rows("ann", 2)
        nan[1, 5] = np.nan
        with pytest.raises(GalleryError, match=r"cannot add 'ann'.*embedding 1 \(a2\) is not "
                                               r"finite"):
            g.add("ann", nan, ["a1", "a2"])
        with pytest.raises(GalleryError, match="size 64 do not fit"):
            g.add("ann", narrow(rows("ann", 1)), ["a1"])
        g.add("bob", rows("bob", 1), ["b1"])
        assert Gallery.load(g.path).people() == {"bob": 1}
        with pytest.raises(GalleryError, match="queries of size 64 do not fit"):
            g.identify_embeddings(narrow(rows("q", 1)))
        with pytest.raises(ValueError, match="top-k must be"):
            g.identify_embeddings(rows("q", 1), top_k=0)


def test_a_new_gallery_in_a_new_folder(tmp_path):
    with Gallery(tmp_path / "new" / "folder" / "g.db", IDENTITY) as g:
        g.add("ann", rows("ann", 1), ["a1"])
    assert Gallery.load(tmp_path / "new" / "folder" / "g.db").people() == {"ann": 1}
