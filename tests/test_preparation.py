"""Photos to model-ready crops: aligned where a face is found, the fixed crop elsewhere (or a
clear error when alignment is required), in order, batch by batch."""
import os
import re

import numpy as np
import pytest

from face_stubs import FACE, FACE_SIZE, fixed_prepare, stub_aligner, write_photos
from facenet.align import NoFaceError
from facenet.align_cache import AlignCache
from facenet.preparation import FacePreparer, align_mode
from utils.image import load_image


def test_align_setting_is_normalised_or_refused():
    assert [align_mode(v) for v in (True, False, None, "auto", "required", "off")] == [
        "required", "off", "off", "auto", "required", "off"]
    with pytest.raises(ValueError, match="align must be one of .* got 'yes'"):
        align_mode("yes")


def prepare_all(preparer, items, batch_size):
    batches = list(preparer.iter_prepared(items, batch_size))
    return ([len(records) for _, records in batches], np.concatenate([c for c, _ in batches]),
            [r for _, records in batches for r in records])


def test_auto_aligns_where_a_face_is_found_and_falls_back_elsewhere(tmp_path):
    paths = write_photos(tmp_path, [FACE_SIZE, (80, 60), FACE_SIZE, (50, 50), FACE_SIZE])
    aligner = stub_aligner()
    preparer = FacePreparer(fixed_prepare, aligner, "auto")
    sizes, crops, records = prepare_all(preparer, paths, batch_size=2)
    assert sizes == [2, 2, 1] and crops.shape == (5, 32, 32, 3) and crops.dtype == np.uint8
    assert [r.source for r in records] == paths  # in order
    assert [r.how for r in records] == ["aligned", "fallback", "aligned", "fallback", "aligned"]
    assert records[0].face is FACE and records[0].faces_found == 1 and records[1].face is None
    aligned = aligner.align_detected(load_image(paths[0]), FACE).image
    np.testing.assert_array_equal(crops[0], aligned)
    np.testing.assert_array_equal(crops[1], fixed_prepare(paths[1]))
    assert preparer.stats == {"aligned": 3, "fallback": 2, "cached": 0}


def test_required_names_the_photo_without_a_face(tmp_path):
    paths = write_photos(tmp_path, [FACE_SIZE, (50, 50)])
    preparer = FacePreparer(fixed_prepare, stub_aligner(), True)
    with pytest.raises(NoFaceError, match=f"no face found in {re.escape(paths[1])} "):
        prepare_all(preparer, paths, batch_size=2)


def test_off_never_runs_the_detector(tmp_path):
    paths = write_photos(tmp_path, [FACE_SIZE, (50, 50)])
    aligner = stub_aligner()
    _, crops, records = prepare_all(FacePreparer(fixed_prepare, aligner, "off"), paths, 2)
    assert [r.how for r in records] == ["fixed", "fixed"] and aligner.detector.detected == 0
    np.testing.assert_array_equal(crops[0], fixed_prepare(paths[0]))


def test_cached_crops_skip_the_detector_and_a_cached_fallback_still_counts(tmp_path):
    paths = write_photos(tmp_path, [FACE_SIZE, (50, 50)])
    aligner = stub_aligner()
    cache = AlignCache(aligner.settings(), root=str(tmp_path / "cache"))
    _, first, _ = prepare_all(FacePreparer(fixed_prepare, aligner, "auto", cache), paths, 2)
    again = FacePreparer(fixed_prepare, aligner, "auto", cache)
    _, second, records = prepare_all(again, paths, 2)
    assert aligner.detector.detected == 2  # the first pass only
    np.testing.assert_array_equal(second, first)
    assert [(r.how, r.cached) for r in records] == [("aligned", True), ("fallback", True)]
    assert records[0].face.box == FACE.box and records[0].faces_found == 1
    assert again.stats == {"aligned": 1, "fallback": 1, "cached": 2}
    with pytest.raises(NoFaceError, match=re.escape(paths[1])):  # no face is no face, cached
        prepare_all(FacePreparer(fixed_prepare, aligner, "required", cache), paths, 2)


def test_a_cached_photo_without_a_face_gets_this_runs_fixed_crop(tmp_path):
    """The crop setting is not part of the cache's key: a photo cached as faceless by a run
    with one fixed crop gets the fixed crop of the run that reads it, not the stored one."""
    paths = write_photos(tmp_path, [FACE_SIZE, (50, 50)])
    aligner = stub_aligner()
    cache = AlignCache(aligner.settings(), root=str(tmp_path / "cache"))
    prepare_all(FacePreparer(fixed_prepare, aligner, "auto", cache), paths, 2)

    def other_crop(image):
        return 255 - fixed_prepare(image)

    _, crops, records = prepare_all(FacePreparer(other_crop, aligner, "auto", cache), paths, 2)
    assert aligner.detector.detected == 2  # the first pass only
    assert [(r.how, r.cached) for r in records] == [("aligned", True), ("fallback", True)]
    np.testing.assert_array_equal(crops[1], other_crop(paths[1]))


def test_images_in_memory_are_aligned_but_never_cached(tmp_path):
    (path,) = write_photos(tmp_path, [FACE_SIZE])
    aligner = stub_aligner()
    cache = AlignCache(aligner.settings(), root=str(tmp_path / "cache"))
    image = load_image(path)
    _, _, (record,) = prepare_all(FacePreparer(fixed_prepare, aligner, "auto", cache),
                                  [image], 1)
    assert record.how == "aligned" and record.source == f"<{type(image).__name__}>"
    assert [f for f in os.listdir(cache.folder) if f.endswith(".png")] == []
