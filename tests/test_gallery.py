"""The face gallery: storage round trips, exact search, unknowns, model checks, the command."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, run_script
from facenet.gallery import Gallery, GalleryError


def unit(rng, n, d=128):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


IDENTITY = {"model": "m", "weights_sha256": "abc", "embedding_size": 128,
            "input_shape": [160, 160, 3], "align": True}
FAR_TABLE = {"0.01": 1.0, "0.0001": 0.8}  # made-up impostor distances


def test_search_is_exact_and_grouped_by_person(tmp_path):
    rng = np.random.default_rng(0)
    g = Gallery(tmp_path / "g.db", IDENTITY, threshold=1.1, far_table=FAR_TABLE)
    ann, bob, cy = unit(rng, 3), unit(rng, 1), unit(rng, 4)
    g.add("ann", ann[:2], ["a1", "a2"])
    g.add("bob", bob, ["b1"])
    g.add("cy", cy, ["c1", "c2", "c3", "c4"])
    g.add("ann", ann[2:], ["a3"])  # a photo added later: rows are regrouped by person
    assert g.people() == {"ann": 3, "bob": 1, "cy": 4}
    queries = unit(rng, 20)
    idx, dist = g.search(queries, top_k=3)
    # brute force: each person's nearest embedding
    for q, row_i, row_d in zip(queries, idx, dist):
        per = {n: np.linalg.norm(g.embeddings[g.labels == g.names.index(n)] - q, axis=1).min()
               for n in g.names}
        want = sorted(per.items(), key=lambda kv: kv[1])
        assert [g.names[i] for i in row_i] == [n for n, _ in want]
        np.testing.assert_allclose(row_d, [d for _, d in want], atol=1e-5)
    # a query equal to an enrolled photo is that person at distance ~0
    ident = g.identify_embeddings(cy[0])[0]
    assert ident.name == "cy" and ident.distance < 1e-3 and ident.known


def test_round_trip_remove_and_unknown(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "g.db"
    g = Gallery(path, IDENTITY, threshold=0.8, far_table=FAR_TABLE)
    a, b = unit(rng, 2), unit(rng, 2)
    g.add("ann", a, ["a1", "a2"], ["k1", "k2"])
    g.add("bob", b, ["b1", "b2"], ["k3", "k4"])
    h = Gallery.load(path)
    assert h.people() == {"ann": 2, "bob": 2} and h.threshold == 0.8 and h.identity == IDENTITY
    np.testing.assert_array_equal(h.embeddings, g.embeddings)
    assert h.has_photo("ann", "k2") and not h.has_photo("bob", "k2")
    mean = a.mean(0) / np.linalg.norm(a.mean(0))
    np.testing.assert_allclose(h.means[h.names.index("ann")], mean, atol=1e-6)
    # a stranger far from everyone is unknown, with the nearest candidate given
    stranger = unit(rng, 1)
    ident = h.identify_embeddings(stranger, threshold=0.5)[0]
    assert not ident.known and "not below the threshold" in ident.reason
    assert ident.candidates[0][0] in ("ann", "bob")
    assert h.remove("ann") == 2
    h = Gallery.load(path)
    assert h.people() == {"bob": 2}
    assert h.identify_embeddings(b[0])[0].name == "bob"
    with pytest.raises(GalleryError, match="'ann' is not in"):
        h.remove("ann")
    h.remove("bob")
    empty = Gallery.load(path)
    ident = empty.identify_embeddings(b[0])[0]
    assert not ident.known and "empty" in ident.reason


def test_missing_or_damaged_gallery_is_a_clear_error(tmp_path):
    with pytest.raises(GalleryError, match="no gallery at"):
        Gallery.load(tmp_path / "none.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    with pytest.raises(GalleryError, match="not a readable gallery"):
        Gallery.load(bad)
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"garbage" * 1000)
    with pytest.raises(GalleryError, match="not a readable gallery"):
        Gallery.load(bad)


@pytest.fixture(scope="module")
def people_dir(lfw, tmp_path_factory):
    lfw_dir, _ = lfw
    root = tmp_path_factory.mktemp("people")
    for name in ("Colin_Powell", "Tony_Blair", "George_W_Bush"):
        (root / name).mkdir()
        for i in (1, 2):
            shutil.copy(os.path.join(lfw_dir, name, f"{name}_{i:04d}.jpg"), root / name)
    return root


@pytest.mark.slow
def test_enroll_identify_with_the_model(lfw, pretrained, people_dir, tmp_path):
    from facenet import enrollment

    lfw_dir, _ = lfw
    g = Gallery(tmp_path / "g.db")
    totals = enrollment.enroll_folder(g, pretrained, str(people_dir),
                                      progress=False)
    assert totals == {"people": 3, "added": 6, "already": 0, "skipped": 0}
    # enrolling again embeds nothing; one new photo embeds only that photo
    calls = []
    original = pretrained.embed_arrays
    pretrained.embed_arrays = lambda batch, **kw: calls.append(len(batch)) or original(batch,
                                                                                       **kw)
    try:
        again = enrollment.enroll_folder(g, pretrained, str(people_dir),
                                         progress=False)
        assert again["added"] == 0 and again["already"] == 6 and calls == []
        new = os.path.join(lfw_dir, "Tony_Blair", "Tony_Blair_0003.jpg")
        added, already, _ = enrollment.enroll_images(g, pretrained, "Tony_Blair", [new])
        assert (added, already) == (1, 0) and calls == [1]
    finally:
        pretrained.embed_arrays = original
    g = Gallery.load(tmp_path / "g.db")
    assert g.people() == {"Colin_Powell": 2, "George_W_Bush": 2, "Tony_Blair": 3}
    probe = os.path.join(lfw_dir, "Colin_Powell", "Colin_Powell_0005.jpg")
    (face, ident), = enrollment.identify_image(g, pretrained, probe)
    assert ident.name == "Colin_Powell", ident
    assert len(ident.candidates) == 3 and ident.candidates[0][0] == "Colin_Powell"
    stranger = os.path.join(lfw_dir, "Abdullah_Gul", "Abdullah_Gul_0001.jpg")
    (face, ident), = enrollment.identify_image(g, pretrained, stranger)
    assert not ident.known and ident.distance > ident.threshold


def test_enrolling_with_another_model_is_refused(pretrained, tmp_path):
    g = Gallery(tmp_path / "g.db")
    g.check_model(pretrained)  # a new gallery takes the model's identity
    assert Gallery.load(g.path).identity == g.identity
    other = {**g.identity, "weights_sha256": "0" * 64, "model": "other_model"}
    with pytest.raises(GalleryError, match="other_model.*cannot be compared"):
        Gallery(tmp_path / "other.db", other).check_model(pretrained)


@pytest.mark.slow
def test_gallery_command(people_dir, lfw, pretrained_path, tmp_path):
    lfw_dir, _ = lfw
    path = str(tmp_path / "people.db")
    r = run_script(["-m", "facenet.gallery", "enroll", path, str(people_dir)])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "3 people: added 6 photo(s)" in r.stdout
    r = run_script(["-m", "facenet.gallery", "list", path])
    assert "Tony_Blair: 2" in r.stdout and "3 people" in r.stdout
    probe = os.path.join(lfw_dir, "George_W_Bush", "George_W_Bush_0010.jpg")
    r = run_script(["-m", "facenet.gallery", "identify", path, probe, "--top-k", "2"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"{probe}: George_W_Bush (distance" in r.stdout
    r = run_script(["-m", "facenet.gallery", "identify", path, probe, "--all-faces"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"{probe} face 1 at box (" in r.stdout  # which face: its box, as predict.py says
    r = run_script(["-m", "facenet.gallery", "identify", path, probe, "--no-align"])
    assert r.returncode != 0 and "cannot be compared" in r.stderr
    r = run_script(["-m", "facenet.gallery", "remove", path, "George_W_Bush", "Tony_Blair",
                    "Colin_Powell"])
    assert r.returncode == 0 and r.stdout.count("removed") == 3
    r = run_script(["-m", "facenet.gallery", "identify", path, probe])
    assert r.returncode == 0 and "unknown (the gallery" in r.stdout and "empty" in r.stdout


@pytest.mark.slow
def test_two_enroll_commands_started_together_both_get_in(people_dir, pretrained_path,
                                                         tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    path = str(tmp_path / "g.db")
    procs = []
    for folder, names in (("a", ["Colin_Powell", "Tony_Blair"]), ("b", ["George_W_Bush"])):
        for name in names:
            shutil.copytree(people_dir / name, tmp_path / folder / name)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "facenet.gallery", "enroll", path, str(tmp_path / folder),
             "--no-align"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True))
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0 and "added" in out, err[-2000:]
    r = run_script(["-m", "facenet.gallery", "list", path])
    assert "3 people, 6 embeddings" in r.stdout, r.stdout + r.stderr


def test_identification_threshold_shrinks_with_the_gallery():
    from facenet.gallery import identification_threshold

    table = {"0.01": 1.2, "0.001": 1.0, "0.0001": 0.9, "1e-05": 0.8, "1e-06": 0.7}
    small = identification_threshold(1.07, table, people=1)  # per comparison 1e-2
    assert small == 1.07  # capped by the verification threshold
    assert identification_threshold(1.07, table, people=10) == pytest.approx(1.0)
    assert identification_threshold(1.07, table, people=1000) == pytest.approx(0.8)
    # between table points: log-linear
    assert identification_threshold(1.07, table, people=100 * 10 ** 0.5) == pytest.approx(0.85)
    assert identification_threshold(1.07, table, people=10 ** 9) == pytest.approx(0.7)
    assert identification_threshold(1.07, None, people=1000) == 1.07
