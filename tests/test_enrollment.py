"""Enrolling photos into a gallery: bad photos are skipped by name and the rest go in; photos
already enrolled are not embedded again; identifying pairs each face with its answer."""
import logging
import os
import shutil
from types import SimpleNamespace

import numpy as np

from face_stubs import FACE_SIZE, fixed_prepare, stub_aligner, write_photos
from facenet import enrollment
from facenet.align_cache import image_key
from facenet.preparation import FacePreparer


class ColourPredictor:
    """Facenet's iter_embeddings over the real FacePreparer (stand-in detector: 50x50 photos
    have no face); a crop's embedding is its mean colour as a unit vector."""
    model = SimpleNamespace(output=SimpleNamespace(shape=(None, 3)))

    def __init__(self):
        self.preparer = FacePreparer(fixed_prepare, stub_aligner(), "auto")
        self.embedded = 0

    def iter_embeddings(self, images, records=None):
        for batch, recs in self.preparer.iter_prepared(images, 4):
            records += recs
            self.embedded += len(batch)
            colour = batch.reshape(len(batch), -1, 3).mean(axis=1) + 1.0
            yield colour / np.linalg.norm(colour, axis=1, keepdims=True)


class ListGallery:
    """What enrollment asks of a gallery, kept in a list of (name, embedding, source, key)."""

    def __init__(self):
        self.rows, self.saves, self.asked = [], 0, []

    def check_model(self, predictor):
        assert isinstance(predictor, ColourPredictor)

    def has_photo(self, name, key):
        return any(n == name and k == key for n, _, _, k in self.rows)

    def add(self, name, embeddings, sources, keys):
        """Like the gallery: one commit per call, the count of photos added."""
        self.rows += [(name, e, s, k) for e, s, k in zip(embeddings, sources, keys)]
        self.saves += 1
        return len(sources)

    def identify_embeddings(self, embeddings, threshold, top_k, match):
        self.asked.append((threshold, top_k, match))
        return [f"answer {i}" for i in range(len(embeddings))]


def warnings_of(caplog):
    return [r.getMessage() for r in caplog.records
            if r.name == "facenet.enrollment" and r.levelno == logging.WARNING]


def test_bad_photos_are_skipped_by_name_and_the_rest_go_in(tmp_path, caplog):
    good, other, no_face = write_photos(tmp_path, [FACE_SIZE, FACE_SIZE, (50, 50)])
    unreadable = tmp_path / "broken.jpg"
    unreadable.write_bytes(b"not a jpeg")
    missing = str(tmp_path / "gone.jpg")
    gallery, predictor = ListGallery(), ColourPredictor()
    paths = [good, missing, str(unreadable), no_face, other, good]
    added, already, skipped = enrollment.enroll_images(gallery, predictor, "ann", paths)
    assert (added, already) == (2, 0)
    assert skipped == [(missing, "not a file"), (str(unreadable), "unreadable"),
                       (no_face, "no face found")]
    assert warnings_of(caplog) == [f"skipped {p}: {why}" for p, why in skipped]
    assert [(n, s, k) for n, _, s, k in gallery.rows] == [("ann", good, image_key(good)),
                                                          ("ann", other, image_key(other))]
    assert np.allclose(np.linalg.norm([e for _, e, _, _ in gallery.rows], axis=1), 1)

    # again, with a renamed copy of an enrolled photo: only the photos not in yet are embedded
    copy = str(tmp_path / "copy.png")
    shutil.copy(good, copy)
    predictor.embedded = 0
    added, already, skipped = enrollment.enroll_images(
        gallery, predictor, "ann", [good, copy, other, no_face])
    assert (added, already, skipped) == (0, 3, [(no_face, "no face found")])
    assert predictor.embedded == 1 and len(gallery.rows) == 2
    # the same photo is new for another person
    assert enrollment.enroll_images(gallery, predictor, "bob", [good])[:2] == (1, 0)


def test_a_folder_of_people_is_enrolled_one_commit_per_person(tmp_path, caplog, capfd):
    for person, sizes in (("ann", [FACE_SIZE, FACE_SIZE]), ("bob", [FACE_SIZE, (50, 50)])):
        (tmp_path / "people" / person).mkdir(parents=True)
        write_photos(tmp_path / "people" / person, sizes)
    (tmp_path / "people" / "cy").mkdir()
    gallery = ListGallery()
    totals = enrollment.enroll_folder(gallery, ColourPredictor(), str(tmp_path / "people"))
    assert capfd.readouterr().err == ""  # the library prints no progress bar of its own
    lines = warnings_of(caplog)
    assert totals == {"people": 2, "added": 3, "already": 0, "skipped": 1}
    assert sorted({n for n, _, _, _ in gallery.rows}) == ["ann", "bob"] and gallery.saves == 2
    assert lines[-1] == "1 folder(s) without photos: cy"
    assert any(os.path.join("bob", "photo1.png") in line for line in lines)


def test_identify_pairs_the_face_with_the_gallery_answer(tmp_path):
    (photo,) = write_photos(tmp_path, [FACE_SIZE])
    gallery = ListGallery()
    ((record, answer),) = enrollment.identify_image(gallery, ColourPredictor(), photo,
                                                    threshold=0.9, top_k=2)
    assert record.source == photo and record.how == "aligned" and answer == "answer 0"
    assert gallery.asked == [(0.9, 2, "nearest")]


def test_a_photo_without_a_face_is_nobody(tmp_path, caplog):
    """The whole-image fallback serves verification of crops; identification of a photo in
    which no face was found answers no one (the command prints "no face found")."""
    (strip,) = write_photos(tmp_path, [(50, 50)])  # the stand-in detector finds no face
    gallery = ListGallery()
    assert enrollment.identify_image(gallery, ColourPredictor(), strip, threshold=0.9) == []
    assert gallery.asked == [] and warnings_of(caplog) == [f"no face found in {strip}"]
